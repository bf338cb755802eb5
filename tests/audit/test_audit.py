"""The audit log: key creation and revocation (admin, `manage.py apikey`, the keys API, the keys page),
quota changes (`manage.py quota`, the admin's quota page and the user page's inline), runtime-setting
changes (PATCH /api/config); read-only in the admin. Lock-outs: tests/accounts/test_ratelimit.py."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiKey, Quota
from accounts.services import api_key_create, api_key_revoke, quota_set
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def admin_client(root):
    client = Client(REMOTE_ADDR="192.0.2.10")
    client.force_login(root)
    return client


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


class _Form(HTMLParser):
    """The fields a browser would send for the page's main form (inputs, checked boxes, selects)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.setdefault(name, []).append(
                a.get("value") or ("on" if a.get("type") == "checkbox" else "")
            )
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_of(response) -> dict[str, list[str]]:
    parser = _Form()
    parser.feed(response.content.decode())
    return parser.data


# -- API keys -------------------------------------------------------------------------------------------


def test_keys_made_and_revoked_through_the_api_name_their_user_and_address(alice):
    client = APIClient(REMOTE_ADDR="203.0.113.50")
    client.force_login(alice)
    body = client.post("/api/v1/keys/", {"name": "laptop", "scopes": ["stream"]}, format="json").json()
    assert client.delete(f"/api/v1/keys/{body['id']}/").status_code == 204
    assert client.delete(f"/api/v1/keys/{body['id']}/").status_code == 204  # idempotent: not recorded again
    (created,) = events(Action.KEY_CREATED)
    (revoked,) = events(Action.KEY_REVOKED)
    for event in (created, revoked):
        assert event.actor == alice and event.actor_name == "alice" and event.address == "203.0.113.50"
        assert event.target == f"API key {body['prefix']} of alice" and event.details["via"] == "api"
    assert created.details == {
        "owner": "alice", "name": "laptop", "scopes": ["stream"], "expires_at": None, "via": "api"
    }  # fmt: skip
    assert body["key"] not in json.dumps(created.details), "never the secret"


def test_keys_made_and_revoked_on_the_keys_page(alice):
    client = Client(REMOTE_ADDR="203.0.113.51")
    client.force_login(alice)
    assert client.post("/keys/", {"name": "phone", "scopes": ["stream"]}).status_code == 200
    key = ApiKey.objects.get(name="phone")
    client.post(reverse("key-revoke", args=[key.pk]))
    assert [e.details["via"] for e in events(Action.KEY_CREATED) + events(Action.KEY_REVOKED)] == [
        "web",
        "web",
    ]
    assert {e.actor_id for e in AuditEvent.objects.all()} == {alice.pk}


def test_the_apikey_command_is_recorded_without_an_actor(alice):
    out = StringIO()
    call_command("apikey", "create", "--user", "alice", "--scopes", "stream", stdout=out, stderr=StringIO())
    prefix = out.getvalue().strip().split("_")[1]
    call_command("apikey", "revoke", prefix, stdout=StringIO())
    for event in events(Action.KEY_CREATED) + events(Action.KEY_REVOKED):
        assert event.actor is None and event.actor_name == "" and event.address is None
        assert event.details["via"] == "manage.py apikey" and event.target == f"API key {prefix} of alice"


def test_the_admin_records_adding_changing_and_revoking_keys(admin_client, alice, root):
    admin_client.post(
        reverse("admin:accounts_apikey_add"), {"owner": alice.pk, "name": "from-admin", "scopes": ["stream"]}
    )
    key = ApiKey.objects.get(name="from-admin")
    change_url = reverse("admin:accounts_apikey_change", args=[key.pk])
    data = form_of(admin_client.get(change_url))
    data.update({"name": ["renamed"], "scopes": ["stream", "history:read"]})
    assert admin_client.post(change_url, data).status_code == 302
    admin_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )
    (created,) = events(Action.KEY_CREATED)
    (updated,) = events(Action.KEY_UPDATED)
    (revoked,) = events(Action.KEY_REVOKED)
    assert {e.actor_id for e in (created, updated, revoked)} == {root.pk}
    assert {e.details["via"] for e in (created, updated, revoked)} == {"admin"}
    assert created.address == "192.0.2.10"
    assert updated.details["changes"] == {"name": "renamed", "scopes": ["stream", "history:read"]}


