"""Wake-word mode end to end in a real headless Chromium: the fake microphone says “jarvis” (espeak-ng),
then a dev-corpus sentence; a real Daphne spots the word with Porcupine and transcribes what follows."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import wake
from bench.packets import float_to_int16
from tests.live_server import daphne_server, manage
from tests.transcription.web.test_browser import (  # chromium_path: the fixture, shared
    CREATE_USERS,
    chromium_path,  # noqa: F401
    fake_microphone_args,
    fake_microphone_browser,
    shot,
    sign_in,
)

pytestmark = pytest.mark.slow

SENTENCE = "ljspeech_LJ001-0002.wav"  # "in being comparatively modern."
RATE = 16000
# Porcupine hears espeak-ng's "jarvis" reliably at this sensitivity (the server's default is 0.5).
SENSITIVITY = "0.7"
# What the page's state line says (static/js/live/wake.js).
WAITING = "Say “{}” to start"
HEARD = "Heard “{}” — speak now"
HEARD_WITHIN_S = 3.0  # after the recording has played: the word is not going to be heard


def _skip(reason: str) -> None:
    print(f"SKIP: {reason}")
    pytest.skip(reason)


def wake_word_then_sentence(corpus, folder: Path) -> tuple[Path, float]:
    """Quiet, “jarvis”, a pause, the sentence, 3 s of quiet, over a room's noise floor (bench.wake:
    the same samples every run); (the file, its seconds).

    After a `%noloop` file ends Chromium's fake microphone repeats its last 10 ms: quiet here.
    """
    reason = wake.espeak_missing()
    if reason:
        _skip(reason)
    sentence = corpus.read_mono_float(corpus.manifest()[SENTENCE].path)
    samples = float_to_int16(wake.wake_then("jarvis", sentence, wake.silence(3.0)))
    target = folder / "jarvis_then_sentence.wav"
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.astype("<i2").tobytes())
    return target, len(samples) / RATE


@pytest.fixture(scope="module")
def wake_server(tmp_path_factory, corpus) -> Iterator[str]:
    """A real Daphne (own SQLite database, bundled model) whose Porcupine runs at SENSITIVITY."""
    pytest.importorskip("pvporcupine", reason="pvporcupine is not installed (requirements-models.txt)")
    extra = {"STT_WAKE_WORDS_SENSITIVITY": SENSITIVITY}
    with daphne_server(tmp_path_factory.mktemp("wake-ui-server"), extra) as (base, env, _process):
        manage(env, "shell", "-c", CREATE_USERS)
        yield base


@pytest.fixture(scope="module")
def wake_audio(corpus, tmp_path_factory) -> tuple[Path, float]:
    return wake_word_then_sentence(corpus, tmp_path_factory.mktemp("wake-audio"))


@pytest.fixture(scope="module")
def wake_browser(chromium_path, wake_audio) -> Iterator:  # noqa: F811
    with fake_microphone_browser(chromium_path, wake_audio[0]) as browser:
        yield browser


# Records every text of the wake state line and the loudest input packet (the audio did play).
WATCH = """() => {
  window.wakeTexts = [];
  window.maxDb = -Infinity;
  const text = document.getElementById("wake-state-text");
  new MutationObserver(() => {
    const shown = text.textContent;
    if (shown && window.wakeTexts.at(-1) !== shown) window.wakeTexts.push(shown);
  }).observe(text, { childList: true, characterData: true, subtree: true });
  setInterval(() => {
    const db = window.scribeLive.lastDb;
    if (db != null) window.maxDb = Math.max(window.maxDb, db);
  }, 10);
}"""


def start_with_wake_word(browser, base: str, user: str, word: str):
    """A signed-in live page with wake-word mode on and `word` chosen, started; (context, page, errors)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = sign_in(context, base, user)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.wait_for_function("() => window.scribeLive && window.scribeLive.modelReady", timeout=120_000)
    switch = page.get_by_role("checkbox", name="Start on a wake word")
    assert not switch.is_checked(), "off by default: the server's default has no wake words"
    assert page.locator("#wake-fields").is_hidden()
    switch.check()
    # The browser's filters (noise suppression, echo cancellation, gain control) adapt over the first
    # second, just when the word is said; Porcupine wants the voice as spoken.
    page.get_by_role("checkbox", name="Noise suppression").uncheck()
    page.get_by_label("Word", exact=True).select_option(word)
    assert page.locator("#wake-phrase-field").is_hidden()
    page.evaluate(WATCH)
    page.get_by_role("button", name="Start transcribing").click()
    page.wait_for_function("() => window.scribeLive.phase === 'recording'", timeout=30_000)
    # The options are fixed while the stream runs.
    assert switch.is_disabled() and page.get_by_label("Word", exact=True).is_disabled()
    return context, page, errors


