"""The fuzz machinery shared by tests/server/test_fuzz.py and benchmarks/fuzz.py: value
strategies, the in-process request check, and the schemathesis, HTTP and WebSocket runs
(each returns a `Tally`). See tests/server/test_fuzz.py for what each run proves.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from server.api.stream import CLOSE_CODES
from tests.helpers.server import BACKEND, MEL, SMALL, SPEAKERS, Server, metric

FUZZ_EXAMPLES = int(os.environ.get("WAVENET_FUZZ_EXAMPLES", "80"))
MODELS = ("plain", "spk", "mel")
MAX_SECONDS = 1.0
CALL_TIMEOUT_S = 30.0
# every close a client's input may cause: not a server fault (1011), a shutdown (1001) or a
# client too slow to read (4408, the fuzz clients read everything)
WS_CLOSE_CODES = set(CLOSE_CODES) - {1001, 1011, 4408}
FIELDS = ("model", "seconds", "num_samples", "seed", "temperature", "speaker", "mel", "audio",
          "text", "voice", "format", "sample_rate", "stream")


def start_fuzz_server(models_folder, log_path) -> Server:
    return Server.ready(models_folder, {"WAVENET_BACKEND": BACKEND, "WAVENET_MAX_STREAMS": "8",
                                        "WAVENET_MAX_WAITING": "64",
                                        "WAVENET_MAX_SECONDS": str(MAX_SECONDS),
                                        "WAVENET_MAX_BODY_BYTES": str(64 * 1024),
                                        "WAVENET_LOG_LEVEL": "warning"}, log_path)


# -- value strategies --------------------------------------------------------------------
def npy_b64(array: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode()


def wav_b64(samples: np.ndarray, rate: int) -> str:
    from wavenet_core.audio.wav import wav_bytes

    return base64.b64encode(wav_bytes(samples, rate)).decode()


scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
           | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=12)
floats = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def npy_arrays(draw) -> str:
    dtype = draw(st.sampled_from(["<f4", "<f8", "<f2", "<i2", "<i8", "|u1", "|b1", "<c8"]))
    shape = draw(st.sampled_from([(3, 20), (0, 20), (20, 3), (2, 19), (20,), (1, 1, 20),
                                  (40, 20), (126, 20), (1, 20)]))
    data = draw(st.sampled_from(["zeros", "normal", "huge", "nan"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    array = rng.normal(-4, 2, shape)
    if data == "zeros":
        array = np.zeros(shape)
    elif data == "huge":
        array = array * 1e300
    elif data == "nan" and array.size:
        array.flat[0] = np.nan
    with np.errstate(all="ignore"):
        raw = npy_b64(array.astype(dtype))
    cut = draw(st.sampled_from([None, None, None, 8, 60, -8]))    # truncated files too
    if cut is not None:
        raw = base64.b64encode(base64.b64decode(raw)[:cut]).decode()
    return raw


@st.composite
def wav_files(draw) -> str:
    rate = draw(st.sampled_from([8000, 16000, 22050, 44100, 1, 3]))
    n = draw(st.sampled_from([0, 1, 100, 4000, 20000]))
    samples = np.random.default_rng(draw(st.integers(0, 99))).uniform(-1, 1, n)
    try:
        raw = base64.b64decode(wav_b64(samples.astype(np.float32), rate))
    except Exception:                          # the writer refuses: a hand-made header
        raw = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(draw(st.binary(max_size=40)))
    mangle = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if mangle == "truncate":
        raw = raw[:draw(st.integers(0, max(0, len(raw) - 1)))]
    elif mangle == "flip" and len(raw) > 30:
        i = draw(st.integers(0, 43))
        raw = raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:]
    return base64.b64encode(raw).decode()


FIELD_VALUES = {
    "model": st.sampled_from(MODELS) | st.text(max_size=8) | json_values,
    "seconds": st.floats(-1, 2.5) | st.integers(-2, 10**6) | floats | json_values,
    "num_samples": st.integers(-3, 20000) | st.integers(-2**70, 2**70) | floats | json_values,
    "seed": st.integers(-1, 2**33) | floats | json_values,
    "temperature": st.floats(-0.5, 2.5) | floats | st.integers(-1, 3) | json_values,
    "speaker": (st.integers(-2, 5) | st.sampled_from(SPEAKERS + ["0", "2", "3", "\u00b2",
                                                                  "\u0663", "", " 1", "-1"])
                | st.text(max_size=6) | json_values),
    "mel": (st.lists(st.lists(st.floats(-1e39, 1e39) | st.floats(-8, 2), min_size=19,
                              max_size=21), max_size=12)
            | npy_arrays() | st.text(max_size=30) | json_values),
    "audio": wav_files() | st.text(max_size=30) | json_values,
    "text": st.text(max_size=40) | json_values,
    "voice": st.sampled_from(["espeak-us-f2", "nope"]) | st.text(max_size=8) | json_values,
    "format": st.sampled_from(["wav", "pcm", "mp3", "opus", "ulaw", "ogg"]) | json_values,
    "sample_rate": st.sampled_from([8000, 22050, 24000, 7999, 48001]) | json_values,
    "stream": st.booleans() | json_values,
}


def request_bodies() -> st.SearchStrategy[dict]:
    """JSON objects shaped like SynthesisRequest: any subset of its fields, each with edge
    values, wrong types or arbitrary JSON; now and then an unknown field."""
    known = st.fixed_dictionaries({}, optional=FIELD_VALUES)
    return st.builds(lambda body, extra: {**body, **extra}, known,
                     st.dictionaries(st.sampled_from(["volume", "type", ""]), json_values,
                                     max_size=1))


@st.composite
def near_valid_bodies(draw) -> dict:
    """A valid request for one of the served models (at most 1 s), with 0-2 of its fields
    then replaced by anything FIELD_VALUES offers: most get past the schema this way."""
    model = draw(st.sampled_from(MODELS))
    body = {"model": model, "seed": draw(st.integers(0, 2**32 - 1)),
            "temperature": draw(st.floats(0, 2)), "format": draw(st.sampled_from(["pcm", "wav"]))}
    if model == "mel":
        body["mel"] = draw(st.lists(st.lists(st.floats(-8, 2), min_size=20, max_size=20),
                                    min_size=1, max_size=8))
    else:
        body["num_samples"] = draw(st.integers(1, 16000))
    if model == "spk":
        body["speaker"] = draw(st.sampled_from(SPEAKERS) | st.integers(0, 2))
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(FIELDS))
        body[name] = draw(FIELD_VALUES[name])
    return body


def any_bodies() -> st.SearchStrategy[dict]:
    return st.one_of(near_valid_bodies(), request_bodies())


# -- hypothesis on the request schema, in process ------------------------------------------
def model_entries() -> dict:
    from server.engine.service import ModelEntry
    from wavenet_core import MelConfig, WaveNetConfig

    return {
        "plain": ModelEntry("plain", None, status="ready", config=WaveNetConfig(**SMALL)),
        "spk": ModelEntry("spk", None, status="ready", speakers=list(SPEAKERS),
                          config=WaveNetConfig(**SMALL, num_speakers=3)),
        "mel": ModelEntry("mel", None, status="ready", config=WaveNetConfig(
            **SMALL, mel_channels=MEL["n_mels"], mel=MelConfig(**MEL))),
    }


def check_request(body: dict, entry) -> str:
    """Validate and build one request; -> "ok" or the error code. Fails on anything else."""
    from pydantic import ValidationError

    from server.engine.prepare import build_job
    from server.errors import ApiError
    from server.wire.schemas import SynthesisRequest

    try:
        req = SynthesisRequest.model_validate(body)
    except ValidationError:
        return "invalid_schema"
    try:
        job = build_job(req, entry, MAX_SECONDS)
    except ApiError as exc:
        assert 400 <= exc.status < 500 or (exc.status, exc.code) == (501, "text_unavailable"), exc
        assert exc.field and exc.message, exc
        return exc.code
    cfg = entry.config
    assert 1 <= job.num_samples <= int(MAX_SECONDS * cfg.sample_rate)
    assert 0 <= job.speaker < max(1, cfg.num_speakers)
    if cfg.mel_channels:
        mel = job.mel.frames
        assert mel.dtype == np.float32 and mel.shape[1] == cfg.mel_channels
        assert np.isfinite(mel).all()
        assert job.num_samples == len(mel) * cfg.mel.hop_length
    else:
        assert job.mel is None
    return "ok"


# -- schemathesis on the OpenAPI document ----------------------------------------------------
@dataclass
class Tally:
    """What a fuzz run saw."""

    calls: int = 0
    statuses: Counter = field(default_factory=Counter)
    slowest_s: float = 0.0
    problems: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def add(self, label: str, status, seconds: float, problem: str | None = None) -> None:
        self.calls += 1
        self.statuses[status] += 1
        self.slowest_s = max(self.slowest_s, seconds)
        if problem:
            self.problems.append(f"{label}: {problem}")

    @property
    def server_errors(self) -> int:
        """HTTP 5xx responses (WebSocket close codes are in the thousands)."""
        return sum(n for s, n in self.statuses.items() if isinstance(s, int) and 500 <= s < 600)


def pinned_schema(raw: dict) -> dict:
    """The server's OpenAPI with `model` also offered as one of the served names."""
    props = raw["components"]["schemas"]["SynthesisRequest"]["properties"]
    props["model"] = {"anyOf": [{"type": "string", "enum": list(MODELS)}, props["model"]]}
    return raw


