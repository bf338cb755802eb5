"""Builds the inference service from the STT_INFERENCE settings dict, and the process-wide instance."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any

from speech.inference.engine import Engine, build_engine, resolve_device
from speech.inference.service import InferenceService, LocalInferenceService, ServiceLimits
from speech.inference.wire import (
    CHANNEL_PREFIX,
    DEFAULT_MAX_MESSAGE_BYTES,
    HEARTBEAT_S,
    WORKER_TIMEOUT_S,
)
from transcription.speech_models import languages_for_model

DEFAULT_CONFIG: dict[str, Any] = {
    "BACKEND": "local",
    "ENGINE": "speech.inference.engine.WhisperEngine",
    "MODEL": "",
    "REALTIME_MODEL": "",
    "USE_MAIN_MODEL_FOR_REALTIME": True,
    "DEVICE": "auto",
    "COMPUTE_TYPE": "auto",
    "CPU_THREADS": 0,
    "BEAM_SIZE": 5,
    "BEAM_SIZE_REALTIME": 1,
    "MAX_BATCH_SIZE": 0,  # 0: auto (batch_size_for)
    "MAX_BATCH_WAIT_MS": 5.0,
    "MAX_GLOBAL_QUEUE_DEPTH": 64,
    "MAX_FINAL_QUEUE_DEPTH_PER_SESSION": 8,
    "MAX_REALTIME_QUEUE_AGE_MS": 1500,
    "JOB_DEADLINE_S": 10.0,
    "JOB_DEADLINE_PER_AUDIO_S": 1.0,
    "JOB_MAX_ATTEMPTS": 3,
    "WORKER_HEARTBEAT_S": HEARTBEAT_S,
    "WORKER_TIMEOUT_S": WORKER_TIMEOUT_S,
    # Not in settings.py (defaults here): channel-layer message cap, channel name prefix, metrics window,
    # extra engine keyword arguments, and the languages a channels client accepts (None: ask the model name).
    "MAX_MESSAGE_BYTES": DEFAULT_MAX_MESSAGE_BYTES,
    "CHANNEL_PREFIX": CHANNEL_PREFIX,
    "METRICS_WINDOW_S": 60.0,
    "ENGINE_OPTIONS": {},
    "LANGUAGES": None,
}


def resolve_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(DEFAULT_CONFIG)
    merged.update({k: v for k, v in (config or {}).items() if v is not None or k == "LANGUAGES"})
    return merged


def batch_size_for(config: Mapping[str, Any]) -> int:
    """MAX_BATCH_SIZE, or for 0 (auto) 8 on a GPU and 1 on a CPU.

    Measured (bench.inference, this project's 2-core machine): on a CPU a batch of 4 costs what
    4 jobs one after the other do, so batching there only holds every result back until the
    last is done (8 streams: final p50 1.95 s batched, 1.39 s one at a time).
    """
    size = int(config["MAX_BATCH_SIZE"])
    if size > 0:
        return size
    return 8 if resolve_device(str(config["DEVICE"])) == "cuda" else 1


def limits_from_config(config: Mapping[str, Any]) -> ServiceLimits:
    return ServiceLimits(
        max_batch_size=batch_size_for(config),
        max_batch_wait_ms=float(config["MAX_BATCH_WAIT_MS"]),
        max_global_queue_depth=int(config["MAX_GLOBAL_QUEUE_DEPTH"]),
        max_final_queue_depth_per_session=int(config["MAX_FINAL_QUEUE_DEPTH_PER_SESSION"]),
        max_realtime_queue_age_ms=float(config["MAX_REALTIME_QUEUE_AGE_MS"]),
        metrics_window_s=float(config["METRICS_WINDOW_S"]),
    )


def engine_for_lane(config: Mapping[str, Any], lane: str) -> Engine:
    """The engine of one lane: the realtime lane uses REALTIME_MODEL when it has its own model."""
    model = config["MODEL"]
    if lane == "realtime" and config["REALTIME_MODEL"]:
        model = config["REALTIME_MODEL"]
    return build_engine(
        config["ENGINE"],
        model=model,
        device=config["DEVICE"],
        compute_type=config["COMPUTE_TYPE"],
        cpu_threads=int(config["CPU_THREADS"]),
        **dict(config.get("ENGINE_OPTIONS") or {}),
    )


def build_inference_service(
    config: Mapping[str, Any] | None = None, channel_layer: Any = None, *, on_outage: Any = None
) -> InferenceService:
    """A not-yet-started service for STT_INFERENCE: "local" lanes or "channels" workers (`channel_layer`).

    `on_outage(reason)` (channels only) is awaited when the last live worker goes silent.
    """
    cfg = resolve_config(config)
    backend = cfg["BACKEND"]
    if backend == "local":
        return LocalInferenceService(
            functools.partial(engine_for_lane, cfg),
            shared_lane=bool(cfg["USE_MAIN_MODEL_FOR_REALTIME"]),
            limits=limits_from_config(cfg),
        )
    if backend == "channels":
        from channels.exceptions import ChannelFull

        from speech.inference.remote import ChannelLayerInferenceService

        if channel_layer is None:
            from channels.layers import get_channel_layer

            channel_layer = get_channel_layer()
        if channel_layer is None:
            raise ValueError('STT_INFERENCE["BACKEND"] = "channels" needs a channel layer (set REDIS_URL)')
        return ChannelLayerInferenceService(
            channel_layer,
            limits=limits_from_config(cfg),
            job_deadline_s=float(cfg["JOB_DEADLINE_S"]),
            deadline_per_audio_s=float(cfg["JOB_DEADLINE_PER_AUDIO_S"]),
            job_max_attempts=int(cfg["JOB_MAX_ATTEMPTS"]),
            worker_timeout_s=float(cfg["WORKER_TIMEOUT_S"]),
            on_outage=on_outage,
            full_errors=(ChannelFull,),
            max_message_bytes=int(cfg["MAX_MESSAGE_BYTES"]),
            prefix=cfg["CHANNEL_PREFIX"],
            supported_languages=cfg["LANGUAGES"] or languages_for_model(cfg["MODEL"]),
        )
    raise ValueError(f'STT_INFERENCE["BACKEND"] must be "local" or "channels", got {backend!r}')


# -- process-wide instance ---------------------------------------------------------

_service: InferenceService | None = None
_service_loop: asyncio.AbstractEventLoop | None = None
_lock: asyncio.Lock | None = None


async def get_service(config: Mapping[str, Any] | None = None, channel_layer: Any = None) -> InferenceService:
    """The started, process-wide service (built from settings.STT_INFERENCE on first call).

    A service belongs to the event loop that started it; a call from another loop (a new test, a restarted
    server) builds a fresh one.
    """
    global _service, _service_loop, _lock
    loop = asyncio.get_running_loop()
    if _service is not None and _service_loop is loop and _service.ready:
        return _service
    if _lock is None or _service_loop is not loop:
        _lock = asyncio.Lock()
    async with _lock:
        if _service is not None and _service_loop is loop and _service.ready:
            return _service
        if config is None:
            from django.conf import settings

            config = settings.STT_INFERENCE
        service = build_inference_service(config, channel_layer, on_outage=_close_streams_on_outage)
        await service.start()
        _service, _service_loop = service, loop
        return service


async def _close_streams_on_outage(reason: str) -> None:
    """With no inference worker left, every open stream of this process is finalized and told."""
    from transcription.streaming import registry

    await registry.streams_outage(reason)


def current_service() -> InferenceService | None:
    """The process-wide service if one was started (for a metrics view that must not start models)."""
    return _service


async def shutdown_service() -> None:
    global _service, _service_loop
    service, _service, _service_loop = _service, None, None
    if service is not None:
        await service.stop()


def turn_model():
    """The end-of-turn audio model shared by every stream, when enabled and installed (else None).

    Sync (the first call loads it): call it from a thread.
    """
    from django.conf import settings

    if not settings.STT_STREAM["END_OF_TURN_MODEL"]:
        return None
    from speech.turn_model import SmartTurnModel

    return SmartTurnModel.shared()
