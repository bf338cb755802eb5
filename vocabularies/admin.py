"""Admin of vocabularies: by owner, terms edited one per line and validated like everywhere else."""

from __future__ import annotations

from django.contrib import admin

from vocabularies.forms import VocabularyAdminForm
from vocabularies.models import Vocabulary


@admin.register(Vocabulary)
class VocabularyAdmin(admin.ModelAdmin):
    form = VocabularyAdminForm
    list_display = ["name", "owner", "term_count", "terms_preview", "updated_at"]
    list_filter = ["owner", "updated_at"]
    search_fields = ["name", "owner__username", "owner__email"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    readonly_fields = ["created_at", "updated_at"]
    fields = ["owner", "name", "terms", "created_at", "updated_at"]
    ordering = ["owner__username", "name"]

    @admin.display(description="terms")
    def term_count(self, vocabulary: Vocabulary) -> int:
        return len(vocabulary.terms or [])

    @admin.display(description="first terms")
    def terms_preview(self, vocabulary: Vocabulary) -> str:
        terms = list(vocabulary.terms or [])
        preview = ", ".join(terms[:5])
        return preview + (", …" if len(terms) > 5 else "")
