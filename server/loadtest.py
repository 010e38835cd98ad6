"""Load-test client for a running server, over loopback only.

Two drivers:

- `run_mixed(LoadConfig)`: N concurrent clients, each running requests back to back
  (closed loop) until a request count or a duration is reached. Each request is a
  WebSocket stream or a streamed HTTP POST (`http_fraction`), for a random model among
  the ready ones (or those named), a random length in [seconds, max_seconds], a random
  seed (and speaker, and a random mel for mel-conditioned models). With probability
  `disconnect` a client goes away: mostly at a random point of its audio (WebSocket
  clients abort the TCP connection, close the WebSocket or send "cancel"; HTTP clients
  close the connection), one time in five after a random 0-0.5 s whatever happened (maybe
  still queued, maybe before its first audio). The report has time to first audio
  p50/p95/p99, real-time factor, aggregate samples/s, outcomes and errors by kind; after
  the run it waits for the server's live and waiting stream gauges to reach 0 and
  reports them, with the server's RSS (before and after) when its pid is given.
- `run_load(url, concurrency, start, min_requests)`: rounds of N WebSocket streams
  started together (benchmarks/load_ws.py compares these with the engine alone).

Time to first audio is measured from sending the start message (WebSocket) or the request
(HTTP) to the first audio byte; real-time factor is wall time over audio duration for a
request that completed. Only loopback targets are accepted (127.0.0.0/8, ::1, localhost):
this is a load generator, not something to point at other people's machines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import ipaddress
import json
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MAX_CONCURRENCY = 1000
MAX_REQUESTS = 1_000_000
MAX_DURATION_S = 24 * 3600.0
MAX_TIMEOUT_S = 600.0


# -- target checks -------------------------------------------------------------------------
def check_loopback(url: str) -> str:
    """The URL if its host is loopback (127.0.0.0/8, ::1 or `localhost`); ValueError otherwise.

    Names other than `localhost` are refused rather than resolved."""
    host = urlsplit(url).hostname
    if host is None:
        raise ValueError(f"{url!r}: no host")
    if host.lower() == "localhost":
        return url
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{url!r}: only loopback targets are allowed (127.0.0.0/8, ::1, "
                         f"localhost), not the name {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"{url!r}: {host} is not a loopback address; only 127.0.0.0/8, ::1 "
                         "and localhost are allowed")
    return url


def http_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("ws"):
        base = "http" + base[2:]
    return base.removesuffix("/v1/stream")


def ws_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[4:]
    return base if base.endswith("/v1/stream") else base + "/v1/stream"


def process_rss_bytes(pid: int) -> int | None:
    """VmRSS of a local process from /proc/<pid>/status, or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None when there is no value)."""
    if not values:
        return None
    data = sorted(values)
    return data[max(0, math.ceil(q / 100 * len(data)) - 1)]


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# -- mixed load ----------------------------------------------------------------------------
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
class Record:
    """One request as the client saw it. Times are time.perf_counter() values."""

    transport: str                  # "ws" | "http"
    model: str
    expected: int                   # samples asked for
    sample_rate: int
    start: float                    # start message / request sent
    end: float = 0.0
    first: float | None = None      # first audio byte
    samples: int = 0                # samples received
    outcome: str = "ok"             # ok | disconnected | cancelled | <error kind>
    request_id: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def error(self) -> bool:
        return self.outcome not in ("ok", "disconnected", "cancelled")

    @property
    def ttfa_ms(self) -> float | None:
        return None if self.first is None else (self.first - self.start) * 1000

    @property
    def rtf(self) -> float | None:
        if not self.ok or not self.samples:
            return None
        return (self.end - self.start) / (self.samples / self.sample_rate)


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


def summarize(records: list[Record], wall_s: float) -> dict:
    """Figures over a set of requests (any subset of a run, e.g. one minute of a soak)."""
    ttfa = [r.ttfa_ms for r in records if r.ttfa_ms is not None]
    rtf = [r.rtf for r in records if r.rtf is not None]
    outcomes = Counter(r.outcome for r in records)
    errors = {k: v for k, v in sorted(outcomes.items()) if k not in ("ok", "disconnected",
                                                                      "cancelled")}
    samples = sum(r.samples for r in records)
    return {
        "requests": len(records), "ok": outcomes.get("ok", 0),
        "disconnected": outcomes.get("disconnected", 0) + outcomes.get("cancelled", 0),
        "errors": sum(errors.values()), "errors_by_kind": errors,
        "ws": sum(r.transport == "ws" for r in records),
        "http": sum(r.transport == "http" for r in records),
        "ttfa_p50_ms": _round(percentile(ttfa, 50)), "ttfa_p95_ms": _round(percentile(ttfa, 95)),
        "ttfa_p99_ms": _round(percentile(ttfa, 99)), "ttfa_max_ms": _round(max(ttfa, default=None)),
        "rtf_p50": _round(percentile(rtf, 50), 3), "rtf_p95": _round(percentile(rtf, 95), 3),
        "rtf_max": _round(max(rtf, default=None), 3),
        "samples": samples, "wall_s": round(wall_s, 2),
        "samples_per_s": round(samples / wall_s) if wall_s > 0 else 0,
    }


@dataclass
class LoadReport:
    config: LoadConfig
    records: list[Record] = field(default_factory=list)
    wall_s: float = 0.0
    live_after: float | None = None
    waiting_after: float | None = None
    rss_before: int | None = None
    rss_after: int | None = None

    def summary(self) -> dict:
        out = {"concurrency": self.config.concurrency, **summarize(self.records, self.wall_s),
               "live_streams_after": self.live_after,
               "waiting_streams_after": self.waiting_after}
        if self.rss_before is not None and self.rss_after is not None:
            out["rss_before_mb"] = round(self.rss_before / 2**20, 1)
            out["rss_after_mb"] = round(self.rss_after / 2**20, 1)
            out["rss_change_pct"] = round(100 * (self.rss_after / self.rss_before - 1), 1)
        failures = [r for r in self.records if r.error][:5]
        if failures:
            out["error_samples"] = [{"outcome": r.outcome, "transport": r.transport,
                                     "request_id": r.request_id, "detail": r.detail}
                                    for r in failures]
        return out


async def fetch_models(client, names: list[str] | None) -> list[ModelSpec]:
    r = await client.get("/v1/models")
    r.raise_for_status()
    ready = {m["name"]: m for m in r.json()["data"] if m["status"] == "ready"}
    if names:
        missing = [n for n in names if n not in ready]
        if missing:
            raise ValueError(f"models not ready on the server: {missing}; ready: {sorted(ready)}")
        chosen = [ready[n] for n in names]
    else:
        chosen = list(ready.values())
    if not chosen:
        raise ValueError("the server has no ready model")
    return [ModelSpec(m["name"], m["sample_rate"], m.get("mel_channels") or 0,
                      m.get("hop_length"), m.get("num_speakers") or 0) for m in chosen]


async def server_gauges(client) -> tuple[float, float]:
    """(live, waiting) streams summed over models, from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    r = await client.get("/metrics")
    live = waiting = 0.0
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == "wavenet_live_streams":
                live += sample.value
            elif sample.name == "wavenet_waiting_streams":
                waiting += sample.value
    return live, waiting


