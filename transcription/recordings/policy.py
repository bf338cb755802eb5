"""Whether a session keeps its audio: its own option, else its user's default, else the server's."""

from __future__ import annotations

from django.conf import settings

from accounts.models import AccountSettings


def user_store_audio(user) -> bool | None:
    """The user's own default (None: they follow the server's)."""
    if user is None or not getattr(user, "pk", None):
        return None
    return AccountSettings.objects.filter(user_id=user.pk).values_list("store_audio", flat=True).first()


def store_audio_wanted(*, user, asked: bool | None) -> bool:
    """The session's option if given, else the user's default if set, else STT_AUDIO_STORE["DEFAULT"]."""
    if asked is not None:
        return bool(asked)
    mine = user_store_audio(user)
    if mine is not None:
        return mine
    return bool(settings.STT_AUDIO_STORE["DEFAULT"])


def user_store_audio_set(*, user, store_audio: bool | None) -> AccountSettings:
    """Set (or, with None, clear) the user's default."""
    row, _ = AccountSettings.objects.update_or_create(user=user, defaults={"store_audio": store_audio})
    return row
