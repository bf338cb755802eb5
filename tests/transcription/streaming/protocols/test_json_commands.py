"""Malformed JSON commands on every WebSocket protocol: deeply nested, too deep, too large.

Each is that protocol's documented answer to bad JSON (never `internal_error`), and nothing is
logged with a traceback: a client cannot fill the log by sending them.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.transcription.streaming.protocols.wsclient import communicator, expect_close, receive_json_until
from transcription.streaming.protocols.common import (
    MAX_COMMAND_CHARS,
    MAX_COMMAND_DEPTH,
    ProtocolError,
    loads_command,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_inference")]

# Past the C decoder's recursion limit: json.loads raises RecursionError on these.
NESTED_ARRAY = "[" * 5000 + "]" * 5000
NESTED_OBJECT = '{"type": "start", "options": ' + '{"a": ' * 994 + "1" + "}" * 994 + "}"
# Valid JSON, well within the decoder's limit, but deeper than any command needs.
TOO_DEEP = (
    '{"type": "configure", "keyterms": ' + "[" * (MAX_COMMAND_DEPTH + 5) + "]" * (MAX_COMMAND_DEPTH + 5) + "}"
)
BAD_COMMANDS = [NESTED_ARRAY, NESTED_OBJECT, TOO_DEEP]


@pytest.mark.parametrize("text", BAD_COMMANDS, ids=["nested_array", "nested_object", "too_deep"])
def test_the_shared_parser_answers_invalid_json(text):
    with pytest.raises(ProtocolError) as refused:
        loads_command(text, hint="Send JSON.")
    assert refused.value.code == "invalid_json"


def test_the_shared_parser_bounds_size_and_keeps_good_commands():
    assert loads_command('{"type": "ping", "id": [1, {"a": [2]}]}', hint="") == {
        "type": "ping",
        "id": [1, {"a": [2]}],
    }
    with pytest.raises(ProtocolError) as refused:
        loads_command(json.dumps({"type": "ping", "id": "x" * MAX_COMMAND_CHARS}), hint="")
    assert refused.value.code == "command_too_large"
    with pytest.raises(ProtocolError) as refused:
        loads_command("{not json", hint="Send JSON.")
    assert refused.value.code == "invalid_json" and refused.value.message == "Send JSON."


@pytest.fixture
def key(django_user_model):
    from accounts.services import api_key_create

    user = django_user_model.objects.create_user("json-user", password="pw-json-user-1")
    return api_key_create(owner=user, scopes=["stream"])[1]


def assert_no_traceback(caplog) -> None:
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not logged, [(r.name, r.getMessage()) for r in logged]


@pytest.mark.parametrize("text", BAD_COMMANDS, ids=["nested_array", "nested_object", "too_deep"])
async def test_ws_transcribe_answers_invalid_json_and_goes_on(key, text, caplog):
    comm = communicator("/ws/transcribe", [(b"x-api-key", key.encode())])
    assert (await comm.connect())[0]
    await receive_json_until(comm, "ready")
    await comm.send_to(text_data=text)
    error, _ = await receive_json_until(comm, "error")
    assert error["code"] == "invalid_json" and error["where"] == "command", error
    await comm.send_to(text_data=json.dumps({"type": "ping", "id": 1}))
    pong, _ = await receive_json_until(comm, "pong")
    assert pong["echo"] == 1
    await comm.disconnect()
    assert_no_traceback(caplog)


@pytest.mark.parametrize("text", BAD_COMMANDS, ids=["nested_array", "nested_object", "too_deep"])
async def test_v1_stream_control_answers_invalid_json(key, text, caplog):
    comm = communicator(
        "/v1/stream/control?client_id=c1&session_id=s1", [(b"authorization", f"Bearer {key}".encode())]
    )
    assert (await comm.connect())[0]
    await receive_json_until(comm, "status")
    await comm.send_to(text_data=text)
    error, _ = await receive_json_until(comm, "error")
    assert error["data"]["code"] == "invalid_json", error
    await comm.disconnect()
    assert_no_traceback(caplog)


@pytest.mark.parametrize("text", BAD_COMMANDS, ids=["nested_array", "nested_object", "too_deep"])
async def test_deepgram_live_answers_its_schema_error(key, text, caplog):
    comm = communicator(
        "/v1/listen?encoding=linear16&sample_rate=16000", [(b"authorization", f"Token {key}".encode())]
    )
    assert (await comm.connect())[0]
    await comm.send_to(text_data=text)
    error, _ = await receive_json_until(comm, "Error")
    assert error["variant"] == "SchemaError", error
    await comm.disconnect()
    assert_no_traceback(caplog)


@pytest.mark.parametrize("text", BAD_COMMANDS, ids=["nested_array", "nested_object", "too_deep"])
async def test_assemblyai_live_closes_3006_invalid_json(key, text, caplog):
    comm = communicator("/v3/ws?sample_rate=16000", [(b"authorization", key.encode())])
    assert (await comm.connect())[0]
    await receive_json_until(comm, "Begin")
    await comm.send_to(text_data=text)
    [error] = await expect_close(comm, 3006)
    assert error["error"].startswith("Invalid JSON"), error
    assert_no_traceback(caplog)


async def test_protocols_without_text_commands_refuse_a_nested_one_plainly(key, caplog):
    api = communicator("/api/v1/ws", [(b"x-api-key", key.encode())])
    assert (await api.connect())[0]
    await api.send_to(text_data=NESTED_ARRAY)
    await expect_close(api, 1003)
    v3 = communicator("/stt/v3/stream", [(b"x-api-key-id", key.encode())])
    assert (await v3.connect())[0]
    await receive_json_until(v3, "connected")
    await v3.send_to(text_data=NESTED_ARRAY)
    error, _ = await receive_json_until(v3, "error")
    assert error["code"] == "unsupported_message"
    await v3.disconnect()
    assert_no_traceback(caplog)