async def wait_settled(client, timeout: float = 10.0) -> tuple[float, float]:
    """Poll the gauges until live and waiting are both 0 (or timeout); returns the last."""
    deadline = time.monotonic() + timeout
    while True:
        live, waiting = await server_gauges(client)
        if (live == 0 and waiting == 0) or time.monotonic() > deadline:
            return live, waiting
        await asyncio.sleep(0.1)


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


async def _bounded(go, plan: Plan, timeout: float, rec: Record) -> None:
    """Run a request to its end, its timeout, or its planned early departure."""
    leave = plan.leave_after is not None and plan.leave_after < timeout
    try:
        await asyncio.wait_for(go(), plan.leave_after if leave else timeout)
    except asyncio.TimeoutError:
        rec.outcome = "disconnected" if leave else "timeout"


async def http_request(client, plan: Plan, timeout: float) -> Record:
    import httpx

    rec = Record("http", plan.model.name, plan.expected, plan.model.sample_rate,
                 time.perf_counter())
    nbytes = 0

    async def go() -> None:
        nonlocal nbytes
        async with client.stream("POST", "/v1/synthesize",
                                 json={**plan.body, "stream": True}) as r:
            rec.request_id = r.headers.get("x-request-id")
            if r.status_code != 200:
                await r.aread()
                try:
                    code = r.json()["error"]["code"]
                except Exception:
                    code = "?"
                rec.outcome, rec.detail = f"http_{r.status_code}_{code}", r.text[:200]
                return
            async for chunk in r.aiter_raw():
                if rec.first is None:
                    rec.first = time.perf_counter()
                nbytes += len(chunk)
                if plan.disconnect_at is not None and nbytes >= plan.disconnect_at:
                    rec.outcome = "disconnected"      # leaving the block closes the connection
                    return
        if nbytes != 2 * plan.expected:
            rec.outcome, rec.detail = "short_audio", f"{nbytes // 2} of {plan.expected}"

    try:
        await _bounded(go, plan, timeout, rec)
    except httpx.RemoteProtocolError as exc:
        rec.outcome, rec.detail = "http_incomplete", str(exc)[:200]
    except (httpx.TransportError, OSError) as exc:
        rec.outcome, rec.detail = f"http_{type(exc).__name__}", str(exc)[:200]
    rec.samples = nbytes // 2
    rec.end = time.perf_counter()
    return rec


