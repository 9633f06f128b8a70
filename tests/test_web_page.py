"""The talk page in real headless Chromium: a real recording as the microphone, a real server behind it.

The server requires a key, so the page also shows the short-lived key path: it asks for the key, mints a
client secret with it and opens the WebSocket with that secret.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from playwright.async_api import Page, async_playwright

from parley.bench.wer import wer
from tests.support.server import ARTIFACTS, RunningServer, running_server
from tests.support.speech import utterance

PAGE_KEY = "page-test-key"
ANSWER_BRIEFLY = "You are a voice assistant. Answer in one short sentence."
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TURN_TIMEOUT_MS = 120_000
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
GRANT_MICROPHONE = "--use-fake-ui-for-media-stream"  # answers the permission prompt with "allow"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Chromium is not installed (scripts/install.sh --dev)"
)


@pytest.fixture(scope="module")
def page_server() -> Iterator[RunningServer]:
    env = {"PARLEY_API_KEYS": PAGE_KEY, "PARLEY_INSTRUCTIONS": ANSWER_BRIEFLY}
    with running_server("web-page", env=env) as running:
        yield running


# Seven words Moonshine hears well: a recognizer's slip on one of them (it hears this speaker's "what's the
# weather" alone as "once the wedding" at some frame phases of the browser's audio) leaves the check below met.
QUESTION = utterance("commands_en", "en-what_s_the_weather_like_in_New_York")


def microphone_wav() -> Path:
    """A real question with silence around it, as the 16-bit PCM WAV Chromium's fake microphone plays in a loop."""
    audio, rate = soundfile.read(QUESTION.path, dtype="int16")
    gap = np.zeros(rate, dtype=np.int16)
    path = ARTIFACTS / "web-page-microphone.wav"
    ARTIFACTS.mkdir(exist_ok=True)
    # Chromium loops the file: the long tail leaves time for the answer before the question comes again.
    soundfile.write(path, np.concatenate([gap, audio, np.zeros(20 * rate, dtype=np.int16)]), rate, subtype="PCM_16")
    return path


@contextlib.asynccontextmanager
async def chromium(flags: list[str]) -> AsyncIterator[Page]:
    """A page in headless Chromium with a new, empty profile."""
    with tempfile.TemporaryDirectory(prefix="parley-chromium-") as profile:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=flags, headless=True, viewport={"width": 1200, "height": 800}
            )
            try:
                yield await browser.new_page()
            finally:
                await browser.close()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    microphone = f"--use-file-for-fake-audio-capture={microphone_wav()}"
    async with chromium([*CHROMIUM_FLAGS, GRANT_MICROPHONE, microphone]) as page:
        yield page


async def test_spoken_question_gets_transcript_answer_and_audio(page_server: RunningServer, page: Page) -> None:
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    refused: list[str] = []  # the page finds out that keys are required from a keyless GET /v1/models
    page.on("response", lambda response: refused.append(response.url) if response.status >= 400 else None)
    await page.goto(f"{page_server.http_url}/?max_output_tokens=40")

    # The server wants a key: the page says so before anything starts.
    await page.wait_for_selector("#key-field:not([hidden])")
    await page.wait_for_selector("#start:not([disabled])")
    await page.fill("#api-key", PAGE_KEY)
    await page.click("#start")

    user = page.locator("#turns li.you .text").first
    await page.wait_for_function(
        "() => { const t = document.querySelector('#turns li.you .text'); return t && t.textContent.length > 0 }",
        timeout=TURN_TIMEOUT_MS,
    )
    # The words the server heard.
    assert wer(QUESTION.text, await user.text_content() or "") <= 0.5
    assert "language: en" in (await page.locator("#turns li.you .meta").first.text_content() or "")

    # An answer is written out, spoken and played through the page's audio graph.
    await page.wait_for_function("() => window.parley.playedSamples > 24000 / 2", timeout=TURN_TIMEOUT_MS)
    answer = await page.locator("#turns li.parley .text").first.text_content()
    assert answer and len(answer.split()) >= 2, answer
    latencies = await page.evaluate("() => window.parley.latenciesMs")
    assert latencies and 0 < latencies[0] < 60_000, latencies
    meta = await page.locator("#turns li.parley .meta").first.text_content()
    assert "voice-to-voice" in (meta or "")

    # Usage arrives with response.done; the cost estimate follows it.
    await page.wait_for_function("() => Number(document.getElementById('out-audio').textContent) > 0")
    assert (await page.locator("#cost").text_content() or "").startswith("$0.0")
    assert await page.locator("#tools").text_content() == "off (none configured)"
    assert await page.evaluate("() => window.parley.errors") == []
    assert refused == [f"{page_server.http_url}/v1/models"]
    assert len(console_errors) == 1 and "401" in console_errors[0], console_errors
    await page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
    await page.click("#start")  # stop: the page closes the socket and the microphone
    await page.wait_for_selector("#start:has-text('Start')")


async def test_refusals_are_explained(page_server: RunningServer) -> None:
    """A wrong key, then a denied microphone: each stops the start with a message that says what to do."""
    async with chromium([*CHROMIUM_FLAGS, GRANT_MICROPHONE]) as page:
        await page.goto(page_server.http_url)
        await page.wait_for_selector("#start:not([disabled])")
        await page.fill("#api-key", "wrong-key")
        await page.click("#start")
        await page.wait_for_selector("#notice:not([hidden])")
        assert await page.text_content("#notice") == "The server refused this API key."
        assert await page.text_content("#start") == "Start"

    async with chromium(CHROMIUM_FLAGS) as page:  # headless Chromium without the grant denies the microphone
        await page.goto(page_server.http_url)
        await page.wait_for_selector("#start:not([disabled])")
        await page.fill("#api-key", PAGE_KEY)
        await page.click("#start")
        await page.wait_for_selector("#notice:not([hidden])")
        assert (await page.text_content("#notice") or "").startswith("Microphone access was denied.")
        assert await page.text_content("#start") == "Start"
