"""Forms of the vocabulary page and the admin: terms are edited as text, one term per line."""

from __future__ import annotations

from django import forms

from speech.keyterms import MAX_KEYTERM_CHARS, MAX_KEYTERMS, MAX_KEYTERMS_TOTAL_CHARS
from vocabularies.models import NAME_HELP, NAME_MAX_LENGTH, Vocabulary, validate_name, validate_terms

TERMS_HELP = (
    f"One term per line: at most {MAX_KEYTERMS} terms of up to {MAX_KEYTERM_CHARS} characters, "
    f"{MAX_KEYTERMS_TOTAL_CHARS} characters in all. Repeated terms are kept once."
)


class TermsField(forms.CharField):
    """A list of key terms shown and typed as lines; cleaned by the key-term rule."""

    widget = forms.Textarea

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", TERMS_HELP)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}))
        super().__init__(strip=False, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(term) for term in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list | tuple):
            return list(value)
        text = str(value or "")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def clean(self, value) -> list[str]:
        return validate_terms(super().clean(value))


def name_field() -> forms.CharField:
    return forms.CharField(max_length=NAME_MAX_LENGTH, validators=[validate_name], help_text=NAME_HELP)


class VocabularyForm(forms.Form):
    """The page's create and edit form (the owner is the signed-in user)."""

    name = name_field()
    terms = TermsField()


class VocabularyAdminForm(forms.ModelForm):
    terms = TermsField()

    class Meta:
        model = Vocabulary
        fields = ["owner", "name", "terms"]
