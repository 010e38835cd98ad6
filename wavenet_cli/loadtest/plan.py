"""What a mixed load sends: its configuration (and the limits it is validated against), the
models it picks from, and each request drawn at random (`make_plan`).

A request is a WebSocket stream or a streamed HTTP POST (`http_fraction`), for a random
model among those chosen, a random length in [seconds, max_seconds], a random seed (and
speaker, and a random mel for mel-conditioned models). With probability `disconnect` its
client goes away: mostly at a random point of its audio (WebSocket clients abort the TCP
connection, close the WebSocket or send "cancel"; HTTP clients close the connection), one
time in five after a random 0-0.5 s whatever happened (maybe still queued, maybe before
its first audio).
"""

from __future__ import annotations

import base64
import io
import random
from dataclasses import dataclass

from wavenet_cli.loadtest.target import check_loopback

MAX_CONCURRENCY = 1000
MAX_REQUESTS = 1_000_000
MAX_DURATION_S = 24 * 3600.0
MAX_TIMEOUT_S = 600.0


@dataclass
class LoadConfig:
    url: str = "http://127.0.0.1:8000"
    concurrency: int = 16
    requests: int | None = None          # stop after this many requests ...
    duration: float | None = None        # ... or after this many seconds (whichever first)
    seconds: float = 0.5                 # audio per request: uniform in [seconds, max_seconds]
    max_seconds: float | None = None
    http_fraction: float = 0.5           # share of requests over streamed HTTP (rest: WS)
    disconnect: float = 0.0              # share of requests whose client leaves mid-stream
    models: list[str] | None = None      # default: every ready model
    api_key: str | None = None
    timeout: float = 120.0               # per request
    seed: int | None = None              # for the random choices (not the audio seeds)

    def validate(self) -> None:
        check_loopback(self.url)
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be in 1..{MAX_CONCURRENCY}")
        if self.requests is None and self.duration is None:
            raise ValueError("give a request count or a duration")
        if self.requests is not None and not 1 <= self.requests <= MAX_REQUESTS:
            raise ValueError(f"requests must be in 1..{MAX_REQUESTS}")
        if self.duration is not None and not 0 < self.duration <= MAX_DURATION_S:
            raise ValueError(f"duration must be in (0, {MAX_DURATION_S:g}] seconds")
        if not 0 < self.timeout <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout must be in (0, {MAX_TIMEOUT_S:g}] seconds")
        if self.seconds <= 0 or (self.max_seconds is not None and self.max_seconds < self.seconds):
            raise ValueError("need 0 < seconds <= max_seconds")
        for name in ("http_fraction", "disconnect"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1]")

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


@dataclass
class ModelSpec:
    name: str
    sample_rate: int
    mel_channels: int = 0
    hop_length: int | None = None
    num_speakers: int = 0


@dataclass
class Plan:
    transport: str
    model: ModelSpec
    body: dict
    expected: int
    disconnect_at: int | None = None     # audio bytes received before leaving
    how: str = "close"                   # ws: abort | close | cancel; http: close
    leave_after: float | None = None     # or leave after this many seconds, whatever happened


def _npy_b64(array) -> str:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode()


def make_plan(cfg: LoadConfig, models: list[ModelSpec], rng: random.Random) -> Plan:
    model = rng.choice(models)
    seconds = cfg.seconds if cfg.max_seconds is None else rng.uniform(cfg.seconds,
                                                                      cfg.max_seconds)
    body: dict = {"model": model.name, "seed": rng.randrange(2**32), "format": "pcm"}
    if model.num_speakers:
        body["speaker"] = rng.randrange(model.num_speakers)
    if model.mel_channels:
        import numpy as np

        hop = model.hop_length or 256
        frames = max(1, round(seconds * model.sample_rate / hop))
        mel = np.random.default_rng(rng.randrange(2**32)).normal(
            -4, 2, (frames, model.mel_channels))
        body["mel"] = _npy_b64(mel)
        expected = frames * hop
    else:
        expected = max(1, round(seconds * model.sample_rate))
        body["num_samples"] = expected
    transport = "http" if rng.random() < cfg.http_fraction else "ws"
    plan = Plan(transport, model, body, expected)
    if rng.random() < cfg.disconnect:
        if rng.random() < 0.2:       # early: maybe still queued, maybe before any audio
            plan.leave_after = rng.uniform(0.0, 0.5)
        else:                        # at a random point of the audio
            plan.disconnect_at = rng.randrange(2 * expected)
            plan.how = rng.choice(["abort", "close", "cancel"]) if transport == "ws" else "close"
    return plan
