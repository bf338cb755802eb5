"""Account pages: this month's usage and self-service API keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
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
from audit.services import origin_of
from transcription.recordings.forms import StoreAudioForm
from transcription.recordings.store import audio_bytes_stored
from transcription.selectors import day_start
from transcription.web.forms import date_field

# -- usage ----------------------------------------------------------------------------------------


def usage_summary(user) -> dict[str, Any]:
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
        "audio_bytes_stored": audio_bytes_stored(user=user),
    }


@login_required
@require_http_methods(["GET", "POST"])
def usage(request: HttpRequest) -> HttpResponse:
    """This month's usage; POST sets whether new sessions keep their audio (the user's default)."""
    data = request.POST if request.method == "POST" else None
    audio_form = StoreAudioForm.for_user(request.user, data=data)
    if request.method == "POST" and audio_form.is_valid():
        audio_form.save(request.user)
        messages.success(request, "Saved: " + audio_form.describe(request.user))
        return redirect("usage")
    limits = quota_for_user(user=request.user)
    summary = usage_summary(request.user)
    months = []
    month = month_start()
    for _ in range(6):
        row = usage_for_month(user=request.user, month=month)
        months.append({"month": month, "seconds": row.audio_seconds, "sessions": row.sessions})
        month = (month - dt.timedelta(days=1)).replace(day=1)
    peak = max([m["seconds"] for m in months] + [1.0])
    for m in months:
        m["percent"] = round(m["seconds"] * 100.0 / peak, 1)
    context = {"usage": summary, "limits": limits, "months": months, "audio_form": audio_form}
    return render(request, "accounts/usage.html", context, status=400 if audio_form.errors else 200)


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
        origin=origin_of(request, via="web"),
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
    api_key_revoke(key=key, origin=origin_of(request, via="web"))
    label = key.name or key.prefix
    messages.success(request, f"Key “{label}” was revoked; apps using it are refused from now on.")
    return redirect("keys")
