"""Admin for users' keys, quotas and usage; keys are shown once on creation."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.models import ALL_SCOPES, AccountSettings, ActiveStream, ApiKey, Quota, Scope, Usage
from accounts.selectors import quota_for_user, usage_for_month
from accounts.services import api_key_create, api_key_revoke, quota_change_record
from audit.models import Action
from audit.services import audit_record, origin_of

User = get_user_model()


def usage_this_month(user) -> str:
    limits = quota_for_user(user=user)
    used = usage_for_month(user=user).audio_seconds
    limit = limits.monthly_audio_seconds
    percent = 100.0 * used / limit if limit else 100.0
    return f"{used / 60:.1f} / {limit / 60:.0f} min ({percent:.0f}%)"


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, initial=ALL_SCOPES, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["owner", "name", "scopes", "expires_at"]


class ApiKeyChangeForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "prefix",
        "name",
        "owner",
        "scope_list",
        "created_at",
        "last_used_at",
        "expires_at",
        "state",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at", "last_used_at"]
    search_fields = ["prefix", "name", "owner__username", "owner__email"]
    list_select_related = ["owner"]
    readonly_fields = ["owner", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_keys"]
    autocomplete_fields = ["owner"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ApiKeyChangeForm if obj else ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["owner", "name", "scopes", "expires_at"]
        return ["owner", "prefix", "name", "scopes", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            if form.changed_data:
                changes = {name: form.cleaned_data.get(name) for name in form.changed_data}
                audit_record(
                    Action.KEY_UPDATED,
                    target=f"API key {obj.prefix} of {obj.owner.get_username()}",
                    origin=origin_of(request, via="admin"),
                    details={"changes": changes},
                )
            return
        key, secret = api_key_create(
            owner=form.cleaned_data["owner"],
            name=form.cleaned_data.get("name", ""),
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data.get("expires_at"),
            origin=origin_of(request, via="admin"),
        )
        for field in ("pk", "prefix", "secret_hash", "scopes", "created_at"):
            setattr(obj, field, getattr(key, field))
        obj._state.adding = False
        # Rendered once by response_add, never stored (not even in the messages cookie).
        request._api_key_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "key": obj,
            "secret": request._api_key_secret,
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/accounts/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes or [])

    @admin.display(description="State")
    def state(self, obj: ApiKey) -> str:
        if obj.is_revoked:
            return "revoked"
        return "expired" if obj.is_expired() else "active"

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(key=key, origin=origin_of(request, via="admin"))
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


QUOTA_FIELDS = ["monthly_audio_seconds", "max_concurrent_streams", "max_session_seconds", "max_upload_bytes"]


def _stored_quota(pk) -> dict:
    """A quota row's limits as stored (before the form's values are saved over them)."""
    quota = Quota.objects.filter(pk=pk).first() if pk is not None else None
    return (
        {name: getattr(quota, name) for name in QUOTA_FIELDS} if quota else dict(settings.STT_DEFAULT_QUOTA)
    )


class QuotaAuditMixin:
    """Quota edits in the admin (its own page, the user page's inline) go to the audit log."""

    def quota_saved(self, request, quota: Quota, before: dict, *, created: bool) -> None:
        after = {name: getattr(quota, name) for name in QUOTA_FIELDS}
        origin = origin_of(request, via="admin")
        quota_change_record(user=quota.user, before=before, after=after, created=created, origin=origin)

    def quota_deleted(self, request, quota: Quota, before: dict) -> None:
        quota_change_record(
            user=quota.user, before=before, after=None, origin=origin_of(request, via="admin")
        )


class QuotaInline(admin.StackedInline):
    model = Quota
    can_delete = True
    extra = 0
    max_num = 1


class AccountSettingsInline(admin.StackedInline):
    """The user's own defaults: whether new sessions keep their audio (empty: the server's)."""

    model = AccountSettings
    can_delete = True
    extra = 0
    max_num = 1
    fields = ["store_audio", "updated_at"]
    readonly_fields = ["updated_at"]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fk_name = "owner"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["prefix", "name", "scopes", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        # Keys are created through the API key admin so the secret can be shown once.
        return False


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(QuotaAuditMixin, DjangoUserAdmin):
    inlines = [QuotaInline, AccountSettingsInline, ApiKeyInline]
    list_display = [*DjangoUserAdmin.list_display, "usage_month"]

    def save_formset(self, request, form, formset, change):
        if formset.model is not Quota:
            super().save_formset(request, form, formset, change)
            return
        before = {f.instance.pk: _stored_quota(f.instance.pk) for f in formset.forms if f.instance.pk}
        super().save_formset(request, form, formset, change)
        for quota in formset.new_objects:
            self.quota_saved(request, quota, _stored_quota(None), created=True)
        for quota, _fields in formset.changed_objects:
            self.quota_saved(request, quota, before[quota.pk], created=False)
        for quota in formset.deleted_objects:
            self.quota_deleted(request, quota, before[quota.pk])

    @admin.display(description="Usage this month")
    def usage_month(self, obj) -> str:
        return usage_this_month(obj)


@admin.register(Quota)
class QuotaAdmin(QuotaAuditMixin, admin.ModelAdmin):
    list_display = [
        "user",
        "monthly_minutes",
        "max_concurrent_streams",
        "max_session_seconds",
        "max_upload_bytes",
        "usage_month",
        "updated_at",
    ]
    list_filter = ["max_concurrent_streams", "updated_at"]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["user"]
    list_select_related = ["user"]

    def save_model(self, request, obj, form, change):
        before = _stored_quota(obj.pk if change else None)
        super().save_model(request, obj, form, change)
        self.quota_saved(request, obj, before, created=not change)

    def delete_model(self, request, obj):
        before = _stored_quota(obj.pk)
        super().delete_model(request, obj)
        self.quota_deleted(request, obj, before)

    def delete_queryset(self, request, queryset):
        quotas = [(quota, _stored_quota(quota.pk)) for quota in queryset.select_related("user")]
        super().delete_queryset(request, queryset)
        for quota, before in quotas:
            self.quota_deleted(request, quota, before)

    @admin.display(description="Monthly minutes", ordering="monthly_audio_seconds")
    def monthly_minutes(self, obj: Quota) -> float:
        return round(obj.monthly_audio_seconds / 60, 1)

    @admin.display(description="Usage this month")
    def usage_month(self, obj: Quota) -> str:
        return usage_this_month(obj.user)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Usage)
class UsageAdmin(ReadOnlyAdmin):
    list_display = ["user", "month", "audio_seconds_streamed", "audio_seconds_uploaded", "sessions"]
    list_filter = ["month"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    date_hierarchy = "month"


@admin.register(ActiveStream)
class ActiveStreamAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "endpoint", "server", "speaking", "started_at", "heartbeat_at", "alive"]
    list_filter = ["endpoint", "speaking"]
    search_fields = ["user__username", "server"]

    @admin.display(boolean=True)
    def alive(self, obj: ActiveStream) -> bool:
        return (timezone.now() - obj.heartbeat_at).total_seconds() < settings.STT_STREAM_HEARTBEAT_TTL_S
