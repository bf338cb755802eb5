"""deploy/ holds together: the units run commands that exist with settings that exist, the dashboard
queries metrics the server exposes. (nginx itself: tests/transcription/streaming/test_nginx_live.py.)"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# Read by libraries (prometheus-client, CUDA, the loader) rather than by sttproject/settings.py.
LIBRARY_VARIABLES = {"PROMETHEUS_MULTIPROC_DIR", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"}


def _units() -> list[Path]:
    return sorted((DEPLOY / "systemd").glob("*.service"))


def _exec_lines(path: Path) -> list[str]:
    return re.findall(r"^ExecStart(?:Pre)?=(.+)$", path.read_text(), flags=re.M)


def _settings_variables() -> set[str]:
    source = (ROOT / "sttproject" / "settings.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|float|list)\("([A-Z0-9_]+)"', source))


@pytest.mark.parametrize("unit", _units(), ids=lambda p: p.name)
def test_every_manage_py_command_of_a_unit_exists_with_its_options(unit):
    commands = get_commands()
    found = 0
    for line in _exec_lines(unit):
        words = shlex.split(line)
        if "manage.py" not in words:
            continue
        found += 1
        name = words[words.index("manage.py") + 1]
        assert name in commands, f"{unit.name}: manage.py {name} does not exist"
        command = load_command_class(commands[name], name)
        parser = command.create_parser("manage.py", name)
        arguments = words[words.index("manage.py") + 2 :]
        parser.parse_args([a.replace("%i", "8001") for a in arguments])  # exits (fails) on an unknown option
    assert found, f"{unit.name} runs no manage.py command"
    assert re.findall(r"^EnvironmentFile=(.+)$", unit.read_text(), flags=re.M) == ["/etc/stt/stt.env"]


def test_the_environment_template_names_only_settings_that_exist():
    known = _settings_variables() | LIBRARY_VARIABLES
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (DEPLOY / "stt.env.example").read_text(), flags=re.M)
    assert names and set(names) <= known, sorted(set(names) - known)
    for unit in _units():
        for name in re.findall(r"^Environment=([A-Z_]+)=", unit.read_text(), flags=re.M):
            assert name in known, f"{unit.name}: {name}"


def test_the_target_wants_units_that_are_shipped():
    target = (DEPLOY / "systemd" / "stt.target").read_text()
    wanted = {w for line in re.findall(r"^Wants=(.+)$", target, flags=re.M) for w in line.split()}
    shipped = {p.name for p in (DEPLOY / "systemd").iterdir()}
    for unit in wanted:
        template = re.sub(r"@[^.]+\.", "@.", unit)
        assert unit in shipped or template in shipped, unit


def test_every_metric_the_dashboard_queries_is_exposed(client, settings):
    settings.STT_STREAM = {**settings.STT_STREAM, "METRICS_TOKEN": "dash-token"}
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer dash-token")
    assert response.status_code == 200
    exposed = set(re.findall(r"^# TYPE (stt_\w+) ", response.content.decode(), flags=re.M))
    dashboard = json.loads((DEPLOY / "grafana" / "stt-dashboard.json").read_text())
    queried = {
        re.sub(r"_(bucket|sum|count|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bstt_\w+", target["expr"])
    }
    exposed_bases = {re.sub(r"_total$", "", name) for name in exposed}
    assert len(queried) >= 9 and queried <= exposed_bases, sorted(queried - exposed_bases)


# -- production security: check --deploy clean with the template, CSP on every page --------------------


def production_environment(tmp_path: Path) -> dict[str, str]:
    """deploy/stt.env.example's variables as a deployment sets them: a real SECRET_KEY, and local
    stand-ins for the database, Redis and the metrics directory (`check` connects to none of them)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    for line in (DEPLOY / "stt.env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Z][A-Z0-9_]+", name):
            env[name] = value
    (tmp_path / "metrics").mkdir()
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        MEDIA_ROOT=str(tmp_path / "media"),
    )
    env.pop("REDIS_URL", None)
    return env


def test_check_deploy_is_clean_with_the_production_environment(tmp_path):
    env = production_environment(tmp_path)
    assert env["DEBUG"] == "false" and env["SECURE_SSL_REDIRECT"] == "true"
    run = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "System check identified no issues" in run.stdout, run.stdout + run.stderr
    # Without the HTTPS settings the same environment warns (W004 HSTS, W008 SSL redirect).
    for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"):
        env.pop(name)
    warned = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert warned.returncode != 0 and "security.W004" in warned.stderr and "security.W008" in warned.stderr


@pytest.mark.django_db
def test_https_settings_redirect_plain_requests_but_not_the_probes(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    login = client.get("/accounts/login/")
    assert login.status_code == 301 and login["Location"].startswith("https://")
    for probe in ("/health", "/metrics", "/api/metrics"):
        assert client.get(probe).status_code != 301, probe
    secure = client.get("/accounts/login/", secure=True)
    assert secure.status_code == 200 and secure["Strict-Transport-Security"].startswith("max-age=3600")


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/accounts/login/", "/", "/api/docs/", "/api/redoc/", "/api/v1/sessions/"])
def test_every_page_carries_a_strict_content_security_policy(client, page):
    response = client.get(page, HTTP_ACCEPT="text/html")
    directives = (part.strip().partition(" ") for part in response["Content-Security-Policy"].split(";"))
    policy = {name: values for name, _, values in directives}
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'", policy
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'", policy
    inline_styles = page.startswith("/api/")  # Swagger UI, Redoc and DRF's pages bring inline styles
    assert policy["style-src"] == ("'self' 'unsafe-inline'" if inline_styles else "'self'"), policy


TEMPLATES_DIR = ROOT / "templates"
INLINE = {
    "style attribute": re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.S),
    "event handler": re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.S),
    "inline script": re.compile(r"<script(?![^>]*\ssrc=)(?![^>]*type=\"application/json\")[^>]*>", re.S),
    "style element": re.compile(r"<style[\s>]"),
}


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES_DIR.rglob("*.html")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_templates_have_nothing_inline_the_policy_would_block(template):
    text = template.read_text()
    found = [kind for kind, pattern in INLINE.items() if pattern.search(text)]
    assert not found, f"{template.relative_to(ROOT)}: {found}; use a class (static/css) or a static script"
