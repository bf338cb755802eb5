"""The user's own default for stored audio, as the usage page sets it."""

from __future__ import annotations

from django import forms
from django.conf import settings

from transcription.recordings.policy import user_store_audio, user_store_audio_set

CHOICES = {"default": None, "keep": True, "discard": False}


class StoreAudioForm(forms.Form):
    store_audio = forms.ChoiceField(
        label="Keep the audio of new sessions",
        choices=[
            ("default", "As the server decides"),
            ("keep", "Keep it (to play back)"),
            ("discard", "Do not keep it"),
        ],
        widget=forms.RadioSelect,
    )

    @classmethod
    def for_user(cls, user, *, data=None) -> StoreAudioForm:
        current = user_store_audio(user)
        initial = next(name for name, value in CHOICES.items() if value is current)
        return cls(data=data, initial={"store_audio": initial})

    @staticmethod
    def server_default() -> bool:
        return bool(settings.STT_AUDIO_STORE["DEFAULT"])

    def save(self, user) -> None:
        user_store_audio_set(user=user, store_audio=CHOICES[self.cleaned_data["store_audio"]])

    def describe(self, user) -> str:
        mine = user_store_audio(user)
        keeps = self.server_default() if mine is None else mine
        source = "the server's default" if mine is None else "your setting"
        return f"new sessions {'keep' if keeps else 'do not keep'} their audio ({source})."
