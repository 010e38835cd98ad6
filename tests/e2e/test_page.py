"""The playground page at `/`, in headless Chromium against real `wavenet serve` processes.

What is proved: the page lists the loaded models (a damaged checkpoint shown as failed);
a stream plays to the end, the AudioWorklet receiving and rendering exactly the samples
the server made, at the audio device's pace (also when it resamples to another rate);
the WAV the page builds equals the server's own WAV for the same request, for a plain
and a resynthesized (uploaded WAV) request; text goes through the vocoder (its voices come
from the espeakng-loader wheel, so from any fresh install); cancel stops playback and the
stream early; server errors (invalid field, busy, wrong API key) are shown as readable
messages; with the key the page works.

A screenshot goes to the test's tmp dir; with WAVENET_DOCS_SCREENSHOT=1 it is also
written to docs/playground.png (the README's picture).
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import struct
import time
import wave
from pathlib import Path

import httpx
import pytest

from tests.helpers.browser import API_KEY, MAX_SECONDS, SKIP_REASON

if SKIP_REASON:
    pytest.skip(SKIP_REASON, allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000  # the tiny checkpoints' rate
TERMINAL = "['done', 'cancelled', 'error'].includes(window.playground.status)"


# ---------------------------------------------------------------- helpers
def state(page) -> dict:
    return page.evaluate("({...window.playground, "
                         "models: window.playground.models.map(m => [m.name, m.status])})")


def wait_for(page, expression: str, timeout: float = 20.0, interval: float = 0.02):
    """Poll a JavaScript expression until it is truthy. (Playwright's wait_for_function
    evaluates strings with eval, which the page's Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}; state: {state(page)}")
        time.sleep(interval)


def open_page(page, server) -> None:
    page.goto(server.url + "/")
    wait_for(page, "window.playground && window.playground.status === 'idle'")


def generate(page, timeout: float = 30.0) -> dict:
    page.click("#start")
    wait_for(page, TERMINAL, timeout)
    return state(page)


def wav_frames(data: bytes) -> tuple[int, bytes]:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getframerate(), w.readframes(w.getnframes())


def server_wav(server, body: dict, headers: dict | None = None) -> bytes:
    r = httpx.post(server.url + "/v1/synthesize", json={**body, "format": "wav"},
                   headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.content


def download(page) -> bytes:
    with page.expect_download() as info:
        page.click("#download")
    return Path(info.value.path()).read_bytes()


def sine_wav(seconds: float, rate: int = RATE) -> bytes:
    n = int(seconds * rate)
    samples = [int(8000 * math.sin(2 * math.pi * 220 * i / rate)) for i in range(n)]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{n}h", *samples))
    return buf.getvalue()


# ---------------------------------------------------------------- tests
def test_static_files_are_served_with_their_types(servers):
    server, _ = servers
    for path, kind in [("/", "text/html"), ("/static/app.js", "text/javascript"),
                       ("/static/pcm-player.js", "text/javascript"),
                       ("/static/style.css", "text/css")]:
        r = httpx.get(server.url + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), path
        assert "default-src 'self'" in r.headers["content-security-policy"]
    assert httpx.get(server.url + "/static/..%2Fapp.py").status_code == 404
    assert httpx.get(server.url + "/static/nothing.js").status_code == 404


def test_page_lists_the_models_and_adapts_the_form(page, servers):
    server, _ = servers
    open_page(page, server)
    rows = page.locator("#models tbody tr")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.model)")) == [
        "broken", "mel", "plain", "spk"]
    assert "ann, bob, cy" in page.inner_text("#models tr[data-model='spk']")
    assert "failed" in page.inner_text("#models tr[data-model='broken']")
    assert page.inner_text("#models-message") == "3 of 4 models ready."
    assert page.locator("#model option[value='broken']").is_disabled()

    page.select_option("#model", "spk")
    assert page.locator("#speaker option").all_inner_texts() == ["ann", "bob", "cy"]
    assert page.is_visible("#seconds") and page.is_hidden("#mel-inputs")
    page.select_option("#model", "mel")
    assert page.is_hidden("#seconds") and page.is_visible("#audio-file")
    assert page.is_disabled("#speaker")
    page.select_option("#model", "plain")
    assert page.is_visible("#seconds") and page.is_enabled("#start")