def stop(page) -> None:
    page.get_by_role("button", name="Stop transcribing").click()
    page.wait_for_function("() => window.scribeLive.phase === 'ready'", timeout=30_000)
    assert page.locator("#wake-state").is_hidden()


def test_another_word_than_the_one_spoken_transcribes_nothing(wake_server, wake_browser, wake_audio):
    # First, on a fresh microphone: the recording surely plays (the level shows it), yet nothing is
    # transcribed while the server waits for “computer”.
    _, seconds = wake_audio
    context, page, errors = start_with_wake_word(wake_browser, wake_server, "bob", "computer")
    state_line = page.get_by_role("status").filter(has_text="to start")
    state_line.wait_for(timeout=30_000)
    assert state_line.inner_text() == WAITING.format("computer")
    page.wait_for_function(f"() => window.scribeLive.capturedSeconds > {seconds + 3.0}", timeout=60_000)
    state = page.evaluate(
        "() => ({counts: window.scribeLive.counts, history: window.scribeLive.wake.history,"
        " texts: window.wakeTexts, maxDb: window.maxDb,"
        " lines: document.querySelectorAll('#transcript li').length})"
    )
    print(f"wrong word: {state}")
    assert state["maxDb"] > -40, "the fake microphone played the recording"
    assert state["history"] == ["waiting"], state
    assert state["texts"] == [WAITING.format("computer")], state
    assert not state["counts"].get("final") and not state["counts"].get("realtime"), state
    assert state["lines"] == 0 and not state["counts"].get("error"), state
    shot(page, "live-wake-waiting")
    stop(page)
    assert not errors, errors
    context.close()


def test_the_spoken_wake_word_opens_the_sentence_with_a_badge(
    wake_server,
    wake_browser,
    chromium_path,  # noqa: F811
    wake_audio,
    corpus,
):
    wav, seconds = wake_audio
    reference = corpus.manifest()[SENTENCE].reference
    # A fresh browser, so the recording plays from its start when this page starts capturing.
    args = fake_microphone_args(wav)
    browser = wake_browser.browser_type.launch(executable_path=chromium_path, headless=True, args=args)
    try:
        _context, page, errors = start_with_wake_word(browser, wake_server, "alice", "jarvis")
        page.wait_for_function(
            "() => window.scribeLive.wake.history.includes('detected')"
            f" || window.scribeLive.capturedSeconds > {seconds + HEARD_WITHIN_S}",
            timeout=60_000,
        )
        history = page.evaluate("() => window.scribeLive.wake.history")
        assert "detected" in history, f"Porcupine did not hear the wake word: {history}"
        check_the_sentence_after_the_word(page, errors, seconds, reference, corpus)
    finally:
        browser.close()


def check_the_sentence_after_the_word(page, errors, seconds: float, reference: str, corpus) -> None:
    # The recording has played and its line has ended (or it never came: the state says why).
    page.wait_for_function(
        f"() => window.scribeLive.capturedSeconds > {seconds + 8.0} || (window.scribeLive.finals.length"
        f" && window.scribeLive.capturedSeconds > {seconds + 1.0} && !window.scribeLive.openStarts.size)",
        timeout=90_000,
    )
    state = page.evaluate(
        "() => ({counts: window.scribeLive.counts, history: window.scribeLive.wake.history,"
        " texts: window.wakeTexts, shown: window.wakeTexts.at(-1),"
        " finals: window.scribeLive.finals.map(f => [f.text, f.wakeWord])})"
    )
    print(f"wake word: {state}")
    # The state line went waiting → heard (→ listening while the sentence is recorded → waiting again).
    assert state["history"][:2] == ["waiting", "detected"], state
    assert state["texts"][:2] == [WAITING.format("jarvis"), HEARD.format("jarvis")], state
    assert len(state["finals"]) == 1, state
    text, wake_word = state["finals"][0]
    assert wake_word == "jarvis", state
    assert corpus.wer([reference], [text]) <= 0.25, text
    assert state["shown"] == WAITING.format("jarvis"), "after the line, waiting for the word again"
    final = page.locator("#transcript .line.final")
    assert final.count() == 1 and final.get_attribute("data-wake-word") == "jarvis"
    badge = final.locator(".wake-badge")
    assert badge.get_attribute("data-wake-word") == "jarvis" and "jarvis" in badge.inner_text()
    assert not state["counts"].get("error"), state
    shot(page, "live-wake-heard")
    stop(page)
    assert not errors, errors