async def ws_request(url: str, headers: dict, plan: Plan, timeout: float) -> Record:
    import websockets

    rec = Record("ws", plan.model.name, plan.expected, plan.model.sample_rate,
                 time.perf_counter())
    nbytes, done, error, cancelling, code = 0, None, None, False, None

    async def go() -> None:
        nonlocal nbytes, done, error, cancelling, code
        async with websockets.connect(url, additional_headers=headers or None, proxy=None,
                                      open_timeout=min(timeout, 30), close_timeout=5,
                                      max_size=2**22) as ws:
            rec.start = time.perf_counter()
            await ws.send(json.dumps({"type": "start", **plan.body}))
            try:
                async for message in ws:
                    if isinstance(message, bytes):
                        if rec.first is None:
                            rec.first = time.perf_counter()
                        nbytes += len(message)
                        if (plan.disconnect_at is not None and not cancelling
                                and nbytes >= plan.disconnect_at):
                            if plan.how == "abort":
                                ws.transport.abort()      # vanish: no close handshake
                                rec.outcome = "disconnected"
                                return
                            if plan.how == "close":
                                rec.outcome = "disconnected"
                                await ws.close()
                                return
                            cancelling = True
                            try:
                                await ws.send(json.dumps({"type": "cancel"}))
                            except websockets.ConnectionClosed:
                                pass     # the stream ended first; its "done" is read below
                        continue
                    event = json.loads(message)
                    if event.get("type") == "started":
                        rec.request_id = event.get("request_id")
                    elif event.get("type") == "done":
                        done = event
                    elif event.get("type") == "error":
                        error = event
            except websockets.ConnectionClosedError:
                pass
            code = ws.close_code

    try:
        await _bounded(go, plan, timeout, rec)
    except (websockets.InvalidHandshake, websockets.ConnectionClosed, OSError) as exc:
        rec.outcome, rec.detail = f"ws_{type(exc).__name__}", str(exc)[:200]
    rec.samples = nbytes // 2
    rec.end = time.perf_counter()
    if rec.outcome != "ok":
        return rec
    if error is not None:
        rec.outcome, rec.detail = f"ws_{code}_{error.get('code')}", error.get("message")
    elif done is None:
        rec.outcome = f"ws_{code}_closed_without_done"
    elif cancelling and done.get("status") in ("cancelled", "done"):
        rec.outcome = "cancelled"
    elif done.get("status") != "done":
        rec.outcome = f"ws_done_{done.get('status')}"
    elif nbytes != 2 * plan.expected or done.get("samples") != plan.expected:
        rec.outcome, rec.detail = "short_audio", f"{nbytes // 2} of {plan.expected}"
    return rec


async def run_mixed(cfg: LoadConfig, *, server_pid: int | None = None,
                    warmup_requests: int = 0, settle_s: float = 10.0,
                    on_record=None) -> LoadReport:
    """Run the mixed load described by `cfg`; see the module docstring.

    `warmup_requests` run first (same mix, not recorded) so the RSS baseline is taken on a
    warm server; `on_record(record)` is called as each request ends (for live reporting).
    """
    import httpx

    cfg.validate()
    rng = random.Random(cfg.seed)
    base = http_url(cfg.url)
    limits = httpx.Limits(max_connections=cfg.concurrency + 4,
                          max_keepalive_connections=cfg.concurrency + 4)
    timeout = httpx.Timeout(cfg.timeout, connect=min(cfg.timeout, 30))
    report = LoadReport(cfg)
    async with httpx.AsyncClient(base_url=base, headers=cfg.headers, limits=limits,
                                 timeout=timeout, trust_env=False) as client:
        models = await fetch_models(client, cfg.models)
        ws = ws_url(base)

        async def one(plan: Plan) -> Record:
            if plan.transport == "http":
                return await http_request(client, plan, cfg.timeout)
            return await ws_request(ws, cfg.headers, plan, cfg.timeout)

        if warmup_requests:
            warm = LoadConfig(**{**cfg.__dict__, "requests": warmup_requests, "duration": None})
            await _drive(warm, models, rng, one, lambda rec: None)
            await wait_settled(client, settle_s)
        if server_pid is not None:
            report.rss_before = process_rss_bytes(server_pid)

        def record(rec: Record) -> None:
            report.records.append(rec)
            if on_record is not None:
                on_record(rec)

        t0 = time.perf_counter()
        await _drive(cfg, models, rng, one, record)
        report.wall_s = time.perf_counter() - t0
        report.live_after, report.waiting_after = await wait_settled(client, settle_s)
        if server_pid is not None:
            report.rss_after = process_rss_bytes(server_pid)
    return report


