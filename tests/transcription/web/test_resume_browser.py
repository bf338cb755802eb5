"""The live page across a network drop mid-sentence (a proxy resets its sockets): it reconnects by
itself into the same session, and history has that one session with the sentence whole."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator

import pytest

from tests.live_server import daphne_server, manage
from tests.transcription.web.proxy import TcpProxy
from tests.transcription.web.test_browser import chromium_path, fake_microphone_browser, speech_then_silence

pytestmark = pytest.mark.slow

__all__ = ["chromium_path"]  # the fixture, shared with test_browser
MAX_WER = 0.2
USER, PASSWORD = "frank", "frank-pass-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    with daphne_server(tmp_path_factory.mktemp("resume-ui"), wait_ready=True) as (base, env, _):
        create = (
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user({USER!r}, password={PASSWORD!r})"
        )
        manage(env, "shell", "-c", create)
        yield base


@pytest.fixture(scope="module")
def browser(chromium_path, corpus, tmp_path_factory) -> Iterator:
    folder = tmp_path_factory.mktemp("resume-ui-audio")
    wav = speech_then_silence(corpus.corpus_dir() / "jfk.wav", folder / "jfk_then_silence.wav")
    with fake_microphone_browser(chromium_path, wav) as browser:
        yield browser


@pytest.fixture
def proxy(server) -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", int(server.rsplit(":", 1)[1])))
    try:
        yield proxy
    finally:
        proxy.close()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_the_live_page_survives_a_network_drop_mid_sentence_into_the_same_session(proxy, browser, corpus):
    reference = corpus.manifest()["jfk.wav"].reference
    base = f"http://127.0.0.1:{proxy.port}"
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/live/")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/live/")
    page.wait_for_function("() => window.scribeLive && window.scribeLive.modelReady", timeout=120_000)
    page.get_by_role("button", name="Start transcribing").click()
    page.wait_for_function("() => window.scribeLive.phase === 'recording'", timeout=30_000)
    first = page.evaluate("() => window.scribeLive.sessionId")
    # Mid-sentence ("... ask not what your country can do for you"): a segment is open.
    page.wait_for_function(
        "() => window.scribeLive.capturedSeconds > 4.5 && window.scribeLive.openStarts.size > 0",
        timeout=30_000,
    )
    dropped_at = page.evaluate("() => window.scribeLive.capturedSeconds")
    assert proxy.drop_all() >= 1  # reset, no close frame: the server waits for a resume
    page.wait_for_function("() => window.scribeLive.phase === 'reconnecting'", timeout=10_000)
    page.wait_for_function("() => window.scribeLive.phase === 'recording'", timeout=30_000)
    state = page.evaluate("() => ({sessions: window.scribeLive.sessions, id: window.scribeLive.sessionId})")
    assert state == {"sessions": [first], "id": first}, state
    # The recording is 11 s, then silence: let the last final arrive, then stop.
    page.wait_for_function(
        "() => window.scribeLive.capturedSeconds > 13 && window.scribeLive.openStarts.size === 0"
        " && document.getElementById('vad').dataset.state === 'idle'",
        timeout=90_000,
    )
    page.get_by_role("button", name="Stop transcribing").click()
    page.wait_for_function("() => window.scribeLive.phase === 'ready'", timeout=30_000)
    live = page.evaluate(
        "() => ({finals: window.scribeLive.finals.map(f => f.text), counts: window.scribeLive.counts})"
    )
    live_text = " ".join(live["finals"])
    assert live["counts"].get("hello") == 2 and not live["counts"].get("error"), live["counts"]

    # History has the one session, with every word once.
    page.goto(f"{base}/history/")
    rows = page.locator("#sessions-table tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-session") == first
    page.goto(f"{base}/history/{first}/")
    stored = page.locator("#transcript-text").inner_text()
    wer = corpus.wer([reference], [stored])
    print(f"dropped at {dropped_at:.1f} s; stored: {stored!r}; WER {wer:.3f}")
    assert wer <= MAX_WER and words(stored) == words(live_text)
    counts, expected = collections.Counter(words(stored)), collections.Counter(words(reference))
    assert not {w: n for w, n in counts.items() if n > max(1, expected[w])}
    assert not errors, errors
    context.close()
