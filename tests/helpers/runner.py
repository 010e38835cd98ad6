"""Driving a `server.engine.runner.Runner` directly, chunk by chunk, as the engine loop does."""

from __future__ import annotations

from server.engine.scheduler import Plan


def run_in_chunks(runner, streams: list, chunks) -> list[list]:
    """Open `streams` and step them by `chunks` samples at a time -> each chunk's outputs
    (one per stream, as `execute_sync` returns them); closes the runner."""
    out = []
    plan = Plan(open=streams, running=streams, chunk_samples=chunks[0])
    for k in chunks:
        plan.chunk_samples = k
        out.append(runner.execute_sync(plan))
        for s in streams:
            s.produced += k
        plan = Plan(running=streams, chunk_samples=k)
    runner.close()
    return out
