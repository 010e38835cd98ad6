"""Rounds of N WebSocket streams started together: `run_load(url, concurrency, start,
min_requests)` (benchmarks/load_ws.py compares these with the engine alone).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field

from wavenet_cli.loadtest.report import percentile
from wavenet_cli.loadtest.target import check_loopback


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
        # samples as the server counts them (an encoded format's bytes are not 2 a sample)
        samples = done.get("samples", nbytes // 2) if done else nbytes // 2
        return {"t0": t0, "first": first, "end": time.perf_counter(), "samples": samples,
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
