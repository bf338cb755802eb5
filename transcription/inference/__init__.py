"""Shared speech inference: engines, fair scheduling, batching lanes, local and channel-layer services."""

from __future__ import annotations

from transcription.inference.factory import (
    build_inference_service,
    current_service,
    get_service,
    model_label,
    shutdown_service,
)
from transcription.inference.jobs import (
    InferenceError,
    InferenceRejected,
    JobDropped,
    ServiceWarning,
    TranscribeOptions,
    TranscriptionJob,
    TranscriptionResult,
    Word,
)
from transcription.inference.service import InferenceService, LocalInferenceService, ServiceLimits

__all__ = [
    "InferenceError",
    "InferenceRejected",
    "InferenceService",
    "JobDropped",
    "LocalInferenceService",
    "ServiceLimits",
    "ServiceWarning",
    "TranscribeOptions",
    "TranscriptionJob",
    "TranscriptionResult",
    "Word",
    "build_inference_service",
    "current_service",
    "get_service",
    "model_label",
    "shutdown_service",
]