def check_http(method: str, path: str, status: int, headers, content: bytes, seconds: float,
               text_ok: bool) -> str | None:
    """None if the response is acceptable, else what is wrong with it."""
    if seconds > CALL_TIMEOUT_S:
        return f"took {seconds:.1f} s"
    if status >= 500:
        body = content[:300].decode(errors="replace")
        if status == 501 and not text_ok and "text_unavailable" in body:
            return None           # no synthesizer on this machine: documented, not a crash
        return f"{status}: {body}"
    if status >= 400:
        try:
            body = json.loads(content)
            assert body["error"]["code"] and body["error"]["message"]
        except Exception:
            return f"{status} without a JSON error body: {content[:200]!r}"
        return None
    if method == "POST" and path == "/v1/synthesize" and status == 200:
        if headers.get("x-audio-encoding") != "pcm_s16le":
            return None if content else "200 with no audio"
        n = int(headers.get("x-audio-samples", -1))
        wav = headers.get("content-type", "").startswith("audio/wav")
        if len(content) != 2 * n + (44 if wav else 0):
            return f"200 with {len(content)} bytes for {n} samples"
    return None


def _header_dict(headers) -> dict:
    out = {}
    for key, value in dict(headers).items():
        out[key.lower()] = value[0] if isinstance(value, list) else value
    return out


