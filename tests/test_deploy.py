"""deploy/ holds together: the units run commands that exist with settings that exist, the dashboard
queries metrics the server exposes. (nginx itself: tests/transcription/streaming/test_nginx_live.py.)"""

from __future__ import annotations

import json
import re
import shlex
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
