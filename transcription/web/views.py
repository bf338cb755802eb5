"""Server-rendered web pages: home, live transcription, history, usage and API keys."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
from transcription.corrections import MAX_TEXT_CHARS, edit_refusal, sessions_with_edited
from transcription.models import Endpoint, Segment, SessionSpeaker, SessionStatus, speaker_display_name
from transcription.ops import startup
from transcription.recordings.page import player_context
from transcription.recordings.policy import store_audio_wanted
from transcription.selectors import (
    segment_list,
    segment_speaker_name,
    session_get,
    session_list,
    speaker_label_exists,
    speaker_list,
    topic_list,
)
from transcription.speech_models import languages_for_model, model_display_name
from transcription.streaming.service import current_service
from transcription.templatetags.ui import language_name
from transcription.uploads.decode import ACCEPTED_FORMATS
from transcription.wake import wake_offer
from transcription.web.forms import SENTIMENT_CHOICES, HistoryFilterForm, SpeakerRenameForm
from vocabularies.selectors import vocabulary_list

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 20
EXPORT_FORMATS = (("txt", "Text"), ("srt", "SRT"), ("vtt", "WebVTT"), ("json", "JSON"))
# Speaker colours: .spk-1 ... .spk-8 in app.css; static/js/live/format.js picks them the same way.
SPEAKER_TONES = 8
REDACTED_KINDS = {
    "pci": ("card number", "card numbers"),
    "phone": ("phone number", "phone numbers"),
    "email": ("e-mail address", "e-mail addresses"),
    "ssn": ("social security number", "social security numbers"),
    "numbers": ("number", "numbers"),
}


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
    wake = _wake_choices(wake_offer(cfg))
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
        "wake": {
            "backend": wake["wakeword_backend"],
            "words": wake["wake_words"],
            "enabled": wake["on"],
            "timeoutSeconds": wake["wake_word_timeout"],
            "followupSeconds": wake["wake_word_followup_window"],
            "porcupine": wake["porcupine"],
        },
    }
    return render(
        request,
        "transcription/live.html",
        {
            "config": config,
            "enrichment": _enrichment_offer(),
            "wake": wake,
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
def upload(request: HttpRequest) -> HttpResponse:
    """The upload page: it posts the file to POST /api/v1/transcriptions/ (session cookie and CSRF
    token), so its checks and limits are the API's; static/js/upload.js shows both progress bars."""
    cfg = runtime_config.current()
    languages, multilingual = _languages()
    limits = quota_for_user(user=request.user)
    config = {
        "createUrl": reverse("api-transcription-create"),
        "sessionUrl": reverse("session-detail", args=["00000000-0000-0000-0000-000000000000"]),
        "maxUploadBytes": limits.max_upload_bytes,
    }
    return render(
        request,
        "transcription/upload.html",
        {
            "config": config,
            "enrichment": _enrichment_offer(),
            "languages": languages,
            "multilingual": multilingual,
            "default_language": cfg["language"] or ("" if multilingual else languages[0][0]),
            "word_timestamps_default": cfg["word_timestamps"],
            "vocabularies": list(vocabulary_list(user=request.user).values_list("name", flat=True)),
            "store_audio_default": store_audio_wanted(user=request.user, asked=None),
            "accepted_formats": ACCEPTED_FORMATS,
            "limits": limits,
            "usage": usage_summary(request.user),
        },
    )


def _enrichment_offer() -> dict:
    """Which enrichment switches the live page offers (the server's stages) and which start on."""
    cfg = getattr(settings, "STT_ENRICHMENT", None) or {}
    defaults = set(cfg.get("DEFAULT") or ())
    offer = {}
    for name, setting in (
        ("speakers", "SPEAKERS"),
        ("sentiment", "SENTIMENT"),
        ("topics", "TOPICS"),
        ("profanity_filter", "FILTERS"),
        ("redact", "FILTERS"),
    ):
        available = bool(cfg.get(setting, False))
        offer[name] = {"available": available, "on": available and name in defaults}
    offer["any"] = any(item["available"] for item in offer.values())
    offer["redact_always"] = cfg.get("REDACT_ALWAYS") or ""
    return offer


def _wake_choices(offer: dict) -> dict:
    """The wake-word control: `offer` (transcription.wake.wake_offer) and the words to pick from.

    The choices are (value, label, backend): the server's words first (all of them together, then
    each, with the server's backend), then Porcupine's other keywords; a free phrase (the transcript
    backend) is always offered besides. Without Porcupine only the phrase is offered, filled with the
    server's words when its backend is the transcript one.
    """
    keywords = list(offer.get("porcupine_keywords") or ())
    backend = offer.get("wakeword_backend") or ""
    words = [w for w in (offer.get("wake_words") or "").split(",") if w]
    usable = bool(words) and (backend == "transcript" or (backend == "pvporcupine" and bool(keywords)))
    server: list[tuple[str, str, str]] = []
    if usable and keywords:
        if len(words) > 1:
            server.append((",".join(words), " or ".join(words), backend))
        server += [(word, word, backend) for word in words]
    taken = {value for value, _, _ in server}
    others = [(word, word, "pvporcupine") for word in keywords if word not in taken]
    if server:
        selected = server[0][0]
    else:
        selected = "jarvis" if "jarvis" in keywords else (others[0][0] if others else "")
    return {
        **offer,
        "porcupine": bool(keywords),
        "server_words": words if usable else [],
        "server_choices": server,
        "keyword_choices": others,
        "selected": selected,
        "phrase_default": ", ".join(words) if usable and not keywords else "",
        "on": bool(offer.get("wake_word_enabled")) and usable,
    }


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
    sessions = sessions_with_edited(session_list(user=request.user, **filters)).prefetch_related("topics")
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
            "sentiments": SENTIMENT_CHOICES,
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


