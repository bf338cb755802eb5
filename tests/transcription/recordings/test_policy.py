"""Which setting decides whether a session keeps its audio: session > user > server."""

from __future__ import annotations

import pytest

from accounts.models import AccountSettings
from transcription.recordings.policy import store_audio_wanted, user_store_audio_set

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("server", [True, False])
def test_without_user_or_session_choice_the_server_default_decides(settings, alice, server):
    settings.STT_AUDIO_STORE = {**settings.STT_AUDIO_STORE, "DEFAULT": server}
    assert store_audio_wanted(user=alice, asked=None) is server
    AccountSettings.objects.create(user=alice, store_audio=None)  # a row that leaves it to the server
    assert store_audio_wanted(user=alice, asked=None) is server


@pytest.mark.parametrize("server", [True, False])
@pytest.mark.parametrize("mine", [True, False])
def test_the_user_default_beats_the_server(settings, alice, server, mine):
    settings.STT_AUDIO_STORE = {**settings.STT_AUDIO_STORE, "DEFAULT": server}
    user_store_audio_set(user=alice, store_audio=mine)
    assert store_audio_wanted(user=alice, asked=None) is mine


@pytest.mark.parametrize("mine", [True, False, None])
@pytest.mark.parametrize("asked", [True, False])
def test_the_session_option_beats_everything(settings, alice, mine, asked):
    settings.STT_AUDIO_STORE = {**settings.STT_AUDIO_STORE, "DEFAULT": not asked}
    user_store_audio_set(user=alice, store_audio=mine)
    assert store_audio_wanted(user=alice, asked=asked) is asked


def test_one_users_default_is_not_anothers(settings, alice, bob):
    settings.STT_AUDIO_STORE = {**settings.STT_AUDIO_STORE, "DEFAULT": False}
    user_store_audio_set(user=alice, store_audio=True)
    assert store_audio_wanted(user=alice, asked=None) is True
    assert store_audio_wanted(user=bob, asked=None) is False


@pytest.mark.parametrize("value", ["yes", 1, [], {}])
def test_a_non_boolean_store_audio_option_is_refused_with_a_stable_code(value):
    from transcription.streaming.protocols.common import ProtocolError
    from transcription.streaming.protocols.v1_stream.wire import StreamConfig, config_from_start
    from transcription.streaming.protocols.ws_transcribe import store_audio_option

    with pytest.raises(ProtocolError) as ws:
        store_audio_option({"storeAudio": value})
    with pytest.raises(ProtocolError) as v1:
        config_from_start({"config": {"store_audio": value}}, StreamConfig(), languages=None)
    assert ws.value.code == v1.value.code == "invalid_option"


def test_store_audio_options_read_as_given():
    from transcription.streaming.protocols.v1_stream.wire import StreamConfig, config_from_start
    from transcription.streaming.protocols.ws_transcribe import store_audio_option

    assert store_audio_option({"storeAudio": True}) is True
    assert store_audio_option({}) is None
    core = {"config": {"core_settings": {"store_audio": False}}}
    assert config_from_start(core, StreamConfig(), languages=None).store_audio is False
    assert config_from_start({}, StreamConfig(), languages=None).store_audio is None
