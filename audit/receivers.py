"""django-axes' `user_locked_out`: one audit event when a login lock-out starts.

Axes sends the signal on the failure that reaches the limit and again on attempts made while locked
out; only the first is recorded (the failure count then equals the limit).
"""

from __future__ import annotations

from axes.helpers import get_failure_limit
from axes.signals import user_locked_out
from django.dispatch import receiver

from audit.models import Action
from audit.services import Origin, audit_record


@receiver(user_locked_out, dispatch_uid="audit.login_lockout")
def login_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    failures = getattr(request, "axes_failures_since_start", None)
    credentials = getattr(request, "axes_credentials", None)
    if request is None or failures != get_failure_limit(request, credentials):
        return
    audit_record(
        Action.LOCKOUT,
        target=f"login of {username or '?'}"[:200],
        origin=Origin(address=ip_address, via="login"),
        details={
            "kind": "login",
            "username": username or "",
            "failures": failures,
            "path": getattr(request, "path", ""),
        },
    )
