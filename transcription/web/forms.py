"""Forms of the web pages: the history filters and naming a session's speakers."""

from __future__ import annotations

from django import forms

from transcription.models import Endpoint, SessionStatus
from transcription.selectors import started_bounds

SENTIMENT_CHOICES = [("positive", "Positive"), ("neutral", "Neutral"), ("negative", "Negative")]

# What <input type="date"> sends; other spellings are refused rather than guessed.
DATE_INPUT_FORMATS = ["%Y-%m-%d"]
DATE_ERRORS = {"invalid": "Enter a date as YYYY-MM-DD."}


def date_field(**kwargs) -> forms.DateField:
    return forms.DateField(
        required=False, input_formats=DATE_INPUT_FORMATS, error_messages=DATE_ERRORS, **kwargs
    )


class HistoryFilterForm(forms.Form):
    """The history page's query: each bad value is reported at its field and that filter ignored.

    Dates go to `session_list` as dates: `started_bounds` makes `to` inclusive and copes with the last
    day there is.
    """

    q = forms.CharField(required=False)
    endpoint = forms.ChoiceField(required=False, choices=[("", "All sources"), *Endpoint.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *SessionStatus.choices])
    language = forms.CharField(required=False, max_length=32)
    topic = forms.CharField(required=False)
    sentiment = forms.ChoiceField(required=False, choices=[("", "Any sentiment"), *SENTIMENT_CHOICES])
    from_ = date_field()
    to = date_field()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # `from` is a Python keyword: declared as `from_`, named `from` in the query string.
        self.fields["from"] = self.fields.pop("from_")

    def clean_q(self) -> str:
        return self.cleaned_data["q"][:200]

    def clean_topic(self) -> str:
        return self.cleaned_data["topic"][:200]

    def clean(self) -> dict:
        data = super().clean()
        for name in ("from", "to"):
            day = data.get(name)
            if day is None:
                continue
            try:
                started_bounds(day, None) if name == "from" else started_bounds(None, day)
            except OverflowError:
                self.add_error(name, "Choose a later date.")
        return data

    def filters(self) -> dict:
        """The valid filters, as keyword arguments of `session_list` (call after `is_valid`)."""
        data = self.cleaned_data
        return {
            "q": data.get("q") or "",
            "endpoint": data.get("endpoint") or "",
            "status": data.get("status") or "",
            "language": data.get("language") or "",
            "topic": data.get("topic") or "",
            "sentiment": data.get("sentiment") or "",
            "started_from": data.get("from"),
            "started_to": data.get("to"),
        }


class SpeakerRenameForm(forms.Form):
    """A speaker's new name (blank: back to `Speaker N`); the label says which speaker."""

    label = forms.CharField(max_length=64, widget=forms.HiddenInput)
    name = forms.CharField(required=False, max_length=100, strip=True)