async def _drive(cfg: LoadConfig, models, rng: random.Random, one, record) -> None:
    """`cfg.concurrency` closed-loop clients until the count or the deadline is reached."""
    limit = cfg.requests if cfg.requests is not None else MAX_REQUESTS
    deadline = time.perf_counter() + (cfg.duration if cfg.duration is not None
                                      else MAX_DURATION_S)
    issued = 0

    async def client_loop() -> None:
        nonlocal issued
        while issued < limit and time.perf_counter() < deadline:
            issued += 1
            record(await one(make_plan(cfg, models, rng)))

    tasks = [asyncio.create_task(client_loop()) for _ in range(cfg.concurrency)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)


def format_report(summary: dict) -> str:
    """A few readable lines from `LoadReport.summary()`."""
    s = summary
    errors = ", ".join(f"{k}={v}" for k, v in s["errors_by_kind"].items()) or "none"
    lines = [
        f"clients {s['concurrency']}: {s['requests']} requests ({s['ws']} ws, {s['http']} http) "
        f"in {s['wall_s']} s: {s['ok']} ok, {s['disconnected']} left on purpose, "
        f"{s['errors']} errors",
        f"  time to first audio ms: p50 {s['ttfa_p50_ms']}  p95 {s['ttfa_p95_ms']}  "
        f"p99 {s['ttfa_p99_ms']}  max {s['ttfa_max_ms']}",
        f"  real-time factor: p50 {s['rtf_p50']}  p95 {s['rtf_p95']}  max {s['rtf_max']}   "
        f"aggregate {s['samples_per_s']} samples/s ({s['samples']} samples)",
        f"  errors by kind: {errors}",
        f"  after: live streams {s['live_streams_after']}, waiting "
        f"{s['waiting_streams_after']}",
    ]
    if "rss_before_mb" in s:
        lines[-1] += (f"; server RSS {s['rss_before_mb']} MB -> {s['rss_after_mb']} MB "
                      f"({s['rss_change_pct']:+.1f}%)")
    for sample in s.get("error_samples", []):
        lines.append(f"  e.g. {sample}")
    return "\n".join(lines)


# -- rounds of WebSocket streams (benchmarks/load_ws.py) ------------------------------------
@dataclass
class LoadResult:
    concurrency: int
    requests: int = 0
    failures: int = 0
    ttfa_ms: list[float] = field(default_factory=list)
    samples: int = 0
    wall_s: float = 0.0

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.wall_s if self.wall_s else 0.0

    def merge(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.ttfa_ms += other.ttfa_ms
        self.samples += other.samples
        self.wall_s += other.wall_s

    def percentile(self, q: float) -> float:
        value = percentile(self.ttfa_ms, q)
        return float("nan") if value is None else value

    def summary(self) -> dict:
        return {"concurrency": self.concurrency, "requests": self.requests,
                "failures": self.failures, "ttfa_p50_ms": round(self.percentile(50), 1),
                "ttfa_p99_ms": round(self.percentile(99), 1),
                "samples_per_s": round(self.samples_per_s)}


async def one_stream(url: str, start: dict, headers: dict | None = None) -> dict:
    import websockets

    async with websockets.connect(url, additional_headers=headers, max_size=None,
                                  proxy=None) as ws:
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "start", **start}))
        first, nbytes, done = None, 0, None
        async for message in ws:
            if isinstance(message, bytes):
                if first is None:
                    first = time.perf_counter()
                nbytes += len(message)
            else:
                event = json.loads(message)
                if event["type"] in ("done", "error"):
                    done = event
        return {"t0": t0, "first": first, "end": time.perf_counter(), "samples": nbytes // 2,
                "ok": bool(done and done.get("type") == "done" and done["status"] == "done")}


async def run_load(url: str, concurrency: int, start: dict, min_requests: int = 20,
                   headers: dict | None = None, first_seed: int = 0) -> LoadResult:
    check_loopback(url)
    result = LoadResult(concurrency)
    rounds = max(1, math.ceil(min_requests / concurrency))
    for r in range(rounds):
        seed = first_seed + r * concurrency
        streams = [one_stream(url, {**start, "seed": seed + i}, headers)
                   for i in range(concurrency)]
        outs = await asyncio.gather(*streams, return_exceptions=True)
        good = [o for o in outs if isinstance(o, dict) and o["ok"]]
        result.requests += len(outs)
        result.failures += len(outs) - len(good)
        if good:
            result.wall_s += max(o["end"] for o in good) - min(o["t0"] for o in good)
            result.samples += sum(o["samples"] for o in good)
            result.ttfa_ms += [(o["first"] - o["t0"]) * 1000 for o in good if o["first"]]
    return result
