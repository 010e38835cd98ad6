"""Every bad input gets its 4xx with a JSON error naming the field; the server keeps serving."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from wavenet_core.audio.wav import wav_bytes


def npy(array) -> str:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return base64.b64encode(buf.getvalue()).decode()


GOOD_MEL = np.zeros((4, 20), np.float32)
NAN_MEL = GOOD_MEL.copy()
NAN_MEL[1, 2] = np.nan
SHORT_WAV = base64.b64encode(wav_bytes(np.zeros(800, np.float32), 16000)).decode()

CASES = [
    # (body, status, error code, field)
    ({"model": "nope", "seconds": 1}, 404, "model_not_found", "model"),
    ({"model": "broken", "seconds": 1}, 503, "model_unavailable", "model"),
    ({"seconds": 1}, 422, "invalid_request", "model"),            # several models served
    ({"model": "plain"}, 422, "invalid_request", "seconds"),
    ({"model": "plain", "seconds": 0}, 422, "invalid_request", "seconds"),
    ({"model": "plain", "seconds": 31}, 422, "invalid_request", "seconds"),
    ({"model": "plain", "seconds": "long"}, 422, "invalid_request", "seconds"),
    ({"model": "plain", "num_samples": 2.5}, 422, "invalid_request", "num_samples"),
    ({"model": "plain", "num_samples": 16000 * 31}, 422, "invalid_request", "num_samples"),
    ({"model": "plain", "seconds": 1, "num_samples": 5}, 422, "invalid_request", "num_samples"),
    ({"model": "plain", "seconds": 1, "seed": -1}, 422, "invalid_request", "seed"),
    ({"model": "plain", "seconds": 1, "seed": 2**32}, 422, "invalid_request", "seed"),
    ({"model": "plain", "seconds": 1, "temperature": 2.5}, 422, "invalid_request", "temperature"),
    ({"model": "plain", "seconds": 1, "temperature": -0.1}, 422, "invalid_request",
     "temperature"),
    ({"model": "plain", "seconds": 1, "format": "mp4"}, 400, "unsupported_format", "format"),
    ({"model": "plain", "seconds": 1, "format": 3}, 422, "invalid_request", "format"),
    ({"model": "plain", "seconds": 1, "sample_rate": 4000}, 400, "unsupported_format",
     "sample_rate"),
    ({"model": "plain", "seconds": 1, "sample_rate": 16e3}, 422, "invalid_request",
     "sample_rate"),
    ({"model": "plain", "seconds": 1, "stream": "maybe"}, 422, "invalid_request", "stream"),
    ({"model": "plain", "seconds": 1, "volume": 3}, 422, "invalid_request", "volume"),
    ({"model": "plain", "seconds": 1, "speaker": 0}, 422, "invalid_request", "speaker"),
    ({"model": "plain", "seconds": 1, "mel": [[0.0] * 20]}, 422, "invalid_request", "mel"),
    ({"model": "plain", "seconds": 1, "audio": SHORT_WAV}, 422, "invalid_request", "audio"),
    ({"model": "spk", "seconds": 1, "speaker": 3}, 422, "invalid_request", "speaker"),
    ({"model": "spk", "seconds": 1, "speaker": -1}, 422, "invalid_request", "speaker"),
    ({"model": "spk", "seconds": 1, "speaker": "zed"}, 422, "invalid_request", "speaker"),
    ({"model": "spk", "seconds": 1, "speaker": True}, 422, "invalid_request", "speaker"),
    ({"model": "mel"}, 422, "invalid_request", "mel"),
    ({"model": "mel", "seconds": 1, "mel": [[0.0] * 20]}, 422, "invalid_request", "seconds"),
    ({"model": "mel", "mel": [[0.0] * 19]}, 422, "invalid_request", "mel"),
    ({"model": "mel", "mel": [[0.0] * 20, [0.0] * 19]}, 422, "invalid_request", "mel"),
    ({"model": "mel", "mel": []}, 422, "invalid_request", "mel"),
    ({"model": "mel", "mel": [[1e39] * 20]}, 422, "invalid_request", "mel"),
    ({"model": "mel", "mel": [["a"] * 20]}, 422, "invalid_request", "mel.0.0"),
    ({"model": "mel", "mel": npy(np.zeros((3751, 20), np.float16))}, 422, "invalid_request",
     "mel"),                                                       # 30.0 s + 1 frame
    ({"model": "mel", "mel": npy(NAN_MEL)}, 422, "invalid_request", "mel"),
    ({"model": "mel", "mel": npy(GOOD_MEL.T)}, 422, "invalid_request", "mel"),
    ({"model": "mel", "mel": npy(np.zeros(20))}, 422, "invalid_request", "mel"),
    ({"model": "mel", "mel": npy(np.array([{"x": 1}], dtype=object))}, 422, "invalid_request",
     "mel"),
    ({"model": "mel", "mel": npy(np.zeros((4, 20), np.complex64))}, 422, "invalid_request",
     "mel"),
    ({"model": "mel", "mel": npy(GOOD_MEL)[:-8]}, 422, "invalid_request", "mel"),
    ({"model": "mel", "mel": "%%% not base64"}, 422, "invalid_request", "mel"),
    ({"model": "mel", "audio": base64.b64encode(b"RIFF0000WAVEjunk").decode()}, 422,
     "invalid_request", "audio"),
    ({"model": "mel", "audio": SHORT_WAV, "mel": [[0.0] * 20]}, 422, "invalid_request", "audio"),
    ({"model": "mel", "audio": base64.b64encode(wav_bytes(np.zeros(0), 16000)).decode()}, 422,
     "invalid_request", "audio"),
]


@pytest.mark.parametrize("body,status,code,field", CASES)
def test_bad_request_is_rejected_with_the_field(client, body, status, code, field):
    r = client.post("/v1/synthesize", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error.get("field") == field, error
    assert field in error["message"] and "Traceback" not in r.text
    assert r.json()["request_id"] == r.headers["x-request-id"]


def test_non_finite_and_malformed_json(client):
    headers = {"content-type": "application/json"}
    r = client.post("/v1/synthesize", headers=headers,
                    content=b'{"model": "plain", "seconds": 1, "temperature": NaN}')
    assert r.status_code == 422 and r.json()["error"]["field"] == "temperature"
    r = client.post("/v1/synthesize", headers=headers, content=b'{"model": "plain", "seco')
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = client.post("/v1/synthesize", headers=headers, content=b"[1, 2]")
    assert r.status_code == 422


def test_body_too_large_is_413(client, server):
    big = b'{"model": "mel", "mel": "' + b"A" * (300 * 1024) + b'"}'
    r = client.post("/v1/synthesize", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks():      # no Content-Length: the limit applies to what actually arrives
        yield b'{"model": "mel", "mel": "'
        for _ in range(40):
            yield b"A" * 8192
        yield b'"}'

    r = client.post("/v1/synthesize", content=chunks(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_unknown_route_and_method_are_json(client):
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/v1/synthesize")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert client.get("/v1/models/nope").status_code == 404


def test_good_inputs_after_all_the_bad_ones(client):
    ok = {"model": "mel", "mel": npy(np.full((3, 20), -5.0, np.float64)), "format": "pcm"}
    r = client.post("/v1/synthesize", json=ok)
    assert r.status_code == 200 and len(r.content) == 2 * 3 * 128
    audio = base64.b64encode(wav_bytes(np.zeros(2000, np.float32), 8000)).decode()
    r = client.post("/v1/synthesize", json={"model": "mel", "audio": audio, "format": "pcm"})
    # resampled to 16 kHz: 4000 samples -> 1 + 4000 // 128 frames -> 32 * 128 samples
    assert r.status_code == 200 and len(r.content) == 2 * 32 * 128
    assert client.get("/readyz").status_code == 200
