"""Start a real Daphne process on a free port with its own SQLite database (end-to-end tests, benchmarks)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def streaming_key(manage, max_streams: int, user: str = "bench") -> str:
    """A new user's API key with the `stream` scope and room for `max_streams` streams at once.

    `manage(*args)` runs a manage.py command against the set-up (its database)."""
    key = manage("apikey", "create", "--user", user, "--create-user", "--scopes", "stream")
    manage("quota", "set", "--user", user, "--max-streams", str(max_streams), "--monthly-minutes", "10000000")
    return key.strip()


@contextmanager
def daphne_server(
    tmp_path: Path,
    extra_env: dict | None = None,
    *,
    serve: bool = False,
    wait_ready: bool = False,
    migrate: bool = True,
    port: int | None = None,
    daphne_args: tuple[str, ...] = (),
):
    """Yields (base_url, env, process). The database is a fresh SQLite file under tmp_path, unless
    `extra_env` names a DATABASE_URL (then `migrate=False` skips migrating it again).

    `serve=True` starts the project's own server command (`manage.py serve`: Daphne with the
    underscore-header allow-list) instead of plain `daphne`. `wait_ready=True` also waits for
    the models to be loaded (`/health` says ready). `port`: this one rather than a free one.
    `daphne_args`: further Daphne options (`--proxy-headers`).
    """
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'live.sqlite3'}", "DEBUG": "true", "LOG_LEVEL": "WARNING"}
    )
    env.update(extra_env or {})
    if migrate:
        manage(env, "migrate", "--noinput", "-v0")
    log = open(tmp_path / "daphne.log", "w")
    bind = ["-b", "127.0.0.1", "-p", str(port)]
    if serve:
        command = [sys.executable, "manage.py", "serve", *bind]
        if daphne_args:
            command += ["--", *daphne_args]
    else:
        command = [sys.executable, "-m", "daphne", *bind, *daphne_args, "sttproject.asgi:application"]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urlopen(base + "/health", timeout=2) as response:
                    if response.status == 200 and (not wait_ready or json.loads(response.read())["ready"]):
                        break
                problem: Exception = RuntimeError("the models did not load")
            except OSError as exc:
                problem = exc
            if proc.poll() is not None or time.monotonic() > deadline:
                log_text = (tmp_path / "daphne.log").read_text()[-3000:]
                raise RuntimeError(f"daphne did not start: {log_text}") from problem
            time.sleep(0.2)
        yield base, env, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


class WorkerProcess:
    """A `manage.py inference_worker` subprocess and its log."""

    def __init__(self, proc: subprocess.Popen, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def name(self) -> str:
        """The name it announces in heartbeats and replies (host:pid)."""
        return f"{socket.gethostname()}:{self.proc.pid}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "ready: lanes" in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"worker not ready after {timeout_s}s:\n{self.log()}")

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_worker(env: dict, log_path: Path, *args: str) -> WorkerProcess:
    """Start an inference worker with `env` (REDIS_URL and CHANNEL_PREFIX among it)."""
    full_env = {**os.environ, "DEBUG": "true", "PYTHONUNBUFFERED": "1", **env}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "inference_worker", *args],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(proc, log_path)
