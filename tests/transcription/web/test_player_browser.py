"""Playback in a real headless Chromium: a live session (fake microphone, real Daphne and model) with its
audio kept, then its page: the player plays the stored Ogg/Opus, and clicking a segment seeks there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import daphne_server, manage
from tests.transcription.web.test_browser import (  # noqa: F401 (fixtures)
    CREATE_USERS,
    browser,
    chromium_path,
    sign_in,
)

pytestmark = pytest.mark.slow

KEEP_ALICES_AUDIO = (
    "from accounts.models import AccountSettings; from django.contrib.auth import get_user_model; "
    "AccountSettings.objects.create(user=get_user_model().objects.get(username='alice'), store_audio=True)"
)


@pytest.fixture(scope="module")
def player_server(tmp_path_factory, corpus) -> Iterator[str]:
    """A real Daphne whose users keep no audio by default; alice's own setting keeps hers."""
    tmp = tmp_path_factory.mktemp("player-server")
    extra = {"STT_AUDIO_DIR": str(tmp / "audio"), "STT_STORE_AUDIO": "false"}
    with daphne_server(tmp, extra) as (base, env, _process):
        manage(env, "shell", "-c", CREATE_USERS)
        manage(env, "shell", "-c", KEEP_ALICES_AUDIO)
        yield base


def test_the_session_page_plays_the_stored_audio_and_a_click_seeks_to_the_segment(player_server, browser):  # noqa: F811
    base = player_server
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = sign_in(context, base, "alice")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.wait_for_function("() => window.scribeLive && window.scribeLive.modelReady", timeout=120_000)
    page.get_by_role("button", name="Start transcribing").click()
    page.wait_for_function("() => window.scribeLive.phase === 'recording'", timeout=30_000)
    page.wait_for_function(
        "() => window.scribeLive.capturedSeconds > 12.5 && window.scribeLive.openStarts.size === 0"
        " && document.getElementById('vad').dataset.state === 'idle'",
        timeout=90_000,
    )
    captured = page.evaluate("() => window.scribeLive.capturedSeconds")
    page.get_by_role("button", name="Stop transcribing").click()
    page.wait_for_function("() => window.scribeLive.phase === 'ready'", timeout=30_000)
    session_id = page.evaluate("() => window.scribeLive.sessions[0]")
    # The audio is saved when the stream finishes (the socket closes): leaving the page closes it.
    page.goto("about:blank")
    page.wait_for_timeout(500)
    for _ in range(40):
        response = page.request.get(f"{base}/api/v1/sessions/{session_id}/audio")
        if response.status == 200:
            break
        page.wait_for_timeout(500)
    assert response.status == 200, response.status

    page.goto(f"{base}/history/{session_id}/")
    audio = page.locator("#session-audio")
    assert audio.count() == 1
    page.wait_for_function(
        "() => { const a = document.getElementById('session-audio');"
        " return a.readyState >= 1 && isFinite(a.duration) && a.duration > 0 }",
        timeout=30_000,
    )
    duration = page.evaluate("() => document.getElementById('session-audio').duration")
    print(f"captured {captured:.2f} s; the player reports {duration:.2f} s")
    assert abs(duration - captured) < 1.0  # the browser's count of what it sent vs. what was stored
    rows = page.locator("#segments li[data-start]")
    assert rows.count() >= 2
    target = rows.nth(1)
    start = float(target.get_attribute("data-start"))
    page.evaluate(
        "() => { const a = document.getElementById('session-audio'); window.seekedAt = null;"
        " a.addEventListener('seeked', () => { window.seekedAt = a.currentTime }, { once: true }) }"
    )
    target.locator(".seg-time").click()
    page.wait_for_function("() => window.seekedAt !== null", timeout=10_000)
    seeked_at = page.evaluate("() => window.seekedAt")
    print(f"segment starts at {start:.3f} s; the player seeked to {seeked_at:.3f} s")
    assert abs(seeked_at - start) < 0.25
    # It plays from there: time moves on and the segment is highlighted.
    page.wait_for_function(
        "() => { const a = document.getElementById('session-audio');"
        f" return !a.paused && a.currentTime > {start + 0.3} }}",
        timeout=10_000,
    )
    assert "playing" in (target.get_attribute("class") or "")
    assert not errors, errors
    context.close()
