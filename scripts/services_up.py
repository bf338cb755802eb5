"""Exit 0 when the PostgreSQL and Redis servers given as URLs answer, else print why and exit 1."""

from __future__ import annotations

import sys


def main(database_url: str, redis_url: str) -> int:
    import dj_database_url
    import psycopg
    import redis

    db = dj_database_url.parse(database_url)
    try:
        psycopg.connect(
            host=db["HOST"] or "127.0.0.1",
            port=int(db["PORT"] or 5432),
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname=db["NAME"],
            connect_timeout=3,
        ).close()
    except Exception as exc:
        print(f"PostgreSQL at {database_url} unreachable: {exc}")
        return 1
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:
        print(f"Redis at {redis_url} unreachable: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