def test_a_stream_plays_to_the_end_and_downloads_as_wav(page, servers, tmp_path):
    server, _ = servers
    open_page(page, server)
    page.select_option("#model", "spk")
    page.select_option("#speaker", "bob")
    page.fill("#seconds", "0.5")
    page.fill("#seed", "7")
    page.fill("#temperature", "0.9")
    page.click("#start")
    # while it plays: the AudioContext runs, and the worklet's count grows at the device's
    # pace (real time), not all at once
    wait_for(page, "window.playground.samplesPlayed > 0")
    first = (time.monotonic(), state(page))
    assert first[1]["contextState"] == "running"
    assert first[1]["contextRate"] == RATE          # no resampling needed
    wait_for(page, TERMINAL)
    end = time.monotonic()
    s = state(page)
    expected = RATE // 2
    assert s["status"] == "done", s
    assert s["lastError"] is None
    assert s["expectedSamples"] == s["done"]["samples"] == expected
    assert s["samplesReceived"] == s["workletReceived"] == s["samplesPlayed"] == expected
    assert s["playbackEnded"] and s["closeCode"] == 1000
    pace = (expected - first[1]["samplesPlayed"]) / (end - first[0])
    assert 0.2 * RATE < pace < 1.5 * RATE, f"played at {pace:.0f} samples/s"
    assert s["ttfaMs"] > 0 and s["rtf"] > 0 and s["serverTtfaMs"] is not None
    assert page.inner_text("#stat-ttfa").endswith(" ms")
    assert page.inner_text("#stat-rtf-server") == f"{s['done']['real_time_factor']:.3f}"
    assert "Done: 8000 samples" in page.inner_text("#status")

    rate, frames = wav_frames(download(page))
    _, reference = wav_frames(server_wav(server, {"model": "spk", "speaker": "bob",
                                                  "seconds": 0.5, "seed": 7,
                                                  "temperature": 0.9}))
    assert rate == RATE and len(frames) == 2 * expected
    assert frames == reference          # the page's WAV is the server's audio, bit for bit

    page.screenshot(path=tmp_path / "playground.png", full_page=True)
    if os.environ.get("WAVENET_DOCS_SCREENSHOT") == "1":
        page.screenshot(path=ROOT / "docs" / "playground.png", full_page=True)


def test_the_worklet_resamples_when_the_device_rate_differs(page, servers):
    server, _ = servers
    page.goto(server.url + "/?context_rate=44100")
    wait_for(page, "window.playground.status === 'idle'")
    page.select_option("#model", "plain")
    page.fill("#seconds", "0.5")
    s = generate(page)
    assert s["status"] == "done" and s["contextRate"] == 44100, s
    assert s["samplesReceived"] == s["workletReceived"] == s["samplesPlayed"] == RATE // 2


def test_a_wav_file_is_resynthesized(page, servers, tmp_path):
    server, _ = servers
    audio = sine_wav(0.25)
    (tmp_path / "in.wav").write_bytes(audio)
    open_page(page, server)
    page.select_option("#model", "mel")
    page.set_input_files("#audio-file", tmp_path / "in.wav")
    assert page.is_disabled("#text")
    s = generate(page)
    assert s["status"] == "done", s
    n = s["done"]["samples"]
    assert n > 0 and n % 128 == 0                      # whole mel frames of hop 128
    assert s["samplesReceived"] == s["workletReceived"] == s["samplesPlayed"] == n
    _, frames = wav_frames(download(page))
    _, reference = wav_frames(server_wav(server, {"model": "mel", "seed": 0, "temperature": 1,
                                                  "audio": base64.b64encode(audio).decode()}))
    assert frames == reference


def test_cancel_stops_the_stream_and_the_playback(page, servers):
    server, _ = servers
    open_page(page, server)
    page.select_option("#model", "plain")
    page.fill("#seconds", "120")
    page.click("#start")
    wait_for(page, "window.playground.samplesPlayed > 0")     # audibly playing
    assert page.is_enabled("#cancel") and page.is_disabled("#start")
    page.click("#cancel")
    wait_for(page, TERMINAL)
    s = state(page)
    assert s["status"] == "cancelled", s
    assert s["done"]["status"] == "cancelled" and s["closeCode"] == 1000
    assert s["lastError"] is None and page.is_hidden("#error")
    assert 0 < s["samplesReceived"] < 120 * RATE
    # playback may have caught up with what had arrived (3996 of 3996 in one CI run):
    # that it stopped is what the silence below shows
    assert s["samplesPlayed"] <= s["samplesReceived"]
    wait_for(page, "window.playground.contextState === 'closed'", timeout=5)
    played = state(page)["samplesPlayed"]
    time.sleep(0.3)
    assert state(page)["samplesPlayed"] == played              # silent since
    assert page.is_enabled("#start") and page.is_disabled("#cancel")
    assert "Cancelled" in page.inner_text("#status")
    assert "partial" in page.inner_text("#download")


