"""A scale-out set-up of real processes: Daphne servers and inference workers meeting over Redis.

Shared by the end-to-end tests and `bench.stream --scale-out`. Each set-up has its own channel
prefix (so it never meets another run's workers on the shared Redis) and its own database: a
PostgreSQL database created for it and dropped after, or a SQLite file.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.server import WorkerProcess, daphne_server, manage, start_worker


@dataclass
class ScaleOut:
    tmp: Path
    env: dict[str, str]  # what every process of the set-up shares
    bases: list[str] = field(default_factory=list)  # http://127.0.0.1:PORT of each Daphne
    server_pids: list[int] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)
    worker_args: tuple[str, ...] = ()
    api_key: str = ""  # set by whoever creates one

    def add_worker(self, *, wait: bool = True) -> WorkerProcess:
        log = self.tmp / f"worker-{len(self.workers)}.log"
        worker = start_worker({**self.env, **self.worker_env}, log, *self.worker_args)
        self.workers.append(worker)
        if wait:
            worker.wait_ready(120)
        return worker

    def ws_url(self, index: int, path: str = "/ws/transcribe") -> str:
        return self.bases[index].replace("http://", "ws://") + path

    def manage(self, *args: str) -> str:
        return manage({**_inherited(), **self.env}, *args)


def _inherited() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}


@contextlib.contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A fresh, empty database on the server of `base_url` (yielded as its URL), dropped afterwards."""
    import psycopg

    name = f"stt_scaleout_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(base_url)
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scale_out(
    tmp: Path,
    redis_url: str,
    *,
    servers: int = 1,
    workers: int = 2,
    postgres_url: str | None = None,
    server_env: dict[str, str] | None = None,
    worker_env: dict[str, str] | None = None,
    worker_args: tuple[str, ...] = (),
) -> Iterator[ScaleOut]:
    """Start `workers` inference workers, then `servers` Daphne processes on STT_INFERENCE_BACKEND=channels.

    With `postgres_url`, every process uses a database of its own created on that server; without it, one
    SQLite file under `tmp`.
    """
    with contextlib.ExitStack() as stack:
        if postgres_url:
            database = stack.enter_context(postgres_database(postgres_url))
        else:
            database = f"sqlite:///{tmp / 'scale-out.sqlite3'}"
        env = {
            "DATABASE_URL": database,
            "REDIS_URL": redis_url,
            "CHANNEL_PREFIX": f"stt-bench-{uuid.uuid4().hex[:10]}",
            "STT_INFERENCE_BACKEND": "channels",
        }
        setup = ScaleOut(tmp, env, worker_env=dict(worker_env or {}), worker_args=worker_args)
        setup.manage("migrate", "--noinput", "-v0")
        stack.callback(lambda: [w.stop() for w in setup.workers])
        for _ in range(workers):
            setup.add_worker(wait=False)
        for worker in setup.workers:
            worker.wait_ready(120)
        for i in range(servers):
            folder = tmp / f"server-{i}"
            folder.mkdir(exist_ok=True)
            base, _, proc = stack.enter_context(
                daphne_server(folder, {**env, **(server_env or {})}, wait_ready=True, migrate=False)
            )
            setup.bases.append(base)
            setup.server_pids.append(proc.pid)
        yield setup