def speaker_tone(label: str) -> int:
    """A stable colour (1..SPEAKER_TONES) for a speaker label: its number round the palette (the
    live page's speakerTone in static/js/live/format.js is the same rule)."""
    _, cut, number = label.rpartition("_")
    n = int(number) if cut and number.isascii() and number.isdecimal() else sum(ord(c) for c in label)
    return (n - 1) % SPEAKER_TONES + 1


@dataclass(frozen=True)
class SpeakerBadge:
    label: str
    name: str
    tone: int


@dataclass(frozen=True)
class SegmentRow:
    segment: Segment
    speaker: SpeakerBadge | None
    original_speaker: str = ""  # what the speaker before a correction is called


@dataclass(frozen=True)
class SpeakerPanel:
    speaker: SessionSpeaker
    default_name: str
    tone: int
    share: float  # of the session's speaking time, in percent
    value: str  # what the rename field shows
    error: str = ""


def _redacted_summary(redacted: dict) -> list[str]:
    """{"pci": 2, "email": 1} -> ["2 card numbers", "1 e-mail address"]."""
    summary = []
    for kind, count in (redacted or {}).items():
        if not isinstance(count, int) or count <= 0:
            continue
        one, many = REDACTED_KINDS.get(kind, (kind, kind))
        summary.append(f"{count} {one if count == 1 else many}")
    return summary


@login_required
@require_http_methods(["GET", "POST"])
def session_detail(request: HttpRequest, session_id) -> HttpResponse:
    """A session; POST names one of its speakers (the owner's page only, as every session page)."""
    session = _owned_session(request, session_id)
    if request.method == "POST":
        form = SpeakerRenameForm(request.POST)
        label = request.POST.get("label", "")
        if len(label) > 64 or not speaker_label_exists(session=session, label=label):
            raise Http404("No such speaker.")
        if form.is_valid():
            speaker = services.speaker_rename(session=session, label=label, name=form.cleaned_data["name"])
            default = speaker_display_name(label)
            named = f"{default} is now called {speaker.name}."
            messages.success(request, named if speaker.name else f"{default} is unnamed again.")
            return redirect(reverse("session-detail", args=[session.pk]) + "#speakers")
        errors = {label: (form.data.get("name", ""), next(iter(form.errors.values()))[0])}
        return _session_page(request, session, rename_errors=errors, status=400)
    return _session_page(request, session)


def _session_page(
    request: HttpRequest,
    session,
    *,
    rename_errors: dict[str, tuple[str, str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The session page; `rename_errors` {label: (the name sent, why it was refused)}."""
    segments = list(segment_list(session=session))
    speakers = speaker_list(session=session)
    total_speaking = sum(s.speaking_time_s for s in speakers) or 0.0
    names = {s.label: s.display_name for s in speakers}
    rows = [
        SegmentRow(
            segment=seg,
            speaker=SpeakerBadge(seg.speaker, segment_speaker_name(segment=seg), speaker_tone(seg.speaker))
            if seg.speaker
            else None,
            original_speaker=names.get(seg.original_speaker) or speaker_display_name(seg.original_speaker)
            if seg.original_speaker
            else "",
        )
        for seg in segments
    ]
    panel = []
    for speaker in speakers:
        value, error = (rename_errors or {}).get(speaker.label, (speaker.name, ""))
        panel.append(
            SpeakerPanel(
                speaker=speaker,
                default_name=speaker_display_name(speaker.label),
                tone=speaker_tone(speaker.label),
                share=round(100.0 * speaker.speaking_time_s / total_speaking, 1) if total_speaking else 0.0,
                value=value,
                error=error,
            )
        )
    analysis = session.analysis or {}
    overall = (analysis.get("sentiment") or {}).get("overall") or {}
    filters = analysis.get("filters") or {}
    profanity = filters.get("profanity") or {}
    transcript = getattr(session, "transcript", None)
    latencies = sorted(s.latency_ms for s in segments if s.latency_ms is not None)
    return render(
        request,
        "transcription/session_detail.html",
        {
            "session": session,
            "segments": segments,
            "rows": rows,
            "speakers": panel,
            "sentiment_cells": [s for s in segments if s.sentiment],
            "sentiment_overall": session.sentiment or overall.get("label", ""),
            "sentiment_score": overall.get("score"),
            "topics": topic_list(session=session),
            "profanity_detected": bool(profanity.get("detected")),
            "profanity_count": len(profanity.get("filtered_words") or ()),
            "redacted": _redacted_summary(filters.get("redacted") or {}),
            "transcript_text": transcript.text if transcript else " ".join(s.text for s in segments),
            "word_count": transcript.word_count if transcript else 0,
            "median_latency_ms": latencies[len(latencies) // 2] if latencies else None,
            "language_name": language_name(session.language) if session.language else "",
            "model_name": model_display_name((session.models_used or {}).get("final", "")),
            "editable": edit_refusal(session) is None,
            "edit_config": {
                "segmentUrl": reverse("api-session-segment", args=[session.pk, 0]).removesuffix("0/"),
                "sessionUrl": reverse("api-session-detail", args=[session.pk]),
                "maxTextChars": MAX_TEXT_CHARS,
                "speakers": [[s.label, s.display_name] for s in speakers],
            },
            "exports": [
                (fmt, label, f"/api/v1/sessions/{session.pk}/export/{fmt}/") for fmt, label in EXPORT_FORMATS
            ],
            "player": player_context(session=session, segments=segments),  # stored audio (recordings)
        },
        status=status,
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
