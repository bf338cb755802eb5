"""nginx in front of local Daphne processes, configured from deploy/nginx as shipped.

The maps, upstreams and log format of deploy/nginx/stt.conf and every location of
deploy/nginx/stt-proxy.conf run unchanged but for the two Daphne ports, the static folder and the
log's path; the test's server block listens on plain HTTP on a free port (TLS and the redirect on
port 80 are only syntax-checked, by `check_site`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.server import ROOT, free_port

DEPLOY = ROOT / "deploy" / "nginx"
SHIPPED_PORTS = ("8001", "8002")  # the two Daphne processes the shipped site names


def available() -> str | None:
    """Why nginx cannot be run here, or None."""
    return None if shutil.which("nginx") else "nginx is not installed (apt-get install nginx)"


def _http_part(ports: list[int]) -> str:
    text = (DEPLOY / "stt.conf").read_text()
    part = text[: text.index("\nserver {")]
    if len(ports) != len(SHIPPED_PORTS):
        raise ValueError(f"the shipped site names {len(SHIPPED_PORTS)} Daphne processes, not {len(ports)}")
    for shipped, port in zip(SHIPPED_PORTS, ports, strict=True):
        part = part.replace(shipped, str(port))
    return part


def _proxy_part(access_log: Path) -> str:
    text = (DEPLOY / "stt-proxy.conf").read_text()
    text = text.replace("/srv/stt/staticfiles/", f"{ROOT / 'static'}/")
    text = text.replace("/var/log/nginx/stt.error.log", str(access_log.with_name("stt.error.log")))
    return text.replace("/var/log/nginx/stt.access.log", str(access_log))


def _main_conf(tmp: Path, http: str) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'error.log'} warn;\nevents {{ worker_connections 4096; }}\n"
        f"http {{\n    include /etc/nginx/mime.types;\n{temp}\n{http}\n}}\n"
    )


def check_site(tmp: Path) -> subprocess.CompletedProcess:
    """`nginx -t` on the whole shipped site (TLS server and redirect included), with a throw-away
    self-signed certificate in place of the real one."""
    tmp.mkdir(parents=True, exist_ok=True)
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=stt.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    (tmp / "stt-proxy.conf").write_text(_proxy_part(tmp / "access.log"))
    site = (DEPLOY / "stt.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/stt.example.com/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/stt.example.com/privkey.pem", str(key))
    site = site.replace("/etc/nginx/snippets/stt-proxy.conf", str(tmp / "stt-proxy.conf"))
    conf = tmp / "nginx-check.conf"
    conf.write_text(_main_conf(tmp, site))
    return subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)


@dataclass
class Nginx:
    proc: subprocess.Popen
    port: int
    access_log: Path
    error_log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str = "/ws/transcribe") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def upstreams(self, path: str) -> list[str]:
        """The Daphne address ("127.0.0.1:PORT") of each finished request for `path`, in order."""
        found = []
        for line in self.access_log.read_text().splitlines():
            match = re.search(r'"[A-Z]+ (\S+) [^"]*" .* upstream=(\S+)', line)
            if match and match.group(1) == path:
                found.append(match.group(2))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(tmp: Path, daphne_ports: list[int]) -> Nginx:
    """nginx on a free port in front of the Daphne processes on `daphne_ports` (as the shipped site)."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    access_log = tmp / "access.log"
    (tmp / "stt-proxy.conf").write_text(_proxy_part(access_log))
    server = (
        f"server {{\n    listen 127.0.0.1:{port};\n    server_name localhost;\n"
        f"    include {tmp / 'stt-proxy.conf'};\n}}\n"
    )
    conf = tmp / "nginx.conf"
    conf.write_text(_main_conf(tmp, _http_part(daphne_ports) + "\n" + server))
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=open(tmp / "nginx.out", "wb")
    )
    nginx = Nginx(proc, port, access_log, tmp / "stt.error.log")
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(nginx.base + "/health", timeout=2):
                return nginx
        except urllib.error.HTTPError:
            return nginx  # nginx answered (a 5xx from Daphne still means nginx is up)
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                nginx.stop()
                out = (tmp / "nginx.out").read_text(errors="replace")
                raise RuntimeError(f"nginx did not start: {out[-2000:]}") from exc
            time.sleep(0.1)
