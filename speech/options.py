"""Per-session knobs, and what they make: the session's segmenter and its transcription options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from speech.enrich.options import EnrichOptions
from speech.inference.jobs import TranscribeOptions
from speech.segmenter import Segmenter, SegmenterConfig
from speech.vad import VadConfig, VoiceActivityDetector
from speech.wake.gate import WakeGate
from speech.wake.options import WakeOptions


@dataclass(frozen=True)
class SessionOptions:
    """Per-session knobs (server defaults, possibly narrowed by the client's `start`)."""

    language: str | None = "en"
    interim_results: bool = True
    word_timestamps: bool = False
    beam_size: int = 5  # finals (measured: as fast as greedy on CPU, fewer errors)
    beam_size_realtime: int = 1  # interim text
    initial_prompt: str | None = None
    realtime_interval_s: float = 0.75
    webrtc_sensitivity: int = 2
    silero_sensitivity: float = 0.5
    pre_recording_buffer_duration: float = 0.75
    post_speech_silence_duration: float = 0.55
    min_length_of_recording: float = 0.2
    min_gap_between_recordings: float = 0.0
    early_transcription_on_silence: float = 0.1
    max_segment_seconds: float = 30.0
    keyterms: tuple[str, ...] = ()
    # End of turn (speech.turns): 0 silence = off, the fixed post-speech silence alone.
    end_of_turn_silence: float = 0.45
    max_turn_silence: float = 0.8
    end_of_turn_threshold: float = 0.5
    first_interim_s: float = 0.2
    idle_timeout_s: float = 60.0  # no audio and no keepalive this long: finalize and close
    # Speakers, sentiment, topics, filters: all off unless the server or the client turns them on.
    enrich: EnrichOptions = field(default_factory=EnrichOptions)
    # Wake words (speech.wake): off unless a backend and words are set.
    wake: WakeOptions = field(default_factory=WakeOptions)

    def public(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "interimResults": self.interim_results,
            "wordTimestamps": self.word_timestamps,
            "realtimeIntervalMs": round(self.realtime_interval_s * 1000),
            "preRecordingBufferDuration": self.pre_recording_buffer_duration,
            "postSpeechSilenceDuration": self.post_speech_silence_duration,
            "minLengthOfRecording": self.min_length_of_recording,
            "minGapBetweenRecordings": self.min_gap_between_recordings,
            "earlyTranscriptionOnSilence": self.early_transcription_on_silence,
            "maxSegmentSeconds": self.max_segment_seconds,
            "webrtcSensitivity": self.webrtc_sensitivity,
            "sileroSensitivity": self.silero_sensitivity,
            "keyterms": list(self.keyterms),
            "endOfTurnSilence": self.end_of_turn_silence,
            "maxTurnSilence": self.max_turn_silence,
            "endOfTurnThreshold": self.end_of_turn_threshold,
            "firstInterimMs": round(self.first_interim_s * 1000),
            "enrichment": self.enrich.public(),
            "wakeWord": self.wake.public(),
        }


def new_segmenter(o: SessionOptions, vad_model=None, gate: WakeGate | None = None) -> Segmenter:
    # RealtimeSTT semantics: Silero confirms speech above 1 - sensitivity.
    vad = VoiceActivityDetector(
        VadConfig(webrtc_aggressiveness=o.webrtc_sensitivity, silero_threshold=1.0 - o.silero_sensitivity),
        model=vad_model,
    )
    return Segmenter(segmenter_config(o), vad, gate)


def segmenter_config(o: SessionOptions) -> SegmenterConfig:
    return SegmenterConfig(
        pre_recording_buffer_duration=o.pre_recording_buffer_duration,
        post_speech_silence_duration=o.post_speech_silence_duration,
        min_length_of_recording=o.min_length_of_recording,
        min_gap_between_recordings=o.min_gap_between_recordings,
        early_transcription_on_silence=o.early_transcription_on_silence,
        max_segment_duration=o.max_segment_seconds,
        max_length_search_window=min(5.0, o.max_segment_seconds / 3),
        interim_interval=o.realtime_interval_s if o.interim_results else 0.0,
        first_interim_after=o.first_interim_s,
        end_of_turn_silence=o.end_of_turn_silence,
        max_turn_silence=max(o.max_turn_silence, o.end_of_turn_silence),
    )


def transcribe_options(o: SessionOptions, kind: str = "final") -> TranscribeOptions:
    return TranscribeOptions(
        language=o.language,
        beam_size=o.beam_size if kind == "final" else o.beam_size_realtime,
        initial_prompt=o.initial_prompt,
        word_timestamps=o.word_timestamps,
        keyterms=o.keyterms,
    )
