"""A scale-out set-up of real processes: Daphne servers and inference workers meeting over Redis.

Shared by the end-to-end tests and `bench.stream --scale-out`. Each set-up has its own channel
prefix (so it never meets another run's workers on the shared Redis) and its own database: a
PostgreSQL database created for it and dropped after, or a SQLite file.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.nginx import Nginx
from bench.nginx import start as nginx_start
from bench.server import WorkerProcess, daphne_server, free_port, manage, start_worker


@dataclass
class ScaleOut:
    tmp: Path
    env: dict[str, str]  # what every process of the set-up shares
    bases: list[str] = field(default_factory=list)  # http://127.0.0.1:PORT of each Daphne
    server_pids: list[int] = field(default_factory=list)
    server_procs: list[subprocess.Popen] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)
    worker_args: tuple[str, ...] = ()
    api_key: str = ""  # set by whoever creates one
    proxy: Nginx | None = None  # nginx in front of the servers (scale_out(..., nginx=True))
    ports: list[int] = field(default_factory=list)
    server_env: dict[str, str] = field(default_factory=dict)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # what the set-up holds

    def add_worker(self, *, wait: bool = True) -> WorkerProcess:
        log = self.tmp / f"worker-{len(self.workers)}.log"
        worker = start_worker({**self.env, **self.worker_env}, log, *self.worker_args)
        self.workers.append(worker)
        if wait:
            worker.wait_ready(120)
        return worker

    def ws_url(self, index: int, path: str = "/ws/transcribe") -> str:
        return self.bases[index].replace("http://", "ws://") + path

    def proxy_url(self, path: str = "/ws/transcribe") -> str:
        assert self.proxy is not None, "started without nginx"
        return self.proxy.ws_url(path)

    def server_folder(self, index: int) -> Path:
        folder = self.tmp / f"server-{index}"
        folder.mkdir(exist_ok=True)
        return folder

    def start_server(self, index: int | None = None) -> None:
        """Start Daphne number `index` (a new one when None; the same port again when it exists)."""
        index = len(self.bases) if index is None else index
        port = self.ports[index] if index < len(self.ports) else free_port()
        env = {**self.env, **self.server_env, "STT_INSTANCE": str(port)}
        base, _, proc = self.stack.enter_context(
            daphne_server(self.server_folder(index), env, wait_ready=True, migrate=False, port=port)
        )
        if index < len(self.bases):
            self.bases[index], self.server_pids[index], self.server_procs[index] = base, proc.pid, proc
        else:
            self.ports.append(port)
            self.bases.append(base)
            self.server_pids.append(proc.pid)
            self.server_procs.append(proc)

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
    nginx: bool = False,
) -> Iterator[ScaleOut]:
    """Start `workers` inference workers, then `servers` Daphne processes on STT_INFERENCE_BACKEND=channels.

    With `postgres_url`, every process uses a database of its own created on that server; without it, one
    SQLite file under `tmp`. With `nginx`, deploy/nginx's site runs in front of the servers (two).
    Each server's STT_INSTANCE is its port, as deploy/systemd sets it.
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
        setup = ScaleOut(
            tmp, env, worker_env=dict(worker_env or {}), worker_args=worker_args,
            server_env=dict(server_env or {}), stack=stack,
        )  # fmt: skip
        setup.manage("migrate", "--noinput", "-v0")
        stack.callback(lambda: [w.stop() for w in setup.workers])
        for _ in range(workers):
            setup.add_worker(wait=False)
        for worker in setup.workers:
            worker.wait_ready(120)
        for _ in range(servers):
            setup.start_server()
        if nginx:
            setup.proxy = nginx_start(tmp / "nginx", setup.ports)
            stack.callback(setup.proxy.stop)
        yield setup
