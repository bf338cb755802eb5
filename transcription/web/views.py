"""Server-rendered web pages: home, live transcription, history, usage and API keys."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.selectors import quota_for_user
from accounts.views import usage_summary
from transcription import runtime_config, services
from transcription.models import Endpoint, SessionStatus
from transcription.ops import startup
from transcription.selectors import segment_list, session_get, session_list
from transcription.speech_models import languages_for_model, model_display_name
from transcription.streaming.service import current_service
from transcription.templatetags.ui import language_name
from transcription.web.forms import HistoryFilterForm

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 20
EXPORT_FORMATS = (("txt", "Text"), ("srt", "SRT"), ("vtt", "WebVTT"), ("json", "JSON"))


def _languages() -> tuple[list[tuple[str, str]], bool]:
    """(code, name) of the languages the model produces, sorted by name, and whether it is multilingual.

    From the running inference service (the engine's own list); before it has started, an English-only
    model is still known by its name, and a multilingual one offers automatic detection only.
    """
    service = current_service()
    if service is not None and service.ready:
        codes = list(service.supported_languages)
    else:
        codes = languages_for_model(settings.STT_INFERENCE["MODEL"]) or []
    named = sorted(((code, language_name(code)) for code in codes), key=lambda item: item[1])
    return named, len(codes) != 1


# -- home ---------------------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    """Landing page; signed-in users get their month at a glance and recent sessions."""
    if not request.user.is_authenticated:
        return render(request, "home.html")
    return render(
        request,
        "home.html",
        {"usage": usage_summary(request.user), "recent": list(session_list(user=request.user)[:5])},
    )


# -- live -----------------------------------------------------------------------------------------


@login_required
def live(request: HttpRequest) -> HttpResponse:
    cfg = runtime_config.current()
    limits = quota_for_user(user=request.user)
    languages, multilingual = _languages()
    usage = usage_summary(request.user)
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
            "model_name": model_display_name(cfg["model"]),
            "limits": limits,
            "usage": usage,
            "settings_public": {
                "post_speech_silence_duration": cfg["post_speech_silence_duration"],
                "max_segment_seconds": cfg["max_segment_seconds"],
                "realtime_interval_ms": cfg["realtime_interval_ms"],
            },
        },
    )


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
            "model_name": model_display_name((session.models_used or {}).get("final", "")),
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
