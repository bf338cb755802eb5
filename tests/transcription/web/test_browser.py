"""End to end in a real headless Chromium: fake microphone playing jfk.wav, real Daphne, bundled model."""

from __future__ import annotations

import os
import re
import shutil
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.live_server import ROOT, daphne_server, manage
from tests.transcription.web.proxy import TcpProxy

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts" / "ui"
MAX_WER = 0.2
PASSWORDS = {
    "alice": "alice-pass-123",
    "bob": "bob-pass-123",
    "carol": "carol-pass-123",
    "dave": "dave-pass-123",
    "erin": "erin-pass-123",
}
CREATE_USERS = "from django.contrib.auth import get_user_model; U = get_user_model(); " + "; ".join(
    f"U.objects.create_user({name!r}, password={pw!r})" for name, pw in PASSWORDS.items()
)
SRT_TIMING = re.compile(r"^(\d{2}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2}):(\d{2}):(\d{2}),(\d{3})$")


def _skip_or_fail(reason: str) -> None:
    # CI installs Chromium (.ci/run); elsewhere a missing browser skips with the reason printed.
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    print(f"SKIP: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _skip_or_fail("playwright is not installed (pip install -r requirements-dev.txt)")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _skip_or_fail("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    return path


def speech_then_silence(source: Path, target: Path, silence_s: float = 3.0) -> Path:
    """The recording followed by silence, as a person who stops talking.

    After a `%noloop` file ends, Chromium's fake microphone keeps repeating the file's last 10 ms;
    jfk.wav ends in room noise, which would keep the last sentence open until Stop.
    """
    with wave.open(str(source)) as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        silence = bytes(params.sampwidth * params.nchannels * int(params.framerate * silence_s))
        out.writeframes(frames + silence)
    return target


@pytest.fixture(scope="module")
def running_server(tmp_path_factory, corpus) -> Iterator[tuple[str, dict]]:
    """A real Daphne (own SQLite database, bundled model) with five users; carol has no audio left.

    Yields its base URL and the environment that `manage` needs to reach its database.
    """
    with daphne_server(tmp_path_factory.mktemp("ui-server")) as (base, env, _process):
        manage(env, "shell", "-c", CREATE_USERS)
        manage(env, "quota", "set", "--user", "carol", "--monthly-minutes", "0")
        yield base, env


@pytest.fixture(scope="module")
def server(running_server) -> str:
    return running_server[0]


def fake_microphone_args(wav: Path) -> list[str]:
    """Chromium's flags for a headless run whose fake microphone plays `wav` once, then silence."""
    return [
        "--no-sandbox",  # root in CI containers
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        # The recording plays once (then silence) at the browser's capture rate.
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
    ]


@contextmanager
def fake_microphone_browser(chromium_path: str, wav: Path) -> Iterator:
    """Headless Chromium whose fake microphone plays `wav` once (then silence) at its capture rate."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=fake_microphone_args(wav)
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser(chromium_path, corpus, tmp_path_factory) -> Iterator:
    folder = tmp_path_factory.mktemp("ui-audio")
    wav = speech_then_silence(corpus.corpus_dir() / "jfk.wav", folder / "jfk_then_silence.wav")
    with fake_microphone_browser(chromium_path, wav) as browser:
        yield browser


def sign_in(context, base: str, user: str, next_path: str = "/live/"):
    page = context.new_page()
    page.goto(f"{base}{next_path}")
    assert page.url == f"{base}/accounts/login/?next={next_path}", "pages need a signed-in user"
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}{next_path}")
    return page


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.wait_for_timeout(400)  # let entry animations finish
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """The cues of an SRT file; fails on anything that is not well-formed SRT."""
    blocks = [b for b in re.split(r"\r?\n\s*\r?\n", text.strip()) if b.strip()]
    cues = []
    for number, block in enumerate(blocks, start=1):
        lines = block.splitlines()
        assert lines[0].strip() == str(number), block
        timing = SRT_TIMING.match(lines[1].strip())
        assert timing, block
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in timing.groups())
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        assert 0 <= start < end, block
        assert len(lines) >= 3 and all(line.strip() for line in lines[2:]), block
        cues.append((start, end, " ".join(line.strip() for line in lines[2:])))
    assert cues, "an SRT file with no cues"
    assert [c[0] for c in cues] == sorted(c[0] for c in cues)
    return cues


def test_signed_out_every_page_leads_to_the_login_page(server, browser):
    base = server
    context = browser.new_context()
    page = context.new_page()
    for path in ("/live/", "/history/", "/usage/", "/keys/"):
        page.goto(base + path)
        assert page.url == f"{base}/accounts/login/?next={path}"
    context.close()


def test_speaking_into_the_live_page_gives_the_text_in_history_and_an_srt_export(server, corpus, browser):
    reference = corpus.manifest()["jfk.wav"].reference
    base = server
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = sign_in(context, base, "alice")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Start is offered only once the server reports the model loaded.
    start = page.get_by_role("button", name="Start transcribing")
    start.wait_for(state="visible")
    page.wait_for_function("() => window.scribeLive && window.scribeLive.modelReady", timeout=120_000)
    assert start.is_enabled()
    assert page.locator("#readiness").get_attribute("data-state") == "ready"
    # The page's warm-up started the process-wide service that the stream then uses.
    assert page.request.get(f"{base}/health").json()["scheduler"]["ready"] is True
    t0 = time.monotonic()
    start.click()
    page.wait_for_function("() => window.scribeLive.phase === 'recording'", timeout=30_000)
    assert page.locator("#conn").get_attribute("data-tone") == "live"
    page.locator("#transcript .line.final").first.wait_for(timeout=60_000)
    first_final_s = time.monotonic() - t0
    # The recording is 11 s: let it end, and the last sentence's final arrive, before stopping.
    page.wait_for_function(
        "() => window.scribeLive.capturedSeconds > 12.5 && window.scribeLive.openStarts.size === 0"
        " && document.getElementById('vad').dataset.state === 'idle'",
        timeout=60_000,
    )
    shot(page, "live")
    page.get_by_role("button", name="Stop transcribing").click()
    page.wait_for_function("() => window.scribeLive.phase === 'ready'", timeout=30_000)

    state = page.evaluate(
        "() => ({counts: window.scribeLive.counts, finals: window.scribeLive.finals.map(f => f.text),"
        " sessions: window.scribeLive.sessions, latency: document.getElementById('latency').textContent})"
    )
    live_text = " ".join(state["finals"])
    live_wer = corpus.wer([reference], [live_text])
    print(f"first final after {first_final_s:.1f} s; live text: {live_text!r}; WER {live_wer:.3f}")
    assert live_wer <= MAX_WER, live_text
    assert state["counts"].get("hello") == 1 and state["counts"].get("ready") == 1
    assert state["counts"].get("realtime", 0) >= 1, "interim text was shown while speaking"
    assert not state["counts"].get("error"), state
    assert len(state["sessions"]) == 1
    # Every draft was replaced in place by its final: no interim lines are left.
    assert page.locator("#transcript .line.interim").count() == 0
    assert page.locator("#transcript .line.final").count() == len(state["finals"])
    assert re.fullmatch(r"[\d.]+(ms|s)", state["latency"]), state["latency"]
    assert not errors, errors

    # Copy and download without leaving the page.
    page.get_by_role("button", name="Copy").click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.split() == "\n".join(state["finals"]).split()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download .txt").click()
    txt = Path(download.value.path()).read_text()
    assert download.value.suggested_filename.endswith(".txt") and "country" in txt and "0:0" in txt
    assert page.url == f"{base}/live/"

    # History lists the session; its page shows the same text.
    session_id = state["sessions"][0]
    page.goto(f"{base}/history/")
    rows = page.locator("#sessions-table tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-session") == session_id
    shot(page, "history")
    rows.first.get_by_role("link").click()
    page.wait_for_url(f"{base}/history/{session_id}/")
    stored_text = page.locator("#transcript-text").inner_text()
    assert stored_text.split() == live_text.split()
    assert corpus.wer([reference], [stored_text]) <= MAX_WER
    assert page.locator("#segments li").count() == len(state["finals"])
    shot(page, "session")

    # The SRT export downloads a well-formed file with the same words.
    with page.expect_download() as download:
        page.locator('a[data-format="srt"]').click()
    srt_text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert download.value.suggested_filename.endswith(".srt")
    cues = parse_srt(srt_text)
    assert " ".join(c[2] for c in cues).split() == stored_text.split()
    assert cues[-1][1] <= 12.5, srt_text  # speech ends at 11 s
    context.close()

    # Another user sees none of it.
    other = browser.new_context()
    page = sign_in(other, base, "bob", next_path="/history/")
    assert page.locator("#sessions-table").count() == 0 and "No sessions yet" in page.content()
    response = page.goto(f"{base}/history/{session_id}/")
    assert response.status == 404
    response = page.goto(f"{base}/api/v1/sessions/{session_id}/export/srt/")
    assert response.status == 404
    other.close()


def test_an_exhausted_quota_is_explained_in_words(server, browser):
    context = browser.new_context()
    page = sign_in(context, server, "carol")
    page.wait_for_function("() => window.scribeLive.modelReady", timeout=120_000)
    page.get_by_role("button", name="Start transcribing").click()
    alert = page.get_by_role("alert").filter(has_text="allowance")
    alert.wait_for(timeout=30_000)
    assert "used up" in alert.inner_text()
    assert alert.get_by_role("link", name="See usage").get_attribute("href") == "/usage/"
    page.wait_for_function("() => window.scribeLive.phase === 'ready'")
    assert page.get_by_role("button", name="Start transcribing").is_enabled()
    assert page.locator("#conn").get_attribute("data-tone") == "error"
    shot(page, "live-quota-error")
    context.close()


@pytest.fixture
def proxy(server) -> Iterator[TcpProxy]:
    port = int(server.rsplit(":", 1)[1])
    proxy = TcpProxy(("127.0.0.1", port))
    try:
        yield proxy
    finally:
        proxy.close()


def test_a_dropped_connection_reconnects_by_itself_with_a_visible_state(proxy, browser):
    base = f"http://127.0.0.1:{proxy.port}"
    context = browser.new_context()
    page = sign_in(context, base, "dave")
    page.wait_for_function("() => window.scribeLive.modelReady", timeout=120_000)
    page.get_by_role("button", name="Start transcribing").click()
    page.wait_for_function("() => window.scribeLive.phase === 'recording'", timeout=30_000)
    first = page.evaluate("() => window.scribeLive.sessionId")
    # The network drops: every connection through the proxy is reset, with no close frame.
    assert proxy.drop_all() >= 1
    page.wait_for_function("() => window.scribeLive.phase === 'reconnecting'", timeout=10_000)
    label = page.locator("#conn-label").inner_text()
    assert re.match(r"Reconnect", label) and "attempt 1 of 8" in label, label
    warning = page.get_by_role("status").filter(has_text="Reconnecting automatically")
    assert warning.count() == 1
    shot(page, "live-reconnecting")
    page.wait_for_function("() => window.scribeLive.phase === 'recording'", timeout=30_000)
    state = page.evaluate(
        "() => ({sessions: window.scribeLive.sessions, attempt: window.scribeLive.attempt})"
    )
    # Resumed (issue 19): the reconnection goes on in the same session, not a second one.
    assert state["sessions"] == [first] and state["attempt"] == 0
    assert page.locator("#conn").get_attribute("data-tone") == "live"
    page.get_by_role("button", name="Stop transcribing").click()
    page.wait_for_function("() => window.scribeLive.phase === 'ready'", timeout=30_000)
    context.close()


# A session of erin's with two speakers, stored through the services as a stream stores it.
STORE_SPEAKERS = """
from django.contrib.auth import get_user_model
from transcription import services
user = get_user_model().objects.get(username="erin")
session = services.session_start(user=user, endpoint="ws_transcribe", language="en")
lines = [("speaker_1", "Shall we start?", "neutral"), ("speaker_2", "Yes, this is great.", "positive"),
         ("speaker_1", "The budget is late.", "negative")]
for i, (label, text, sentiment) in enumerate(lines):
    services.segment_finalize(session=session, index=i, segment_id=f"s{i}", start_s=i * 3.0,
                              end_s=i * 3.0 + 2.5, text=text, speaker=label, sentiment=sentiment,
                              sentiment_score=0.8)
services.session_analysis_store(session=session, analysis={
    "speakers": {"speaker_1": {"speaking_time_s": 5.0, "segments": [0, 2]},
                 "speaker_2": {"speaking_time_s": 2.5, "segments": [1]}},
    "sentiment": {"overall": {"label": "neutral", "score": 0.1}},
    "topics": [{"topic": "budget", "confidence": 0.9, "mentions": [2]}]})
services.session_end(session=session, end_reason="stop")
print(session.pk)
"""


def test_the_session_page_colours_speakers_and_renaming_one_relabels_its_lines(running_server, browser):
    base, env = running_server
    session_id = manage(env, "shell", "-c", STORE_SPEAKERS).strip().splitlines()[-1]
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = sign_in(context, base, "erin", next_path=f"/history/{session_id}/")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    labels = page.locator("#segments .speaker")
    assert [t.rstrip(":") for t in labels.all_text_contents()] == ["Speaker 1", "Speaker 2", "Speaker 1"]
    colours = labels.evaluate_all("els => els.map(el => getComputedStyle(el).color)")
    assert colours[0] == colours[2] != colours[1], colours
    assert page.locator("#sentiment-strip .sent-cell").count() == 3
    assert page.locator("#topics .topic-chip").first.inner_text().startswith("budget")
    shot(page, "session-speakers")

    speaker = page.locator('#speakers [data-speaker="speaker_2"]')
    speaker.get_by_label("Name of Speaker 2").fill("Dana")
    speaker.get_by_role("button", name="Rename").click()
    page.wait_for_url(f"{base}/history/{session_id}/#speakers")
    assert [t.rstrip(":") for t in labels.all_text_contents()] == ["Speaker 1", "Dana", "Speaker 1"]
    assert labels.evaluate_all("els => els.map(el => getComputedStyle(el).color)") == colours
    response = page.request.get(f"{base}/api/v1/sessions/{session_id}/export/txt/")
    assert response.text().splitlines()[1] == "Dana: Yes, this is great."
    assert not errors, errors
    context.close()


def test_every_page_works_under_the_content_security_policy(running_server, browser):
    """No page breaks the policy (settings.CONTENT_SECURITY_POLICY): Chromium reports every blocked
    inline style, script or event handler, and every load from another site, in the console."""
    base, env = running_server
    session_id = manage(env, "shell", "-c", STORE_SPEAKERS).strip().splitlines()[-1]
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = sign_in(context, base, "erin", next_path="/history/")
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for path in (
        "/",
        "/live/",
        "/history/",
        f"/history/{session_id}/",
        "/usage/",
        "/keys/",
        "/upload/",
        "/vocabularies/",
    ):
        response = page.goto(base + path)
        assert response.status == 200 and "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        assert not blocked, (path, blocked)
    # The bars are drawn from classes, not inline styles: a speaker's share of the time shows.
    page.goto(f"{base}/history/{session_id}/")
    widths = page.locator("#speakers .bar-fill").evaluate_all("els => els.map(el => el.offsetWidth)")
    assert len(widths) == 2 and all(w > 0 for w in widths) and widths[0] > widths[1], widths
    # The live page's options form is not sent by Enter (it had an inline onsubmit).
    page.goto(f"{base}/live/")
    page.evaluate("window.stillHere = true; document.getElementById('options').requestSubmit()")
    page.wait_for_timeout(300)
    assert page.url == f"{base}/live/" and page.evaluate("window.stillHere === true")
    # The API docs: their scripts are static files; Redoc's own logo (another site) is all that is refused.
    page.goto(f"{base}/api/docs/")
    page.locator(".opblock").first.wait_for(timeout=15000)
    page.goto(f"{base}/api/redoc/")
    page.get_by_text("Speech-to-text service API").first.wait_for(timeout=15000)
    assert all("cdn.redoc.ly" in message for message in blocked), blocked
    assert not errors, errors
    context.close()
