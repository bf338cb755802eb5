"""The audit log in the admin: read-only, filtered by action, searched by actor, target or address."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor_name", "target", "address"]
    list_filter = ["action", "created_at"]
    search_fields = ["actor_name", "target", "address"]
    date_hierarchy = "created_at"
    fields = ["created_at", "action", "actor", "actor_name", "target", "address", "details_pretty"]
    readonly_fields = fields

    @admin.display(description="Details")
    def details_pretty(self, obj: AuditEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.details, indent=2, sort_keys=True))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
