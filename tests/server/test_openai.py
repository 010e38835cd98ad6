"""POST /v1/audio/speech with the official `openai` client, unmodified, against a real uvicorn
process that requires an API key (base_url at the server, api_key = WAVENET_API_KEY)."""

from __future__ import annotations

import struct

import httpx
import pytest

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


def wav_parts(data: bytes) -> tuple[int, bytes]:
    """(sample rate, PCM) of a streaming WAV (sizes 0xFFFFFFFF) as this server sends it."""
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    rate = struct.unpack("<I", data[24:28])[0]
    assert data[36:40] == b"data"
    return rate, data[44:]


def test_create_returns_the_whole_wav(client):
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                       response_format="wav")
    rate, pcm = wav_parts(audio.content)
    assert rate == 16000 and len(pcm) > 2 * 16000 * 0.3 and len(pcm) % 2 == 0


def test_streaming_response_gives_the_same_audio_chunked(client):
    whole = client.audio.speech.create(model="tts-1-hd", voice="alloy", input=TEXT,
                                       response_format="pcm").content
    with client.audio.speech.with_streaming_response.create(
            model="tts-1-hd", voice="alloy", input=TEXT, response_format="pcm") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["x-model"] == "mel"
        chunks = list(response.iter_bytes())
    assert b"".join(chunks) == whole and len(whole) > 0


def test_speed_stretches_the_audio(client):
    def samples(speed: float) -> int:
        return len(client.audio.speech.create(model="mel", voice="alloy", input=TEXT,
                                              response_format="pcm", speed=speed).content) // 2
    normal, fast, slow = samples(1.0), samples(2.0), samples(0.5)
    assert abs(fast - normal / 2) <= 128 and abs(slow - 2 * normal) <= 128


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_unsupported_formats_are_a_400_naming_the_supported(client, fmt):
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                   response_format=fmt)
    assert "wav, pcm" in str(info.value)


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
        with pytest.raises(openai.BadRequestError, match="stream_format"):
            good.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                     stream_format="sse")


def test_models_list_the_aliases_and_the_voices(keyed):
    models = httpx.get(keyed.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}
                       ).json()["data"]
    by_name = {m["name"]: m for m in models}
    assert by_name["mel"]["aliases"] == ["tts-1", "tts-1-hd"]
    assert by_name["plain"]["aliases"] == [] and by_name["mel"]["voices"]
