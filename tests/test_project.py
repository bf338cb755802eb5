"""Project-level checks: settings from the environment, migrations, lint, pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _settings_in_subprocess(env: dict[str, str], expr: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}
    }
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'sttproject.settings'; django.setup(); "
        f"from django.conf import settings as s; print({expr})"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_environment_means_sqlite_and_in_memory_layer():
    proc = _settings_in_subprocess(
        {},
        "s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], "
        "s.STT_INFERENCE['BACKEND']",
    )
    assert proc.returncode == 0, proc.stderr
    assert "sqlite3" in proc.stdout and "InMemoryChannelLayer" in proc.stdout and "local" in proc.stdout


def test_database_url_and_redis_url_switch_backends():
    proc = _settings_in_subprocess(
        {"DATABASE_URL": "postgres://u@db.example:5432/stt", "REDIS_URL": "redis://cache.example:6379/1"},
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['HOST'], s.CHANNEL_LAYERS['default']",
    )
    assert proc.returncode == 0, proc.stderr
    assert "postgresql" in proc.stdout and "db.example" in proc.stdout
    assert "RedisChannelLayer" in proc.stdout and "'address': 'redis://cache.example:6379/1'" in proc.stdout


def test_production_refuses_to_start_without_a_real_secret_key():
    proc = _settings_in_subprocess({"DEBUG": "false", "ALLOWED_HOSTS": "stt.example.com"}, "1")
    assert proc.returncode != 0 and "SECRET_KEY" in proc.stderr
    proc = _settings_in_subprocess(
        {"DEBUG": "false", "ALLOWED_HOSTS": "stt.example.com", "SECRET_KEY": "change-me"}, "1"
    )
    assert proc.returncode != 0 and "SECRET_KEY" in proc.stderr


def test_production_refuses_to_start_without_explicit_allowed_hosts():
    key = "k" * 50
    proc = _settings_in_subprocess({"DEBUG": "false", "SECRET_KEY": key}, "1")
    assert proc.returncode != 0 and "ALLOWED_HOSTS" in proc.stderr
    proc = _settings_in_subprocess({"DEBUG": "false", "SECRET_KEY": key, "ALLOWED_HOSTS": "*"}, "1")
    assert proc.returncode != 0 and "ALLOWED_HOSTS" in proc.stderr
    proc = _settings_in_subprocess(
        {"DEBUG": "false", "SECRET_KEY": key, "ALLOWED_HOSTS": "stt.example.com"}, "s.DEBUG"
    )
    assert proc.returncode == 0 and "False" in proc.stdout


def test_bad_typed_environment_value_is_a_clear_error():
    proc = _settings_in_subprocess({"QUOTA_MAX_STREAMS": "many"}, "1")
    assert proc.returncode != 0 and "QUOTA_MAX_STREAMS must be an integer" in proc.stderr


@pytest.mark.django_db
def test_migrations_are_complete():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_ruff_lint_and_format_pass():
    ruff = Path(sys.executable).with_name("ruff")
    lint = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run([str(ruff), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.django_db
def test_home_page_and_admin_login_are_served(client):
    assert client.get("/").status_code == 200
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get("/admin/login/").status_code == 200


def test_the_import_contracts_hold():
    """pyproject's [tool.importlinter]: a Django-free speech core, accounts below streaming, no cycles."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout, result.stdout
