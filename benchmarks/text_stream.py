"""Text streamed in as a language model writes it: from the piece that completes the first
sentence to that sentence's first audio, with N streams at once.

    .venv/bin/python benchmarks/text_stream.py [-c 1 4 8] [--rounds 10]
        [--checkpoint PATH] [--backend cpu] [--format pcm]

Each client opens WS /v1/stream with `"text_stream": true`, sends the first half of a
sentence, waits 200 ms (a model still writing), then the piece that completes it (with the
space after its full stop: a sentence ends where the next text starts), and times that
send to the first binary message; then it cancels. N clients at once, `--rounds` times
(after one unmeasured round). The time holds the synthesizer's render (espeak-ng in its
own process), the mel analysis, admission and the engine's first step. Loopback, client
and server on this machine. Target: p50 <= 150 ms at 4 streams on two cores. Default
model: the bundled vocoder.
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

from benchmarks.mel_stream import percentile  # noqa: E402
from tests.helpers.server import Server  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402

HEAD, TAIL = "Hello there, this is stream", " number {n} speaking. "


async def one_stream(url: str, n: int, fmt: str) -> float:
    """One text stream -> seconds from the completing piece to the first audio."""
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "text_stream": True, "format": fmt}))
        assert json.loads(await ws.recv())["type"] == "started"
        await ws.send(json.dumps({"type": "text", "text": HEAD}))
        await asyncio.sleep(0.2)
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "text", "text": TAIL.format(n=n)}))
        async for message in ws:
            if isinstance(message, bytes):
                latency = time.perf_counter() - sent
                break
            if json.loads(message)["type"] == "error":
                raise RuntimeError(message)
        await ws.send(json.dumps({"type": "cancel"}))
        async for _ in ws:
            pass
    return latency


async def rounds(url: str, streams: int, count: int, fmt: str) -> list[float]:
    out: list[float] = []
    for r in range(count + 1):
        got = await asyncio.gather(*(one_stream(url, i, fmt) for i in range(streams)))
        if r:                                   # round 0 warms the worker threads up
            out += got
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--checkpoint", type=Path, default=ROOT / "models" / "vocoder.safetensors")
    p.add_argument("--backend", default="cpu")
    p.add_argument("--format", default="pcm")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(args.checkpoint, {"WAVENET_BACKEND": args.backend,
                                       "WAVENET_LOG_LEVEL": "warning",
                                       "WAVENET_MAX_STREAMS": str(max(args.concurrency))},
                     Path(tmp) / "server.log")
        try:
            srv.wait_ready(timeout=600)
            print(f"{cpu_model()}; model {args.checkpoint.name}, backend {args.backend}, "
                  f"format {args.format}; {args.rounds} rounds")
            print(f"{'streams':>7} {'n':>4} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}"
                  "  target p50<=150ms")
            for n in args.concurrency:
                ms = [1000 * x for x in asyncio.run(rounds(srv.ws_url, n, args.rounds,
                                                           args.format))]
                p50 = percentile(ms, 50)
                print(f"{n:>7} {len(ms):>4} {p50:>6.1f}ms {percentile(ms, 90):>6.1f}ms "
                      f"{percentile(ms, 99):>6.1f}ms {max(ms):>6.1f}ms  "
                      f"{'met' if p50 <= 150 else 'MISSED'}")
        finally:
            srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
