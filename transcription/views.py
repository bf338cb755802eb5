"""Server-rendered web pages: home, live transcription, history, usage and API keys."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Scope
from accounts.selectors import (
    api_key_list,
    api_key_self_service_enabled,
    month_start,
    quota_for_user,
    usage_for_month,
    usage_remaining_seconds,
)
from accounts.services import api_key_create, api_key_revoke
from transcription import runtime_config, services
from transcription.forms import HistoryFilterForm, date_field
from transcription.models import Endpoint, SessionStatus
from transcription.ops import startup
from transcription.selectors import day_start, segment_list, session_get, session_list
from transcription.streaming.service import current_service, languages_for_model
from transcription.templatetags.ui import language_name

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 20
EXPORT_FORMATS = (("txt", "Text"), ("srt", "SRT"), ("vtt", "WebVTT"), ("json", "JSON"))


def _languages() -> list[tuple[str, str]] | None:
    """(code, name) the configured model accepts; None for a multilingual model (any, or auto-detect)."""
    codes = languages_for_model(settings.STT_INFERENCE["MODEL"])
    return [(code, language_name(code)) for code in codes] if codes else None


# -- home ---------------------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    """Landing page; signed-in users get their month at a glance and recent sessions."""
    if not request.user.is_authenticated:
        return render(request, "home.html")
    return render(
        request,
        "home.html",
        {"usage": _usage_summary(request.user), "recent": list(session_list(user=request.user)[:5])},
    )


# -- live -----------------------------------------------------------------------------------------


@login_required
def live(request: HttpRequest) -> HttpResponse:
    cfg = runtime_config.current()
    limits = quota_for_user(user=request.user)
    languages = _languages()
    if languages is None:
        from faster_whisper.tokenizer import _LANGUAGE_CODES  # heavy import, only for multilingual models

        languages = sorted(((c, language_name(c)) for c in _LANGUAGE_CODES), key=lambda item: item[1])
        multilingual = True
    else:
        multilingual = False
    usage = _usage_summary(request.user)
    config = {
        "wsPath": "/ws/transcribe",
        "warmupUrl": reverse("live-warmup"),
        "healthUrl": reverse("health"),
        "historyUrl": reverse("history"),
        "loginUrl": reverse("login"),
        "workletUrl": static("js/capture-worklet.js"),
        "packetMs": 40,
        "maxSessionSeconds": limits.max_session_seconds,
        "remainingSeconds": usage["remaining_seconds"],
        "maxConcurrentStreams": limits.max_concurrent_streams,
    }
    return render(
        request,
        "transcription/live.html",
        {
            "config": config,
            "languages": languages,
            "multilingual": multilingual,
            "default_language": cfg["language"] or ("" if multilingual else languages[0][0]),
            "interim_default": cfg["interim_results"],
            "word_timestamps_default": cfg["word_timestamps"],
            "model_name": _model_label(cfg["model"]),
            "limits": limits,
            "usage": usage,
            "settings_public": {
                "post_speech_silence_duration": cfg["post_speech_silence_duration"],
                "max_segment_seconds": cfg["max_segment_seconds"],
                "realtime_interval_ms": cfg["realtime_interval_ms"],
            },
        },
    )


def _model_label(model: str) -> str:
    if model.startswith("bundled:"):
        return model.removeprefix("bundled:")
    return model.rstrip("/").rsplit("/", 1)[-1] or model


@login_required
@require_POST
async def live_warmup(request: HttpRequest) -> JsonResponse:
    """Start loading the models in this process (they otherwise load on the first stream) and report.

    Runs on the server's event loop, the one the streaming consumers use, so the service it starts is
    the one they get. The page polls this until `ready` before it enables Start.
    """
    service = current_service()
    ready = bool(service is not None and service.ready)
    if not ready:
        startup.load_models()
    error = None if ready else startup.load_error()
    lanes = getattr(service, "lanes", None) if ready else None
    return JsonResponse(
        {
            "ready": ready,
            "loading": not ready and error is None,
            "error": f"The speech model could not be loaded: {error}" if error is not None else None,
            "lanes": sorted(lanes) if isinstance(lanes, dict) else [],
        }
    )


# -- history --------------------------------------------------------------------------------------


@login_required
def history(request: HttpRequest) -> HttpResponse:
    params = request.GET
    form = HistoryFilterForm(params)
    form.is_valid()  # bad values are shown at their fields; the valid filters still apply
    filters = form.filters()
    sessions = session_list(user=request.user, **filters)
    page = Paginator(sessions, HISTORY_PAGE_SIZE).get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    return render(
        request,
        "transcription/history.html",
        {
            "page": page,
            "filters": filters,
            "errors": {name: messages[0] for name, messages in form.errors.items()},
            "date_from": _date_value(form, "from"),
            "date_to": _date_value(form, "to"),
            "query": query.urlencode(),
            "active_filters": any(filters.values()),
            "endpoints": Endpoint.choices,
            "statuses": SessionStatus.choices,
            "languages": sorted(
                {(code, language_name(code)) for code in _user_languages(request.user)}, key=lambda x: x[1]
            ),
        },
        status=400 if form.errors else 200,
    )


def _date_value(form: HistoryFilterForm, name: str) -> str:
    """What a date input shows again: the date as given, or the rejected text."""
    if name in form.errors:
        return form.data.get(name, "")
    day = form.cleaned_data.get(name)
    return day.isoformat() if day else ""


def _user_languages(user) -> list[str]:
    languages = session_list(user=user).order_by().values_list("language", flat=True).distinct()
    return [code for code in languages[:50] if code]


def _owned_session(request: HttpRequest, session_id):
    session = session_get(user=request.user, session_id=session_id)
    if session is None:
        # Someone else's session and a missing one look the same.
        raise Http404("No such session.")
    return session


@login_required
def session_detail(request: HttpRequest, session_id) -> HttpResponse:
    session = _owned_session(request, session_id)
    segments = list(segment_list(session=session))
    transcript = getattr(session, "transcript", None)
    latencies = sorted(s.latency_ms for s in segments if s.latency_ms is not None)
    return render(
        request,
        "transcription/session_detail.html",
        {
            "session": session,
            "segments": segments,
            "transcript_text": transcript.text if transcript else " ".join(s.text for s in segments),
            "word_count": transcript.word_count if transcript else 0,
            "median_latency_ms": latencies[len(latencies) // 2] if latencies else None,
            "language_name": language_name(session.language) if session.language else "",
            "model_name": _model_label((session.models_used or {}).get("final", "")),
            "exports": [
                (fmt, label, f"/api/v1/sessions/{session.pk}/export/{fmt}/") for fmt, label in EXPORT_FORMATS
            ],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def session_delete(request: HttpRequest, session_id) -> HttpResponse:
    """GET asks for confirmation (the page's dialog does it in place); POST deletes.

    A stream that is still live is not deleted: the session page says so instead.
    """
    session = _owned_session(request, session_id)
    if request.method == "GET":
        return render(request, "transcription/session_delete.html", {"session": session})
    try:
        services.session_delete(session=session)
    except services.SessionActive:
        messages.error(
            request, "This session is still being streamed. Stop the recording first, then delete it."
        )
        return redirect("session-detail", session_id=session.pk)
    messages.success(request, "The session and its transcript were deleted.")
    return redirect("history")


# -- usage ----------------------------------------------------------------------------------------


def _usage_summary(user) -> dict[str, Any]:
    limits = quota_for_user(user=user)
    usage = usage_for_month(user=user)
    used = usage.audio_seconds
    quota = limits.monthly_audio_seconds
    percent = 100.0 if quota <= 0 else min(100.0, used * 100.0 / quota)
    return {
        "month": usage.month,
        "used_seconds": used,
        "streamed_seconds": usage.audio_seconds_streamed,
        "uploaded_seconds": usage.audio_seconds_uploaded,
        "sessions": usage.sessions,
        "quota_seconds": quota,
        "remaining_seconds": usage_remaining_seconds(user=user, limits=limits, usage=usage),
        "percent": round(percent, 1),
        "level": "danger" if percent >= 90 else "warn" if percent >= 75 else "ok",
    }


@login_required
def usage(request: HttpRequest) -> HttpResponse:
    limits = quota_for_user(user=request.user)
    summary = _usage_summary(request.user)
    months = []
    month = month_start()
    for _ in range(6):
        row = usage_for_month(user=request.user, month=month)
        months.append({"month": month, "seconds": row.audio_seconds, "sessions": row.sessions})
        month = (month - dt.timedelta(days=1)).replace(day=1)
    peak = max([m["seconds"] for m in months] + [1.0])
    for m in months:
        m["percent"] = round(m["seconds"] * 100.0 / peak, 1)
    return render(request, "accounts/usage.html", {"usage": summary, "limits": limits, "months": months})


# -- API keys ---------------------------------------------------------------------------------------


def _keys_page(
    request: HttpRequest, *, created=None, secret: str = "", errors=None, form=None
) -> HttpResponse:
    keys = list(api_key_list(user=request.user))
    now = timezone.now()
    response = render(
        request,
        "accounts/keys.html",
        {
            "keys": keys,
            "active_count": sum(1 for k in keys if k.is_active(now)),
            "now": now,
            "self_service": api_key_self_service_enabled(),
            "scopes": Scope.choices,
            "created": created,
            "secret": secret,
            "errors": errors or {},
            "form": form or {"name": "", "scopes": [Scope.STREAM.value, Scope.HISTORY_READ.value]},
        },
        status=400 if errors else 200,
    )
    return response


@never_cache  # the one page that shows a secret must not be kept by any cache
@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _keys_page(request)
    if not api_key_self_service_enabled():
        return HttpResponseForbidden("API keys are managed by your administrator.")
    name = request.POST.get("name", "").strip()
    scopes = request.POST.getlist("scopes")
    errors = {}
    try:
        expires = date_field().clean(request.POST.get("expires", "").strip())
    except ValidationError:
        expires = None
        errors["expires"] = "Choose a date in the future."
    if len(name) > 100:
        errors["name"] = "Use at most 100 characters."
    if not scopes or set(scopes) - set(Scope.values):
        errors["scopes"] = "Choose at least one permission."
    if expires is not None and expires <= timezone.localdate():
        errors["expires"] = "Choose a date in the future."
    if errors:
        return _keys_page(request, errors=errors, form={"name": name, "scopes": scopes})
    key, secret = api_key_create(
        owner=request.user,
        name=name,
        scopes=scopes,
        expires_at=day_start(expires) if expires else None,
    )
    # Rendered in this response only (no redirect, no message cookie): the secret is never stored.
    return _keys_page(request, created=key, secret=secret)


@login_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    if not api_key_self_service_enabled():
        return HttpResponseForbidden("API keys are managed by your administrator.")
    key = api_key_list(user=request.user).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    api_key_revoke(key=key)
    label = key.name or key.prefix
    messages.success(request, f"Key “{label}” was revoked; apps using it are refused from now on.")
    return redirect("keys")
