"""model_label: the one place that names the model a lane runs, for sessions and /api/config."""

from __future__ import annotations

import pytest

from transcription import runtime_config
from transcription.speech_models import model_label


@pytest.mark.parametrize(
    ("config", "final", "realtime"),
    [
        ({"MODEL": "", "REALTIME_MODEL": ""}, "bundled:tiny.en", "bundled:tiny.en"),
        ({"MODEL": "small.en", "REALTIME_MODEL": ""}, "small.en", "small.en"),
        ({"MODEL": "", "REALTIME_MODEL": "tiny.en"}, "bundled:tiny.en", "tiny.en"),
        ({"MODEL": "/models/large-v3", "REALTIME_MODEL": "base"}, "/models/large-v3", "base"),
    ],
)
def test_each_lane_names_its_configured_model_or_the_bundled_one(config, final, realtime):
    assert model_label(config=config) == model_label("final", config) == final
    assert model_label("realtime", config) == realtime


def test_it_reads_the_settings_by_default_as_the_runtime_config_does(settings):
    settings.STT_INFERENCE = {
        **settings.STT_INFERENCE,
        "MODEL": "distil-small.en",
        "REALTIME_MODEL": "tiny.en",
    }
    assert model_label() == "distil-small.en" and model_label("realtime") == "tiny.en"
    specs = runtime_config.specs()
    assert specs["model"].default == "distil-small.en" and specs["realtime_model"].default == "tiny.en"
    settings.STT_INFERENCE = {**settings.STT_INFERENCE, "MODEL": "", "REALTIME_MODEL": ""}
    assert runtime_config.specs()["realtime_model"].default == model_label("realtime") == "bundled:tiny.en"
