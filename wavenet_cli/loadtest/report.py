"""What a mixed load measured: a `Record` per request, and the figures over them (time to
first audio p50/p95/p99, real-time factor, aggregate samples/s, outcomes and errors by
kind), with the server's state afterwards, as a dict and as readable lines.

Real-time factor is wall time over audio duration for a request that completed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from wavenet_cli.loadtest.plan import LoadConfig


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None when there is no value)."""
    if not values:
        return None
    data = sorted(values)
    return data[max(0, math.ceil(q / 100 * len(data)) - 1)]


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


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
