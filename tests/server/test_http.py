"""HTTP API through a real uvicorn process: models, whole and streamed audio, metrics."""

from __future__ import annotations

import io
import struct
import time
import wave

import httpx

from tests.helpers.server import BACKEND, SPEAKERS, metric


def test_health_ready_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    models = {m["name"]: m for m in client.get("/v1/models").json()["data"]}
    assert set(models) == {"plain", "spk", "mel", "broken"}
    assert models["plain"]["status"] == "ready" and models["plain"]["conditioning"] == []
    assert models["plain"]["receptive_field"] == 31 and models["plain"]["sample_rate"] == 16000
    assert models["spk"]["speakers"] == SPEAKERS and models["spk"]["num_speakers"] == 3
    assert models["mel"]["conditioning"] == ["mel"] and models["mel"]["mel_channels"] == 20
    # what `auto` resolved to: fp32 for a checkpoint without recorded NLL costs
    assert models["plain"]["precision"] == ("fp32" if BACKEND == "cpu" else None)
    assert models["broken"]["status"] == "failed"
    assert "broken.safetensors" in models["broken"]["error"]   # names the file, not the path
    assert "/" not in models["broken"]["error"].split(":")[0]
    assert client.get("/v1/models/spk").json()["hop_length"] is None


def test_whole_wav_is_byte_valid(client):
    r = client.post("/v1/synthesize", json={"model": "plain", "seconds": 0.25, "seed": 5},
                    headers={"X-Request-ID": "my-request-1"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["x-request-id"] == "my-request-1"
    assert r.headers["x-sample-rate"] == "16000" and r.headers["x-audio-samples"] == "4000"
    data = r.content
    assert len(data) == 44 + 2 * 4000 == int(r.headers["content-length"])
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    assert data[36:40] == b"data" and struct.unpack("<I", data[40:44])[0] == 2 * 4000
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (
            1, 2, 16000, 4000)


def test_pcm_speaker_by_name_and_id_agree(client):
    body = {"model": "spk", "num_samples": 1000, "seed": 9, "format": "pcm"}
    by_name = client.post("/v1/synthesize", json={**body, "speaker": "bob"})
    by_id = client.post("/v1/synthesize", json={**body, "speaker": 1})
    other = client.post("/v1/synthesize", json={**body, "speaker": 2})
    assert by_name.status_code == by_id.status_code == 200
    assert by_name.headers["content-type"] == "application/octet-stream"
    assert len(by_name.content) == 2000 and by_name.content == by_id.content
    assert other.content != by_id.content
    assert r_id(by_name) != r_id(by_id)


def r_id(response) -> str:
    return response.headers["x-request-id"]


def test_stream_delivers_first_bytes_before_generation_finishes(server):
    body = {"model": "plain", "seconds": 30.0, "seed": 1, "stream": True}
    t0 = time.perf_counter()
    with httpx.stream("POST", server.url + "/v1/synthesize", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        chunks = r.iter_raw()
        first = next(chunks)
        t_first = time.perf_counter() - t0
        data = first + b"".join(chunks)
    t_total = time.perf_counter() - t0
    assert t_first < t_total / 3, (t_first, t_total)
    assert data[:4] == b"RIFF" and struct.unpack("<I", data[4:8])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    assert len(data) == 44 + 2 * 30 * 16000


def test_metrics_count_requests_and_audio(client):
    client.post("/v1/synthesize", json={"model": "plain", "num_samples": 500})
    text = client.get("/metrics").text
    assert metric(text, "wavenet_requests_total", route="/v1/synthesize", status="200") >= 1
    assert metric(text, "wavenet_samples_generated_total", model="plain") >= 500
    assert metric(text, "wavenet_time_to_first_audio_seconds_count", model="plain") >= 1
    assert metric(text, "wavenet_real_time_factor_count", model="plain") >= 1
    assert metric(text, "wavenet_batch_occupancy_count", model="plain") >= 1
    assert metric(text, "wavenet_waiting_streams", model="plain") == 0
    if BACKEND == "cpu":          # the compiled kernel's own CPU, every thread's
        assert metric(text, "wavenet_kernel_cpu_seconds", model="plain") > 0
