"""POST /v1/audio/speech with the official `openai` client, unmodified, against a real uvicorn
process that requires an API key (base_url at the server, api_key = WAVENET_API_KEY): OpenAI's
defaults (mp3, 24 kHz), every response_format read back by a real decoder, 4,096 characters
spoken sentence by sentence, unknown fields ignored, and `stream_format: "sse"`."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from server.wire.resample import resample_whole
from tests.helpers.decode import best_lag, decode
from tests.helpers.server import BACKEND, Server

openai = pytest.importorskip("openai", reason="openai (dev extra) is not installed")

KEY = "openai-test-key"
TEXT = "Hello there."


@pytest.fixture(scope="module")
def keyed(checkpoints, tmp_path_factory):
    srv = Server.ready(checkpoints, {"WAVENET_BACKEND": BACKEND, "WAVENET_API_KEY": KEY},
                       tmp_path_factory.mktemp("openai") / "server.log")
    yield srv
    srv.stop()


@pytest.fixture
def client(keyed):
    with openai.OpenAI(base_url=keyed.url + "/v1", api_key=KEY, max_retries=0,
                       timeout=60) as c:
        yield c


def test_defaults_are_openais_mp3_at_24_khz(client):
    """Open WebUI sends model, voice and input only and serves the reply as audio/mpeg."""
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=TEXT) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        assert response.headers["x-sample-rate"] == "24000"
        data = response.read()
    samples, rate = decode(data, "mp3")
    assert rate == 24000 and len(samples) > 24000 * 0.3


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_every_response_format_decodes_to_the_pcm_audio(client, fmt):
    """pcm is OpenAI's 24 kHz s16le; every other format decodes back to it, lossless ones
    bitwise (the seed is fixed: the same request makes the same samples)."""
    pcm = np.frombuffer(client.audio.speech.create(model="mel", voice="alloy", input=TEXT,
                                                   response_format="pcm").content, "<i2")
    data = client.audio.speech.create(model="mel", voice="alloy", input=TEXT,
                                      response_format=fmt).content
    samples, rate = decode(data, fmt, 24000)
    assert rate == 24000
    if fmt in ("flac", "wav", "pcm"):
        assert np.array_equal(samples, pcm)
    else:
        lag = best_lag(pcm, samples)
        assert len(samples) >= len(pcm) + lag and lag <= 2200


def test_pcm_is_24_khz_the_models_audio_resampled(client):
    """LiveKit's plugin plays pcm as OpenAI's 24 kHz: it is the model's 16 kHz audio (same
    seed, same samples) resampled, bitwise as resampling the whole at once."""
    native = client.audio.speech.create(model="tts-1-hd", voice="alloy", input=TEXT,
                                        response_format="pcm",
                                        extra_body={"sample_rate": 16000}).content
    with client.audio.speech.with_streaming_response.create(
            model="tts-1-hd", voice="alloy", input=TEXT, response_format="pcm") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["x-model"] == "mel"
        assert response.headers["x-sample-rate"] == "24000"
        chunks = list(response.iter_bytes())
    assert b"".join(chunks) == resample_whole(native, 16000, 24000) and len(native) > 0


def test_speed_stretches_the_audio(client):
    def samples(speed: float) -> int:
        return len(client.audio.speech.create(model="mel", voice="alloy", input=TEXT,
                                              response_format="pcm", speed=speed,
                                              extra_body={"sample_rate": 16000}
                                              ).content) // 2
    normal, fast, slow = samples(1.0), samples(2.0), samples(0.5)
    assert abs(fast - normal / 2) <= 256 and abs(slow - 2 * normal) <= 256


def test_long_input_is_spoken_sentence_by_sentence_as_one_stream(client):
    """Over 600 characters (up to OpenAI's 4,096): each sentence rendered in turn into one
    continuous stream, as long as its sentences spoken one by one, end to end."""
    sentences = [f"This is sentence number {i}, and it goes on a little." for i in range(14)]
    text = " ".join(sentences)
    assert 600 < len(text) <= 4096

    def pcm(text: str) -> int:
        return len(client.audio.speech.create(model="mel", voice="alloy", input=text,
                                              response_format="pcm").content) // 2
    whole = pcm(text)
    parts = sum(pcm(s) for s in sentences[:3])
    assert whole > 4 * parts            # 14 sentences against 3
    with pytest.raises(openai.APIStatusError, match="WAVENET_MAX_INPUT_CHARS") as raised:
        client.audio.speech.create(model="mel", voice="alloy", input="x" * 4097)
    assert raised.value.status_code == 413


def test_unknown_fields_are_ignored_and_logged(client, keyed):
    """Home Assistant's openai_tts adds `extra_payload`; OpenAI ignores such fields."""
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                       response_format="wav",
                                       extra_body={"extra_payload": {"x": 1}, "volume": 2})
    assert audio.content[:4] == b"RIFF"
    log = keyed.log()
    assert "ignoring fields OpenAI's API does not define: extra_payload, volume" in log


