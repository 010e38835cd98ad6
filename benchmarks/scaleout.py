"""Ray Serve (2 replicas, 1 thread each) vs the single-process server, side by side.

    .venv/bin/python benchmarks/scaleout.py [--checkpoint models/babble.safetensors]
        [-c 1 16] [--seconds 1] [--requests 64] [--replicas 2]

Runs the single-process `wavenet serve`, then `wavenet serve --ray --replicas N` (a local
Ray cluster of its own), then the single-process server again, each on a free loopback
port, with the same WebSocket load (server/load/rounds.py: rounds of N concurrent
streams; TTFA from "start" to the first binary frame; aggregate samples/s over each
round's wall time). Prints both, the ratio Ray / single (against the mean of the two
single runs), and memory: PSS summed over each server's process tree (the CLI, and for
Ray its GCS, raylet, controller, proxy, replicas and helpers), so shared pages count once.
Targets (issue 15): aggregate at 16 streams >= 0.85 x single; TTFA p50 at 1 stream
<= 60 ms through Ray.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.server import free_port  # noqa: E402
from wavenet_cli.loadtest import run_load  # noqa: E402


def tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/*/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def pss_by_process(pid: int) -> dict[str, float]:
    """MB of PSS per process name over the tree."""
    sizes: dict[str, float] = defaultdict(float)
    for p in tree(pid):
        try:
            name = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode()
            name = Path(name).name or "?"
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "ray::" in cmd or name.startswith("ray::"):
                name = cmd.split()[0]
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    sizes[name] += int(line.split()[1]) / 1024
        except (OSError, ValueError):
            pass
    return dict(sizes)


class ServerUnderTest:
    def __init__(self, checkpoint: Path, ray_replicas: int | None):
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "wavenet_cli.main", "serve", "--port", str(self.port),
               "--model", str(checkpoint)]
        if ray_replicas:
            cmd += ["--ray", "--replicas", str(ray_replicas), "--replica-cpus", "1"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "WAVENET_LOG_LEVEL": "warning",
               "WAVENET_MAX_STREAMS_PER_CLIENT": "1024",   # one loopback client: capacity
               "RAY_USAGE_STATS_ENABLED": "0"}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        t0, deadline = time.monotonic(), time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{cmd} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    self.startup_s = time.monotonic() - t0
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError("server not ready")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def measure(label: str, checkpoint: Path, args, replicas: int | None) -> dict:
    srv = ServerUnderTest(checkpoint, replicas)
    try:
        start = {"seconds": args.seconds, "format": "pcm"}
        asyncio.run(run_load(srv.url.replace("http", "ws") + "/v1/stream", 4, start, 8))
        out = {"label": label, "startup_s": srv.startup_s}
        for n in args.concurrency:
            result = asyncio.run(run_load(srv.url.replace("http", "ws") + "/v1/stream", n,
                                          start, args.requests))
            out[n] = result.summary()
        out["pss"] = pss_by_process(srv.proc.pid)
    finally:
        srv.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "models" / "babble.safetensors")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()

    runs = [measure("single", args.checkpoint, args, None),
            measure(f"ray x{args.replicas}", args.checkpoint, args, args.replicas),
            measure("single", args.checkpoint, args, None)]
    print(f"{'server':10} {'streams':>7} {'reqs':>5} {'fail':>4} {'ttfa p50':>9} "
          f"{'ttfa p99':>9} {'samples/s':>10}")
    for run in runs:
        for n in args.concurrency:
            s = run[n]
            print(f"{run['label']:10} {n:7d} {s['requests']:5d} {s['failures']:4d} "
                  f"{s['ttfa_p50_ms']:7.1f}ms {s['ttfa_p99_ms']:7.1f}ms "
                  f"{s['samples_per_s']:10d}")
    single, ray = [runs[0], runs[2]], runs[1]
    for n in args.concurrency:
        base = sum(r[n]["samples_per_s"] for r in single) / 2
        print(f"{n} streams: ray / single aggregate = {ray[n]['samples_per_s'] / base:.3f}; "
              f"ttfa p50 ray {ray[n]['ttfa_p50_ms']} ms vs single "
              f"{', '.join(str(r[n]['ttfa_p50_ms']) for r in single)} ms")
    for run in runs:
        total = sum(run["pss"].values())
        top = sorted(run["pss"].items(), key=lambda kv: -kv[1])
        print(f"{run['label']}: startup {run['startup_s']:.1f} s, PSS {total:.0f} MB: "
              + ", ".join(f"{name} {mb:.0f}" for name, mb in top[:8]))


if __name__ == "__main__":
    main()
