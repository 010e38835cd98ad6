"""Through the server vs the engine alone: N concurrent WebSocket streams, config B.

    .venv/bin/python benchmarks/load_ws.py [-c 1 16] [--seconds 0.5] [--requests 20]
        [--formats pcm mp3 ...] [--backend auto] [--device auto] [--checkpoint PATH]
        [--url URL]

Without --url it saves a random config-B checkpoint (or uses --checkpoint), starts
`wavenet serve` on a free loopback port and load-tests it (wavenet_cli/loadtest/rounds.py: time to
first audio from sending "start" to the first binary frame; aggregate samples/s over
each round's wall time). Then it times the engine alone in this process at the same
concurrency (make_backend + generate on N slots, same samples per stream, 4096-step
calls) after every server round, and prints the median of the per-round ratios.
With several --formats each round runs once per format, one after the other, so the
formats meet the same machine; the table then compares them side by side (time to first
audio is to the first byte of the format: an encoder's held-back frame counts).
Targets: TTFA p50 <= 50 ms at 1 stream, p99 <= 250 ms at 16; server >= 90% of the
engine alone; mp3 and opus TTFA within 20 ms of wav's, and their ratio at 16 streams
within 5% of pcm's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engine_alone import EngineAlone  # noqa: E402
from tests.helpers.server import free_port  # noqa: E402
from wavenet_cli.loadtest import LoadResult, run_load, ws_url  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402


def make_checkpoint(folder: Path) -> Path:
    import torch

    from wavenet_core import CONFIG_B, WaveNet, save_checkpoint

    torch.manual_seed(0)
    path = folder / "config_b.safetensors"
    save_checkpoint(path, WaveNet(CONFIG_B))
    return path


def start_server(checkpoint: Path, args, max_streams: int):
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WAVENET_MAX_STREAMS": str(max_streams),
           "WAVENET_LOG_LEVEL": "warning",
           # every client here is one address: capacity, not per-client fairness, is measured
           "WAVENET_MAX_STREAMS_PER_CLIENT": str(max_streams)}
    cmd = [sys.executable, "-m", "wavenet_cli.main", "serve", "--port", str(port), "--model",
           str(checkpoint), "--backend", args.backend, "--device", args.device]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                info = httpx.get(url + "/v1/models").json()["data"][0]
                return proc, url, info
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


def median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=0.5, help="audio per request")
    parser.add_argument("--requests", type=int, default=20, help="min requests per level")
    parser.add_argument("--formats", nargs="+", default=["pcm"],
                        help="output formats to compare (server/wire/encoding.py)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint", type=Path, help="default: random config B")
    parser.add_argument("--url", help="load-test this running server instead (no ratio)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, engine = None, None
        if args.url:
            url, info = args.url, {}
        else:
            checkpoint = args.checkpoint or make_checkpoint(Path(tmp))
            proc, url, info = start_server(checkpoint, args, max(args.concurrency))
            engine = EngineAlone(checkpoint, args.backend, args.device)
        try:
            per_stream = round(args.seconds * info.get("sample_rate", 16000))
            for n in args.concurrency:
                # a server round per format, then the engine alone on the same work,
                # alternating, so that other load on the machine hits every side alike
                totals = {f: LoadResult(n) for f in args.formats}
                ratios = {f: [] for f in args.formats}
                engine_rates = []
                for r in range(max(1, math.ceil(args.requests / n))):
                    for fmt in args.formats:
                        start = {"seconds": args.seconds, "format": fmt}
                        one = asyncio.run(run_load(ws_url(url), n, start, n, first_seed=r * n))
                        totals[fmt].merge(one)
                        if engine is not None and one.wall_s:
                            engine_rates.append(engine.samples_per_s(n, per_stream))
                            ratios[fmt].append(one.samples_per_s / engine_rates[-1])
                for fmt in args.formats:
                    row = {"format": fmt, **totals[fmt].summary()}
                    if ratios[fmt]:
                        row["engine_alone_samples_per_s"] = round(median(engine_rates))
                        row["server_over_engine"] = round(median(ratios[fmt]), 3)
                    rows.append(row)
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    print(f"backend={info.get('backend')} device={info.get('device')} "
          f"seconds/request={args.seconds} cpu={cpu_model()}")
    header = (f"{'format':>6} {'streams':>7} {'reqs':>5} {'fail':>4} {'ttfa p50':>9} "
              f"{'ttfa p99':>9} {'server/s':>10} {'engine/s':>10} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['format']:>6} {r['concurrency']:>7} {r['requests']:>5} {r['failures']:>4} "
              f"{r['ttfa_p50_ms']:>7.1f}ms {r['ttfa_p99_ms']:>7.1f}ms {r['samples_per_s']:>10} "
              f"{r.get('engine_alone_samples_per_s', '-'):>10} "
              f"{r.get('server_over_engine', '-'):>6}")
    if args.json:
        args.json.write_text(json.dumps({"backend": info.get("backend"), "rows": rows},
                                        indent=2))


if __name__ == "__main__":
    main()
