"""Writing the audit log: `audit_record(action, ...)`, with `Origin` saying who asked and from where.

Callers pass an `Origin` built from the request (`origin_of(request, via="api")`) or one naming the
shell (`Origin(via="manage.py apikey")`); a change made without one is still recorded, actor-less.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from audit.models import Action, AuditEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    """Who made a change (`user`: None for the shell or an anonymous client), from which address,
    and through what (`via`: admin, api, web, a command's name)."""

    user: Any = None
    address: str | None = None
    via: str = ""


def clean_address(raw: Any) -> str | None:
    """The address as a normalized IP, or None when it is not one (a Unix socket, a test client)."""
    try:
        return str(ipaddress.ip_address(str(raw).strip()))
    except ValueError:
        return None


def origin_of(request, *, via: str) -> Origin:
    """The Origin of a Django (or DRF) request: its signed-in user and REMOTE_ADDR."""
    user = getattr(request, "user", None)
    return Origin(
        user=user if user is not None and user.is_authenticated else None,
        address=request.META.get("REMOTE_ADDR"),
        via=via,
    )


def _json(value: Any) -> Any:
    """`value` as plain JSON (dates and the like as strings), as the JSONField stores it."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_record(
    action: Action | str,
    *,
    target: str = "",
    origin: Origin | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one event. The particulars go in `details` (JSON); `via` is added to them."""
    origin = origin or Origin()
    user = origin.user
    body = dict(details or {})
    if origin.via:
        body.setdefault("via", origin.via)
    event = AuditEvent.objects.create(
        action=str(action),
        actor=user if user is not None and getattr(user, "pk", None) is not None else None,
        actor_name=getattr(user, "username", "") or "",
        target=target[:200],
        address=clean_address(origin.address) if origin.address else None,
        details=_json(body),
    )
    log.info("audit: %s %s by %s", event.action, event.target, event.actor_name or "-")
    return event