def fuzz_settings(max_examples: int, seed: int | None) -> settings:
    """Every fuzz runner: no deadline or example database, all health checks off, and
    reproducible (derandomized) unless `seed` is None."""
    return settings(max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), derandomize=seed is not None)


def run_openapi_fuzz(url: str, max_examples: int, modes=("positive", "negative"),
                     seed: int | None = 0) -> Tally:
    import schemathesis

    raw = pinned_schema(httpx.get(url + "/openapi.json").json())
    schema = schemathesis.openapi.from_dict(raw)
    voices = [m for m in httpx.get(url + "/v1/models").json()["data"] if m["voices"]]
    tally = Tally()
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if op.path.startswith("/v1/")]
    assert {op.path for op in operations} >= {"/v1/models", "/v1/models/{name}",
                                              "/v1/synthesize"}
    for op in operations:
        for mode in modes:
            fuzz_operation(url, op, mode, max_examples, seed, tally, bool(voices))
    return tally


def fuzz_operation(url: str, op, mode: str, max_examples: int, seed, tally: Tally,
                   text_ok: bool) -> None:
    from schemathesis import GenerationMode

    label = f"{op.method.upper()} {op.path} [{mode}]"

    @fuzz_settings(max_examples, seed)
    @given(case=op.as_strategy(generation_mode=GenerationMode(mode)))
    def one(case):
        t0 = time.perf_counter()
        response = case.call(base_url=url, timeout=CALL_TIMEOUT_S)
        seconds = time.perf_counter() - t0
        problem = check_http(op.method.upper(), op.path, response.status_code,
                             _header_dict(response.headers), response.content, seconds, text_ok)
        tally.add(label, response.status_code, seconds, problem)
        assert problem is None, f"{label}: {problem}\n{case.as_curl_command()}"

    try:
        one()
    except Unsatisfiable:     # nothing to break: e.g. no input at all in negative mode
        tally.skipped.append(label)


