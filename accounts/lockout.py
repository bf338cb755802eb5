"""django-axes' answer to a locked-out sign-in (the web UI's and the admin's): 429, Retry-After, and
a page that says why and for how long (settings AXES_LOCKOUT_CALLABLE)."""

from __future__ import annotations

import math

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def _seconds_left(request: HttpRequest) -> int | None:
    """Until the lock-out of this user name from this address ends: the cool-off counts from the
    last failed attempt (None: no cool-off, locked until an administrator unlocks it)."""
    cool_off = get_cool_off(request)
    if not cool_off:
        return None
    last = AccessAttempt.objects.filter(
        username=get_client_username(request), ip_address=getattr(request, "axes_ip_address", None)
    ).aggregate(last=Max("attempt_time"))["last"]
    ends = (last or timezone.now()) + cool_off
    return max(1, math.ceil((ends - timezone.now()).total_seconds()))


def lockout_response(request: HttpRequest, *args) -> HttpResponse:
    # Axes' sync middleware passes (request, response, credentials), its async one (request, credentials).
    seconds = _seconds_left(request)
    response = render(
        request,
        "registration/locked_out.html",
        {"cooloff_minutes": math.ceil(seconds / 60) if seconds else None},
        status=429,
    )
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
