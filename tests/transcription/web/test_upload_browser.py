"""The upload page and corrections in a real headless Chromium: real Daphne, bundled model, jfk.wav."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from tests.live_server import daphne_server, manage
from tests.transcription.web.test_browser import chromium_path, shot  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

MAX_WER = 0.15
PASSWORD = "alice-pass-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory, corpus) -> Iterator[str]:
    """One real Daphne (own SQLite database, folders for uploads and audio) with alice."""
    folder = tmp_path_factory.mktemp("upload-ui")
    extra = {"STT_UPLOAD_DIR": str(folder / "uploads"), "STT_AUDIO_DIR": str(folder / "audio")}
    with daphne_server(folder, extra) as (base, env, _process):
        manage(
            env,
            "shell",
            "-c",
            f"from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user('alice', password={PASSWORD!r})",
        )
        yield base


@pytest.fixture(scope="module")
def browser(chromium_path) -> Iterator:  # noqa: F811 (the fixture imported above)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--no-sandbox", "--no-first-run"]
        )
        try:
            yield browser
        finally:
            browser.close()


def drop_file(page, name: str, data: bytes, mime: str) -> None:
    """Drop a file on the page's drop zone, as a person dragging it from their desktop."""
    transfer = page.evaluate_handle(
        """([name, b64, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            return transfer;
        }""",
        [name, base64.b64encode(data).decode(), mime],
    )
    page.dispatch_event("#dropzone", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})


def signed_in_page(browser, base: str):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/upload/")
    assert page.url == f"{base}/accounts/login/?next=/upload/", "the page needs a signed-in user"
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/upload/")
    return context, page


def test_an_upload_through_the_page_ends_on_its_session_and_a_correction_reaches_the_export(
    server, browser, corpus
):
    reference = corpus.manifest()["jfk.wav"].reference
    wav = (corpus.corpus_dir() / "jfk.wav").read_bytes()
    context, page = signed_in_page(browser, server)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    drop_file(page, "jfk.wav", wav, "audio/wav")
    assert "jfk.wav" in page.locator("#file-chosen").inner_text()
    shot(page, "upload-chosen")
    page.get_by_role("button", name="Upload and transcribe").click()
    page.wait_for_url(f"{server}/history/*/", timeout=240_000)
    session_id = page.url.rstrip("/").rsplit("/", 1)[1]

    # What the two bars showed on the way (kept by the page for this tab).
    shown = json.loads(page.evaluate("() => sessionStorage.getItem('scribe-upload')"))
    print(f"upload progress {shown['sent']}, transcription progress {shown['transcribed']}")
    assert shown["sent"] and shown["sent"][-1] == 100 and shown["sent"] == sorted(shown["sent"])
    assert shown["transcribed"][0] < 100 and shown["transcribed"][-1] == 100
    assert shown["transcribed"] == sorted(shown["transcribed"])

    text = page.locator("#transcript-text").inner_text()
    wer = corpus.wer([reference], [text])
    print(f"transcript {text!r}; WER {wer:.3f}")
    assert wer <= MAX_WER, text
    shot(page, "upload-session")

    # Correct the first segment in place.
    first = page.locator("#segments li").first
    before = first.locator(".seg-words").inner_text()
    corrected = "And so my fellow citizens of the world, ask not."
    assert corrected != before
    first.get_by_role("button", name="Edit").click()
    first.get_by_label("Text").fill(corrected)
    first.get_by_role("button", name="Save").click()
    page.wait_for_function(
        "(text) => document.querySelector('#segments li .seg-words').textContent === text", arg=corrected
    )
    assert "edited" in (first.get_attribute("class") or "")
    page.wait_for_function(
        "(text) => document.getElementById('transcript-text').textContent.startsWith(text)", arg=corrected
    )
    first.get_by_text("Show original").click()
    assert first.locator(".seg-original-text").inner_text() == before
    shot(page, "upload-session-edited")

    export = page.request.get(f"{server}/api/v1/sessions/{session_id}/export/txt/")
    assert export.status == 200
    lines = export.text().splitlines()
    print(f"export after the correction: {lines!r}")
    assert lines[0] == corrected and before not in lines
    assert not errors, errors

    # It stays corrected, and marked, once the page is loaded again.
    page.reload()
    assert page.locator("#segments li").first.locator(".seg-words").inner_text() == corrected
    assert page.locator("#segments li.edited").count() == 1
    context.close()


def test_an_api_refusal_is_shown_with_its_message(server, browser):
    context, page = signed_in_page(browser, server)
    drop_file(page, "notes.wav", b"these are not the sounds you are looking for" * 50, "audio/wav")
    page.get_by_role("button", name="Upload and transcribe").click()
    alert = page.locator("#upload-error")
    alert.wait_for(state="visible", timeout=30_000)
    assert "not a recognised audio file" in alert.inner_text()
    assert page.url == f"{server}/upload/"
    assert page.get_by_role("button", name="Upload and transcribe").is_enabled()
    shot(page, "upload-refused")
    context.close()