def run_http_fuzz(url: str, max_examples: int, seed: int | None = 0) -> Tally:
    """any_bodies() POSTed to /v1/synthesize: unlike schemathesis' data, most of these
    are valid for the model they name, so they reach the engine (whole and streamed)."""
    voices = [m for m in httpx.get(url + "/v1/models").json()["data"] if m["voices"]]
    tally = Tally()

    @fuzz_settings(max_examples, seed)
    @given(body=any_bodies())
    def one(body):
        t0 = time.perf_counter()
        with httpx.Client(base_url=url, timeout=CALL_TIMEOUT_S) as client:
            r = client.post("/v1/synthesize", content=json.dumps(body),    # NaN too
                            headers={"Content-Type": "application/json"})
        seconds = time.perf_counter() - t0
        problem = check_http("POST", "/v1/synthesize", r.status_code, r.headers, r.content,
                             seconds, bool(voices))
        tally.add("POST /v1/synthesize", r.status_code, seconds, problem)
        assert problem is None, f"{problem}\nbody: {json.dumps(body)[:500]}"

    one()
    return tally


def settled(url: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(url + "/metrics").text
        if all(metric(text, "wavenet_live_streams", model=m) == 0
               and metric(text, "wavenet_waiting_streams", model=m) == 0 for m in MODELS):
            return True
        time.sleep(0.05)
    return False


# -- hypothesis on WebSocket start messages ---------------------------------------------------
def ws_first_frames() -> st.SearchStrategy:
    """Mostly start messages from request_bodies(); some raw text and binary frames."""
    starts = any_bodies().map(lambda body: json.dumps({"type": "start", **body}))
    return st.one_of(starts, starts, starts, st.text(max_size=40),
                     st.binary(max_size=40), json_values.map(json.dumps))


async def ws_probe(url: str, first) -> tuple[int | None, str | None]:
    """One connection: send `first`, read to the end. -> (close code, problem or None)."""
    import websockets

    audio, started, done, error = 0, None, None, None
    async with websockets.connect(url, max_size=None, proxy=None) as ws:
        await ws.send(first)
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    audio += len(message)
                    continue
                event = json.loads(message)
                if event["type"] == "started":
                    started = event
                elif event["type"] == "done":
                    done = event
                elif event["type"] == "error":
                    error = event
        except websockets.ConnectionClosedError:
            pass
        code = ws.close_code
    if code not in WS_CLOSE_CODES:
        return code, f"close code {code}, error {error}"
    if code == 1000:
        if not (started and done and done["status"] == "done"):
            return code, f"closed 1000 without a done stream: {started} {done}"
        header = 44 if started["format"] == "wav" else 0
        raw = started["encoding"] == "pcm_s16le"     # encoded formats: no length to check
        if (raw and audio != header + 2 * started["num_samples"]) or done["samples"] != \
                started["num_samples"]:
            return code, f"{audio} bytes for {started['num_samples']} samples"
    elif error is None or not error.get("code"):
        return code, f"close {code} without an error event"
    return code, None


def run_ws_fuzz(ws_url: str, max_examples: int, seed: int | None = 0) -> Tally:
    tally = Tally()

    @fuzz_settings(max_examples, seed)
    @given(first=ws_first_frames())
    def one(first):
        t0 = time.perf_counter()
        code, problem = asyncio.run(asyncio.wait_for(ws_probe(ws_url, first), CALL_TIMEOUT_S))
        tally.add("WS /v1/stream", code, time.perf_counter() - t0, problem)
        assert problem is None, f"{problem}\nfirst frame: {first!r:.300}"

    one()
    return tally