# -- quotas -------------------------------------------------------------------------------------------------


def test_quota_changes_say_what_changed_from_what(alice, settings):
    call_command("quota", "set", "--user", "alice", "--max-streams", "5", stdout=StringIO())
    call_command("quota", "set", "--user", "alice", "--max-streams", "5", stdout=StringIO())  # no change
    quota_set(user=alice, monthly_audio_seconds=60)
    first, second = events(Action.QUOTA_CHANGED)
    default_streams = settings.STT_DEFAULT_QUOTA["max_concurrent_streams"]
    assert first.details == {
        "user": "alice",
        "changes": {"max_concurrent_streams": [default_streams, 5]},
        "removed": False,
        "via": "manage.py quota",
    }
    assert first.target == "quota of alice" and first.actor is None
    monthly = settings.STT_DEFAULT_QUOTA["monthly_audio_seconds"]
    assert second.details["changes"] == {"monthly_audio_seconds": [monthly, 60]}


def test_quota_edits_in_the_admin_are_recorded(admin_client, alice, root):
    quota = quota_set(user=alice, max_concurrent_streams=2)
    AuditEvent.objects.all().delete()
    url = reverse("admin:accounts_quota_change", args=[quota.pk])
    data = form_of(admin_client.get(url))
    data["max_concurrent_streams"] = ["7"]
    assert admin_client.post(url, data).status_code == 302
    (event,) = events(Action.QUOTA_CHANGED)
    assert event.actor == root and event.details["changes"] == {"max_concurrent_streams": [2, 7]}
    assert event.details["via"] == "admin" and event.address == "192.0.2.10"
    admin_client.post(reverse("admin:accounts_quota_delete", args=[quota.pk]), {"post": "yes"})
    removed = events(Action.QUOTA_CHANGED)[-1]
    assert removed.details["removed"] is True and not Quota.objects.filter(user=alice).exists()


def test_quota_edits_in_the_user_pages_inline_are_recorded(admin_client, alice, root):
    quota_set(user=alice, max_concurrent_streams=2)
    AuditEvent.objects.all().delete()
    url = reverse("admin:auth_user_change", args=[alice.pk])
    data = form_of(admin_client.get(url))
    data["quota-0-max_concurrent_streams"] = ["9"]
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    (event,) = events(Action.QUOTA_CHANGED)
    assert event.actor == root and event.details["changes"] == {"max_concurrent_streams": [2, 9]}


# -- runtime settings -----------------------------------------------------------------------------------


def test_runtime_setting_changes_are_recorded(root):
    key = api_key_create(owner=root, scopes=["stream"])[1]
    client = Client(REMOTE_ADDR="192.0.2.11")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    body = json.dumps({"settings": {"max_sessions": 7}})
    assert client.patch("/api/config", body, content_type="application/json", **auth).status_code == 200
    refused = json.dumps({"settings": {"max_sessions": 7, "no_such": 1}})
    assert client.patch("/api/config", refused, content_type="application/json", **auth).status_code == 400
    (event,) = events(Action.RUNTIME_CONFIG_CHANGED)
    assert event.actor == root and event.address == "192.0.2.11" and event.target == "max_sessions"
    assert event.details == {"applied": {"max_sessions": 7}, "via": "api"}


# -- the admin: read-only -------------------------------------------------------------------------------


def test_the_log_is_read_only_in_the_admin_filtered_by_action_and_searchable(admin_client, alice):
    key, _ = api_key_create(owner=alice)
    api_key_revoke(key=key)
    quota_set(user=alice, max_concurrent_streams=4)
    changelist = reverse("admin:audit_auditevent_changelist")
    page = admin_client.get(changelist)
    assert page.status_code == 200 and page.content.decode().count("quota of alice") >= 1
    only_revoked = admin_client.get(changelist, {"action__exact": "key_revoked"}).content.decode()
    assert f"API key {key.prefix} of alice" in only_revoked and "quota of alice" not in only_revoked
    found = admin_client.get(changelist, {"q": key.prefix}).content.decode()
    assert "2 audit events" in found or "2 results" in found
    event = AuditEvent.objects.filter(action=Action.QUOTA_CHANGED).get()
    detail = admin_client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert detail.status_code == 200 and "max_concurrent_streams" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()
