"""Deepgram's messages and response bodies, built from this server's finals (times in seconds)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from typing import Any

from transcription.compat.deepgram.params import ListenParams

# Deepgram's live close codes and the reasons its documentation gives them.
CLOSE_DATA = 1008  # DATA-0000: the payload cannot be decoded as audio
CLOSE_NET = 1011  # NET-0001: no audio and no message within the timeout
NET_0001 = "NET-0001"
DATA_0000 = "DATA-0000"
NET_0001_REASON = "NET-0001: no audio or KeepAlive within the timeout window"
DATA_0000_REASON = "DATA-0000: the payload cannot be decoded as audio"

_STRIP = re.compile(r"^[^\w']+|[^\w']+$")
_SPEAKER = re.compile(r"(\d+)$")


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def model_uuid(label: str) -> str:
    """A stable id for this server's model (Deepgram names models by UUID)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"stt-server:model:{label}"))


def model_info(label: str) -> dict[str, str]:
    return {"name": label, "version": "faster-whisper", "arch": "whisper"}


def speaker_number(label: str | None) -> int | None:
    """`speaker_1` -> 0: Deepgram numbers speakers from 0."""
    if not label:
        return None
    match = _SPEAKER.search(label)
    return int(match.group(1)) - 1 if match else None


def bare_word(text: str) -> str:
    """Deepgram's `word`: lower case, no surrounding punctuation."""
    return _STRIP.sub("", text.strip()).lower()


def plain_transcript(text: str) -> str:
    """The transcript Deepgram gives without punctuate/smart_format: lower case, no punctuation."""
    return " ".join(w for w in (bare_word(word) for word in text.split()) if w)


def words_out(
    words: Iterable[dict[str, Any]] | None,
    *,
    offset_s: float,
    params: ListenParams,
    speaker: str | None = None,
) -> list[dict[str, Any]]:
    """Our word timings (`offset_s` added: live words are relative to their segment) as Deepgram's."""
    out = []
    number = speaker_number(speaker) if params.diarize else None
    for w in words or []:
        text = str(w.get("word", "")).strip()
        if not text:
            continue
        item: dict[str, Any] = {
            "word": bare_word(text) or text.lower(),
            "start": round(float(w["start"]) + offset_s, 3),
            "end": round(float(w["end"]) + offset_s, 3),
            "confidence": round(float(w.get("probability") or 0.0), 4),
        }
        if params.punctuated:
            item["punctuated_word"] = text
        if params.diarize:
            item["speaker"] = number if number is not None else 0
        out.append(item)
    return out


def transcript_out(text: str, params: ListenParams) -> str:
    return text.strip() if params.punctuated else plain_transcript(text)


# -- live ------------------------------------------------------------------------------------------


def results_message(
    *,
    request_id: str,
    model: str,
    start_s: float,
    duration_s: float,
    transcript: str,
    confidence: float | None,
    words: list[dict[str, Any]],
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    channels: int = 1,
) -> dict[str, Any]:
    return {
        "type": "Results",
        "channel_index": [0, channels],
        "duration": round(max(0.0, duration_s), 3),
        "start": round(start_s, 3),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {
            "alternatives": [
                {"transcript": transcript, "confidence": round(confidence or 0.0, 4), "words": words}
            ]
        },
        "metadata": {
            "request_id": request_id,
            "model_info": model_info(model),
            "model_uuid": model_uuid(model),
        },
    }


def metadata_message(
    *, request_id: str, sha256: str, created: str, duration_s: float, channels: int, model: str
) -> dict[str, Any]:
    uid = model_uuid(model)
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": sha256,
        "created": created,
        "duration": round(duration_s, 3),
        "channels": channels,
        "models": [uid],
        "model_info": {uid: model_info(model)},
    }


def speech_started_message(timestamp_s: float, channels: int = 1) -> dict[str, Any]:
    return {"type": "SpeechStarted", "channel": [0, channels], "timestamp": round(timestamp_s, 3)}


def utterance_end_message(last_word_end_s: float, channels: int = 1) -> dict[str, Any]:
    return {"type": "UtteranceEnd", "channel": [0, channels], "last_word_end": round(last_word_end_s, 3)}


def error_message(variant: str, description: str, *, code: str | None = None, message: str = "") -> dict:
    """The SDK's ListenV1Error: `variant` (SchemaError for an unreadable message), `description`."""
    payload: dict[str, Any] = {"type": "Error", "variant": variant, "description": description}
    if code:
        payload["code"] = code
    payload["message"] = message
    return payload


# -- pre-recorded ----------------------------------------------------------------------------------


def rest_error(err_code: str, err_msg: str, request_id: str) -> dict[str, str]:
    return {"err_code": err_code, "err_msg": err_msg, "request_id": request_id}


def prerecorded_response(
    *,
    request_id: str,
    sha256: str,
    created: str,
    duration_s: float,
    channels: int,
    model: str,
    segments: list[dict[str, Any]],
    params: ListenParams,
) -> dict[str, Any]:
    """Deepgram's pre-recorded answer from stored segments ({text, start_s, end_s, confidence, words,
    speaker}); word times are offsets in the whole recording."""
    words: list[dict[str, Any]] = []
    utterances = []
    texts = []
    confidences = []
    for seg in segments:
        seg_words = words_out(seg["words"], offset_s=0.0, params=params, speaker=seg.get("speaker"))
        words.extend(seg_words)
        text = transcript_out(seg["text"], params)
        if text:
            texts.append(text)
        if seg.get("confidence") is not None:
            confidences.append(float(seg["confidence"]))
        if params.utterances and text:
            utterance = {
                "start": round(seg["start_s"], 3),
                "end": round(seg["end_s"], 3),
                "confidence": round(float(seg.get("confidence") or 0.0), 4),
                "channel": 0,
                "transcript": text,
                "words": seg_words,
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request_id}:{seg['start_s']}")),
            }
            if params.diarize:
                utterance["speaker"] = speaker_number(seg.get("speaker")) or 0
            utterances.append(utterance)
    alternative = {
        "transcript": " ".join(texts),
        "confidence": round(sum(confidences) / len(confidences), 4) if confidences else 0.0,
        "words": words,
    }
    results: dict[str, Any] = {"channels": [{"alternatives": [alternative]}]}
    if params.utterances:
        results["utterances"] = utterances
    metadata = metadata_message(
        request_id=request_id,
        sha256=sha256,
        created=created,
        duration_s=duration_s,
        channels=channels,
        model=model,
    )
    del metadata["type"]  # the live Metadata message's fields, without its type
    return {"metadata": metadata, "results": results}