def test_server_errors_are_shown(page, servers):
    from websockets.sync.client import connect

    server, _ = servers
    open_page(page, server)
    page.select_option("#model", "plain")
    page.fill("#seconds", str(MAX_SECONDS + 1))
    s = generate(page)
    assert s["status"] == "error" and s["closeCode"] == 1007
    assert s["lastError"]["code"] == "invalid_request"
    text = page.inner_text("#error")
    assert text.startswith("Invalid request: seconds:") and "limit" in text, text
    assert "(close code 1007)" in text and page.is_enabled("#start")

    # busy: the open server has one slot and no queue; a client holds the slot
    with connect(server.ws_url, proxy=None, max_size=None) as holder:
        holder.send(json.dumps({"type": "start", "model": "plain", "seconds": MAX_SECONDS}))
        assert json.loads(holder.recv(10))["type"] == "started"
        page.fill("#seconds", "0.5")
        s = generate(page)
        holder.send(json.dumps({"type": "cancel"}))
        while not isinstance(message := holder.recv(10), str) or '"done"' not in message:
            pass
    assert s["status"] == "error" and s["closeCode"] == 1013, s
    assert s["lastError"]["code"] == "overloaded"
    assert page.inner_text("#error").startswith("Server busy (503): model 'plain' has 0 "
                                                "requests waiting already; retry later")

    s = generate(page)                                         # free again: it plays
    assert s["status"] == "done" and page.is_hidden("#error")


def test_the_api_key_field(page, servers):
    _, server = servers
    open_page(page, server)
    assert "needs an API key" in page.inner_text("#models-message")
    assert page.is_hidden("#models") and page.is_disabled("#start")

    page.fill("#api-key", API_KEY)
    page.click("#reload")
    wait_for(page, "window.playground.models.length === 4")
    page.select_option("#model", "plain")
    page.fill("#seconds", "0.25")
    # the key changes on the server's side: the stream is refused, and the page says why
    page.evaluate("document.getElementById('api-key').value = 'wrong'")
    s = generate(page)
    assert s["status"] == "error" and s["closeCode"] == 1008
    text = page.inner_text("#error")
    assert text.startswith("Unauthorized: a valid API key is required") and "API key" in text

    page.fill("#api-key", API_KEY)
    s = generate(page)
    assert s["status"] == "done" and s["samplesPlayed"] == RATE // 4


def test_text_is_spoken_through_the_vocoder(page, servers):
    server, _ = servers
    open_page(page, server)
    voices = page.evaluate("window.playground.models.find(m => m.name === 'mel').voices")
    if not voices:
        pytest.skip("no speech synthesizer here (the espeakng-loader wheel is a dependency)")
    page.select_option("#model", "mel")
    assert page.is_visible("#text") and page.is_visible("#voice")
    page.fill("#text", "Hi.")
    page.select_option("#voice", voices[0])
    s = generate(page)
    assert s["status"] == "done", s
    assert s["samplesReceived"] == s["samplesPlayed"] == s["done"]["samples"] > 0


def test_type_as_you_go_speaks_each_sentence_and_highlights_its_words(page, servers):
    """The "type as you go" mode: a WS text stream sent as it is typed; each sentence is
    spoken once finished, its words listed, and each highlighted as the worklet plays it."""
    server, _ = servers
    open_page(page, server)
    voices = page.evaluate("window.playground.models.find(m => m.name === 'mel').voices")
    if not voices:
        pytest.skip("no speech synthesizer here (the espeakng-loader wheel is a dependency)")
    page.select_option("#model", "mel")
    page.check("#live")
    assert page.is_visible("#end-text")
    page.fill("#text", "Hello there. ")
    page.click("#start")
    wait_for(page, "window.playground.words.length >= 2", 30)
    assert page.evaluate("window.playground.status") in ("streaming", "playing")
    page.type("#text", "How are you?", delay=20)         # appended as it is typed
    page.click("#end-text")
    wait_for(page, TERMINAL, 60)
    s = state(page)
    assert s["status"] == "done", s
    assert [w["word"] for w in s["words"]] == ["Hello", "there", "How", "are", "you"]
    assert s["textSent"] == "Hello there. How are you?"
    assert s["samplesReceived"] == s["samplesPlayed"] == s["done"]["samples"] > 0
    assert s["wordNow"] == len(s["words"]) - 1        # the last word was reached in playback
    assert page.evaluate("[...document.querySelectorAll('#words span')]"
                         ".every(e => e.className === 'heard')")
