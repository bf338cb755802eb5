"""Operational HTTP endpoints: /health, /api/config, /api/metrics, /metrics (Prometheus)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.selectors import stream_active_counts
from audit.models import Action
from audit.services import audit_record, origin_of
from speech import telemetry
from transcription import runtime_config
from transcription.api.parsers import loads as strict_json
from transcription.ops import startup
from transcription.speech_models import model_languages
from transcription.streaming.service import current_service
from transcription.uploads.jobs import upload_runner


def _service_state() -> dict:
    service = current_service()
    if service is None:
        return {"started": False, "ready": False}
    outage = service.outage()
    state = {"started": True, "ready": bool(service.ready) and outage is None}
    try:
        state["queueDepth"] = service.queue_depth()
    except Exception:  # a remote service may not know its depth
        pass
    workers = getattr(service, "workers", None)
    if workers is not None:  # scale-out: what the heartbeats say
        state["liveWorkers"] = len(workers.live_names())
        state["workers"] = workers.snapshot()
    if outage is not None:
        state["outage"] = outage
    return state


def health(request: HttpRequest) -> JsonResponse:
    """Readiness and load. Models load when the server starts; `ready` says whether they have."""
    scheduler = _service_state()
    # A model that failed to load at start-up but loaded since (a retry on the first stream) is fine.
    errors = [e for e in startup.startup_errors() if not (scheduler["ready"] and e.startswith("inference:"))]
    try:
        counts = stream_active_counts()
    except Exception as exc:
        counts = {"sessions": None, "speakers": None}
        errors.append(f"database: {exc}")
    cfg = runtime_config.current()
    # A worker outage is reported (ready false, degraded) but answers 200: every web process shares the
    # workers, and a balancer that dropped them all would hide the documented refusal from clients.
    body = {
        "status": "ok" if not errors and "outage" not in scheduler else "degraded",
        "ready": scheduler["ready"],
        "activeSessions": counts["sessions"],
        "activeSpeakers": counts["speakers"],
        "maxSessions": cfg["max_sessions"],
        "maxActiveSpeakers": cfg["max_active_speakers"],
        "scheduler": scheduler,
        "startupErrors": errors,
    }
    return JsonResponse(body, status=200 if not errors else 503)


def _is_staff_or_token(request: HttpRequest) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.STT_STREAM["METRICS_TOKEN"]
    presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(presented.encode(), token.encode())


class ConfigView(APIView):
    """GET: the public runtime settings and their buckets, for anyone. PATCH: staff only, all or nothing.

    DRF's session authentication enforces CSRF for cookie-authenticated writes, so a cross-site form
    riding a staff member's session fails; a staff member's API key (no cookie) needs no token.
    """

    permission_classes: list = []
    schema = None  # operations, not part of the published history API

    def get(self, request: Request) -> JsonResponse:
        contract = runtime_config.contract()
        return JsonResponse(
            {
                "settings": {name: e["value"] for bucket in contract.values() for name, e in bucket.items()},
                **contract,
                "limits": {
                    "maxPacketBytes": settings.STT_STREAM["MAX_PACKET_BYTES"],
                    "defaultQuota": settings.STT_DEFAULT_QUOTA,
                },
                "engines": {
                    "supported": ["faster_whisper"],
                    "inferenceBackend": settings.STT_INFERENCE["BACKEND"],
                },
            }
        )

    def patch(self, request: Request) -> JsonResponse:
        if not (request.user.is_authenticated and request.user.is_staff):
            return JsonResponse(
                {"error": "forbidden", "message": "Only staff may change settings."}, status=403
            )
        try:
            body = strict_json(request.body or b"{}")
        except (ValueError, RecursionError) as exc:
            reason = str(exc) if "finite" in str(exc) else "Body must be JSON."
            return JsonResponse({"error": "invalid_json", "message": reason}, status=400)
        changes = body.get("settings") if isinstance(body, dict) else None
        if not isinstance(changes, dict) or not changes:
            return JsonResponse(
                {"error": "invalid_body", "message": 'Send {"settings": {"name": value, ...}}.'}, status=400
            )
        accepted, rejected = runtime_config.validate_patch(
            changes, languages=model_languages(current_service())
        )
        if rejected:
            # All or nothing: a PATCH with any rejected setting changes nothing.
            return JsonResponse({"error": "rejected", "rejected": rejected, "applied": {}}, status=400)
        runtime_config.apply(accepted, user=request.user)
        audit_record(
            Action.RUNTIME_CONFIG_CHANGED,
            target=", ".join(accepted),
            origin=origin_of(request, via="api"),
            details={"applied": accepted},
        )
        return JsonResponse({"applied": accepted, "settings": runtime_config.current()})


def _forbidden() -> JsonResponse:
    return JsonResponse({"error": "forbidden", "message": "Staff or a metrics token required."}, status=403)


def metrics(request: HttpRequest) -> JsonResponse:
    if not _is_staff_or_token(request):
        return _forbidden()
    service = current_service()
    return JsonResponse(
        {
            "streams": stream_active_counts(),
            "scheduler": _service_state(),
            "inference": service.metrics() if service is not None else {},
            "uploads": {"running": len(runner.running()) if (runner := upload_runner()) is not None else 0},
        }
    )


def prometheus(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition: this process's metrics, or with PROMETHEUS_MULTIPROC_DIR set every
    process's of this host (Daphne processes and inference workers sharing the directory)."""
    if not _is_staff_or_token(request):
        return _forbidden()
    body, content_type = telemetry.exposition()
    return HttpResponse(body, content_type=content_type)
