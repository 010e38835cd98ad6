"""Driving a `server.engine.runner.Runner` directly, chunk by chunk, as the engine loop does."""

from __future__ import annotations

from server.engine.scheduler import Plan


def run_in_chunks(runner, streams: list, chunks) -> list[list]:
    """Open `streams` and step them by `chunks` samples at a time -> each chunk's outputs
    (one per stream, as `execute_sync` returns them); closes the runner."""
    out = []
    plan = Plan(open=streams, step=streams, num_steps=chunks[0])
    for k in chunks:
        plan.num_steps = k
        out.append(runner.execute_sync(plan))
        for s in streams:
            s.produced += k
        plan = Plan(step=streams, num_steps=k)
    runner.close()
    return out
