"""Mel streamed in at real-time pace: how soon after frame f+1 arrives the audio of frame f
leaves the server, with N streams at once.

    .venv/bin/python benchmarks/mel_stream.py [-c 1 16] [--seconds 3] [--frame-ms 16]
        [--checkpoint PATH | --residual 32 --skip 64] [--backend cpu]

Each client opens WS /v1/stream with `"mel_stream": true` and sends one binary frame every
`--frame-ms` (16 ms = one 256-sample hop at 16 kHz: real time). Samples f*hop .. (f+1)*hop-1
read frames f and f+1, so the audio "depending on frame f" is complete once the client holds
(f+1)*hop samples; its latency is that moment minus the moment frame f+1 was sent (for the
last frame: minus the moment `end` was sent). Loopback, client and server on this machine.
Targets: p50 <= 30 ms, p99 <= 100 ms at 16 streams. The server keeps up only where it makes
N x 16,000 samples/s; without --checkpoint the model is a random vocoder with the bundled
one's layout (2 x 9 layers, 80 mels, hop 256) and --residual/--skip channels.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.server import Server  # noqa: E402


def make_vocoder(folder: Path, residual: int, skip: int) -> Path:
    import torch

    from wavenet_core import MelConfig, WaveNet, WaveNetConfig, save_checkpoint

    torch.manual_seed(0)
    config = WaveNetConfig(stacks=2, layers_per_stack=9, residual_channels=residual,
                           skip_channels=skip, mel_channels=80, mel=MelConfig())
    path = folder / f"vocoder_r{residual}_s{skip}.safetensors"
    save_checkpoint(path, WaveNet(config))
    return path


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


async def one_stream(url: str, frames, frame_s: float, hop: int) -> list[float]:
    """One paced stream -> latency (s) per frame."""
    import websockets

    sent: list[float] = []
    got: list[tuple[float, int]] = []          # (arrival time, samples held then)
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "mel_stream": True, "format": "pcm",
                                  "seed": 1}))
        assert json.loads(await ws.recv())["type"] == "started"

        async def read():
            held = 0
            async for message in ws:
                if isinstance(message, bytes):
                    held += len(message) // 2
                    got.append((time.perf_counter(), held))
                elif json.loads(message)["type"] != "done":
                    raise RuntimeError(message)

        reader = asyncio.create_task(read())
        t0 = time.perf_counter()
        for f, frame in enumerate(frames):
            await asyncio.sleep(max(0.0, t0 + f * frame_s - time.perf_counter()))
            sent.append(time.perf_counter())
            await ws.send(frame)
        await asyncio.sleep(max(0.0, t0 + len(frames) * frame_s - time.perf_counter()))
        sent.append(time.perf_counter())          # `end` stands in for frame F
        await ws.send(json.dumps({"type": "end"}))
        await reader
    latencies, i = [], 0
    for f in range(len(frames)):
        need = (f + 1) * hop
        while got[i][1] < need:
            i += 1
        latencies.append(got[i][0] - sent[f + 1])
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(url: str, streams: int, seconds: float, frame_s: float) -> list[float]:
    import numpy as np

    hop, count = 256, round(seconds * 16000 / 256)
    rng = np.random.default_rng(0)
    mels = [rng.normal(-5, 2, (count, 80)).astype("<f4") for _ in range(streams)]
    results = await asyncio.gather(*(
        one_stream(url, [row.tobytes() for row in mel], frame_s, hop) for mel in mels))
    return [x for r in results for x in r]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 16])
    p.add_argument("--seconds", type=float, default=3.0, help="audio per stream")
    p.add_argument("--frame-ms", type=float, default=16.0)
    p.add_argument("--checkpoint", type=Path, help="a mel vocoder (80 mels, hop 256)")
    p.add_argument("--residual", type=int, default=32)
    p.add_argument("--skip", type=int, default=64)
    p.add_argument("--backend", default="cpu")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or make_vocoder(Path(tmp), args.residual, args.skip)
        srv = Server(ckpt, {"WAVENET_BACKEND": args.backend, "WAVENET_LOG_LEVEL": "warning",
                            "WAVENET_MAX_STREAMS": str(max(args.concurrency)),
                            "WAVENET_WARMUP_SAMPLES": "2048"}, Path(tmp) / "server.log")
        try:
            srv.wait_ready(timeout=600)
            print(f"{cpu_model()}; model {ckpt.name}, backend {args.backend}; one frame "
                  f"every {args.frame_ms:g} ms, {args.seconds:g} s per stream")
            print(f"{'streams':>7} {'frames':>7} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}"
                  f"  target p50<=30ms p99<=100ms")
            for n in args.concurrency:
                lat = asyncio.run(run(srv.ws_url, n, args.seconds, args.frame_ms / 1000))
                ms = [1000 * x for x in lat]
                p50, p99 = percentile(ms, 50), percentile(ms, 99)
                ok = "met" if p50 <= 30 and p99 <= 100 else "MISSED"
                print(f"{n:>7} {len(ms):>7} {p50:>6.1f}ms {percentile(ms, 90):>6.1f}ms "
                      f"{p99:>6.1f}ms {max(ms):>6.1f}ms  {ok}")
        finally:
            srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