def sse_events(response) -> list[dict]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    return events


def test_sse_sends_audio_deltas_and_done_with_usage(client):
    pcm = client.audio.speech.create(model="mel", voice="alloy", input=TEXT,
                                     response_format="pcm").content
    with client.audio.speech.with_streaming_response.create(
            model="mel", voice="alloy", input=TEXT, response_format="pcm",
            stream_format="sse") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert deltas and events[-1]["type"] == "speech.audio.done"
    assert b"".join(base64.b64decode(e["audio"]) for e in deltas) == pcm
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == len(TEXT) and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    with client.audio.speech.with_streaming_response.create(
            model="mel", voice="alloy", input=TEXT, stream_format="sse") as response:
        mp3 = b"".join(base64.b64decode(e["audio"]) for e in sse_events(response)
                       if e["type"] == "speech.audio.delta")
    assert decode(mp3, "mp3")[1] == 24000


def test_tts1_aliases_refuse_sse_as_openai_does(client):
    for model in ("tts-1", "tts-1-hd"):
        with pytest.raises(openai.BadRequestError, match="stream_format"):
            client.audio.speech.create(model=model, voice="alloy", input=TEXT,
                                       stream_format="sse")


@pytest.mark.parametrize("fields, field", [({"response_format": "wma"}, "response_format"),
                                           ({"extra_body": {"sample_rate": 96000}},
                                            "sample_rate"),
                                           ({"stream_format": "chunks"}, "stream_format")])
def test_unsupported_formats_are_a_400_naming_the_supported(client, fields, field):
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, **fields)
    assert info.value.body["field"] == field
    if field == "response_format":
        assert "mp3, opus, aac, flac, wav, pcm, ulaw" in str(info.value)


def test_errors_reach_the_client_as_its_own_exceptions(keyed):
    with openai.OpenAI(base_url=keyed.url + "/v1", api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    with openai.OpenAI(base_url=keyed.url + "/v1", api_key=KEY, max_retries=0) as good:
        with pytest.raises(openai.NotFoundError):
            good.audio.speech.create(model="nope", voice="alloy", input=TEXT)
        with pytest.raises(openai.UnprocessableEntityError, match="voice"):
            good.audio.speech.create(model="tts-1", voice="no-such-voice", input=TEXT)
        with pytest.raises(openai.UnprocessableEntityError, match="not a vocoder"):
            good.audio.speech.create(model="plain", voice="alloy", input=TEXT)


def test_models_list_the_aliases_and_the_voices(keyed):
    models = httpx.get(keyed.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}
                       ).json()["data"]
    by_name = {m["name"]: m for m in models}
    assert by_name["mel"]["aliases"] == ["tts-1", "tts-1-hd"]
    assert by_name["plain"]["aliases"] == [] and by_name["mel"]["voices"]
