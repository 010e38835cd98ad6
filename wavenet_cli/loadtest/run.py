"""The mixed-load run: `run_mixed(LoadConfig)`.

N concurrent clients, each running requests back to back (closed loop) until a request
count or a duration is reached, whichever comes first; each request is drawn by
`wavenet_cli.loadtest.plan.make_plan` and run by `wavenet_cli.loadtest.clients`. After the run it
waits for the server's live and waiting stream gauges to reach 0 and reports them, with the
server's RSS (before and after) when its pid is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

from wavenet_cli.loadtest.clients import http_request, ws_request
from wavenet_cli.loadtest.plan import (
    MAX_DURATION_S,
    MAX_REQUESTS,
    LoadConfig,
    ModelSpec,
    Plan,
    make_plan,
)
from wavenet_cli.loadtest.report import LoadReport, Record
from wavenet_cli.loadtest.target import http_url, process_rss_bytes, ws_url


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
