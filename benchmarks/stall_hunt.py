"""Hunting the server's intermittent kernel stalls (issue 32): many short mel-stream rounds
on one server, each row the round's cost inside the kernel calls per audio second and, per
server thread that ran in the round, its user and system CPU, minor/major page faults and
voluntary/involuntary context switches (from /proc/PID/task/TID).

    .venv/bin/python benchmarks/stall_hunt.py [--rounds 30] [--seconds 3] [-c 16]
        [--residual 8 --skip 16 | --checkpoint PATH] [--stall 0.1]
        [--servers 1] [--fresh-cache] [--tree /work/main]

A round whose kernel cost per audio second exceeds `--stall` is marked STALL; the last line
counts them, with the CPU model. Rounds start right after each other on the same server
(a fresh server's first round included), as in benchmarks/mel_stream.py. `--servers K`
starts K servers one after the other, `--rounds` each; `--fresh-cache` gives each an empty
numba cache (NUMBA_CACHE_DIR), as the first server after an edit to the kernel's sources
has (cpu/cache.py); `--tree` runs the server from another source tree, for a before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.mel_stream import (  # noqa: E402
    make_vocoder,
    percentile,
    run,
    server_precision,
    step_stats,
    stream_mels,
)
from tests.helpers.server import Server  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> dict[int, dict]:
    """Per thread of `pid`: name, utime and stime (s), minflt, majflt, voluntary and
    involuntary context switches."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        f = stat.rsplit(")", 1)[1].split()
        sw = {k: int(v) for k, v in (line.split(":") for line in status.splitlines()
                                      if line.endswith(tuple("0123456789"))
                                      and "ctxt_switches" in line)}
        out[int(task.name)] = dict(name=name, utime=int(f[11]) / TICK, stime=int(f[12]) / TICK,
                                   minflt=int(f[7]), majflt=int(f[9]),
                                   vol=sw.get("voluntary_ctxt_switches", 0),
                                   invol=sw.get("nonvoluntary_ctxt_switches", 0))
    return out


def diff(before: dict, after: dict) -> list[tuple[str, dict]]:
    rows = []
    for tid, a in after.items():
        b = before.get(tid, dict.fromkeys(a, 0) | {"name": a["name"]})
        d = {k: a[k] - b[k] for k in a if k != "name"}
        if d["utime"] + d["stime"] >= 0.05:
            rows.append((f"{a['name']}/{tid}", d))
    return rows


def one_round(srv: Server, config, args, r: int) -> bool:
    """One round of `args.concurrency` paced streams; prints its row and each busy server
    thread's; True if it stalled."""
    n = args.concurrency
    mels = stream_mels(config, n, args.seconds)
    t0, s0, th0 = time.perf_counter(), step_stats(srv.url), threads(srv.proc.pid)
    lat = asyncio.run(run(srv.ws_url, mels, 0.016, config.mel.hop_length))
    wall, s1, th1 = time.perf_counter() - t0, step_stats(srv.url), threads(srv.proc.pid)
    steps, _, _, kernel = (b - a for a, b in zip(s0, s1))
    cost = kernel / (n * args.seconds)
    stall = cost > args.stall
    ms = [1000 * x for x in lat]
    print(f"round {r:>3} kernel {cost:.4f} p99 {percentile(ms, 99):8.1f} "
          f"max {max(ms):8.1f} wall {wall:5.1f} steps/s {steps / wall:6.1f} "
          f"load {os.getloadavg()[0]:.2f}{'  STALL' if stall else ''}", flush=True)
    for name, d in diff(th0, th1):
        print(f"    {name:<24} user {d['utime']:6.2f} sys {d['stime']:5.2f} "
              f"minflt {d['minflt']:>7} majflt {d['majflt']:>4} "
              f"vcsw {d['vol']:>6} ivcsw {d['invol']:>6}", flush=True)
    return stall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", "--concurrency", type=int, default=16)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--residual", type=int, default=8)
    p.add_argument("--skip", type=int, default=16)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--servers", type=int, default=1)
    p.add_argument("--fresh-cache", action="store_true")
    p.add_argument("--tree", type=Path, default=ROOT)
    p.add_argument("--stall", type=float, default=0.1,
                   help="kernel CPU-s per audio second above which a round is a stall")
    args = p.parse_args()
    from wavenet_core.model.checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or make_vocoder(Path(tmp), args.residual, args.skip)
        config = load_checkpoint(ckpt).config
        stalls = rounds = 0
        for k in range(args.servers):
            env = {"WAVENET_BACKEND": args.backend, "WAVENET_LOG_LEVEL": "info",
                   "WAVENET_MAX_STREAMS": str(args.concurrency),
                   "WAVENET_WARMUP_SAMPLES": "2048"}
            if args.fresh_cache:
                env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(dir=tmp)
            log = Path(tmp) / f"server-{k}.log"
            srv = Server(ckpt, env, log, root=args.tree)
            try:
                srv.wait_ready(timeout=600)
                print(f"{cpu_model()}; server {k} from {args.tree}; model {ckpt.name}; "
                      f"{args.concurrency} streams x {args.seconds:g} s; precision "
                      f"{server_precision(srv.url)}; fresh numba cache: {args.fresh_cache}",
                      flush=True)
                for r in range(args.rounds):
                    stalls += one_round(srv, config, args, r)
                    rounds += 1
            finally:
                srv.stop()
        print(f"{cpu_model()}: {stalls} of {rounds} rounds stalled (kernel > {args.stall} "
              f"CPU-s per audio s), {args.servers} server(s) from {args.tree}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
