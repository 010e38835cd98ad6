"""Issue 27's attacks against a live server while 8 well-behaved streams play.

    .venv/bin/python benchmarks/abuse.py [--seconds 20] [--backend cpu]

Starts `wavenet serve` (tests/helpers/server.py: the tiny mel model, 16 slots, a key per
client) and runs it twice for `--seconds`: quiet (the 8 players alone) and attacked (every
attack at once, from at most 16 connections: a 1 MHz WAV, `seconds: 1e308`, a lone-surrogate
WebSocket key, keyless 5 MB uploads, mel trickled one frame per second, 600-character CJK
text, a flood of long requests from one key, WebSockets from another origin). Each player
repeats: a 2 s mel over the WebSocket, played from its first audio at real time; an underrun
is a moment the audio due has not arrived. Prints the players' TTFA p50/p99 and underruns
side by side, the server's memory (peak over baseline), and any 5xx the attacks got.
Targets: TTFA p99 within 2x of quiet, no underrun, memory within 200 MB, no 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import platform
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import websockets  # noqa: E402

from tests.helpers.server import MEL, Server, make_checkpoints  # noqa: E402
from wavenet_cli.loadtest import process_rss_bytes  # noqa: E402

PLAYERS = 8
KEYS = [f"player-{i}" for i in range(PLAYERS)] + ["attacker"]
RATE, HOP = 16000, MEL["hop_length"]
MEL_2S = np.zeros((2 * RATE // HOP, MEL["n_mels"]), np.float32).tolist()


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def player(url: str, key: str, stop: float, out: dict) -> None:
    """Repeat 2 s mel requests; record TTFA and underruns (audio due but not arrived)."""
    while time.monotonic() < stop:
        async with websockets.connect(url, additional_headers=auth(key), max_size=None) as ws:
            sent = time.monotonic()
            await ws.send(json.dumps({"type": "start", "model": "mel", "mel": MEL_2S}))
            first, got, underrun = None, 0, False
            async for message in ws:
                if not isinstance(message, bytes):
                    continue
                now = time.monotonic()
                if first is None:
                    first = now
                    out["ttfa"].append(now - sent)
                elif (now - first) * RATE > got + 0.05 * RATE:      # 50 ms of playback slack
                    underrun = True
                got += len(message) // 2
            out["underruns"] += underrun
            out["streams"] += 1


def tiny_wav(rate: int, samples: int) -> str:
    data = bytes(2 * samples)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, (2 * rate) & 0xFFFFFFFF, 2, 16)
    raw = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16)
           + fmt + b"data" + struct.pack("<I", len(data)) + data)
    return base64.b64encode(raw).decode()


async def http_loop(base: str, stop: float, statuses: Counter, make) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while time.monotonic() < stop:
            try:
                r = await make(client)
                statuses[r.status_code] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1


async def ws_loop(url: str, stop: float, statuses: Counter, first: str, trickle: bool = False,
                  headers: dict | None = None, origin: str | None = None) -> None:
    while time.monotonic() < stop:
        try:
            async with websockets.connect(url, additional_headers=headers,
                                          origin=origin) as ws:
                await ws.send(first)
                if trickle:
                    frame = np.zeros((1, MEL["n_mels"]), "<f4").tobytes()
                    while time.monotonic() < stop:
                        await ws.send(frame)
                        await asyncio.sleep(1.0)
                async for _ in ws:
                    pass
            statuses[f"ws{ws.close_code}"] += 1
        except websockets.InvalidStatus as exc:
            statuses[exc.response.status_code] += 1
        except websockets.ConnectionClosed as exc:
            statuses[f"ws{exc.rcvd.code if exc.rcvd else 1006}"] += 1


def attacks(srv: Server, stop: float, statuses: Counter) -> list:
    """16 connections: each loop is one."""
    bad = auth("attacker")
    keyless = b'{"model": "mel", "text": "' + b"a" * (5 << 20) + b'"}'
    post = lambda body, headers=bad: (  # noqa: E731
        lambda c: c.post("/v1/synthesize", json=body, headers=headers))
    start = lambda **f: json.dumps({"type": "start", **f})  # noqa: E731
    return [
        http_loop(srv.url, stop, statuses, post({"model": "mel",
                                                 "audio": tiny_wav(1_000_003, 100)})),
        http_loop(srv.url, stop, statuses, post({"model": "plain", "seconds": 1e308})),
        http_loop(srv.url, stop, statuses, post({"model": "mel", "text": "中文" * 300})),
        *[http_loop(srv.url, stop, statuses, lambda c: c.post(
            "/v1/synthesize", content=keyless, headers={"Content-Type": "application/json"}))
          for _ in range(4)],
        *[http_loop(srv.url, stop, statuses, post({"model": "plain", "seconds": 30}))
          for _ in range(4)],
        ws_loop(srv.ws_url, stop, statuses, start(model="plain", num_samples=64,
                                                  api_key="\ud800")),
        *[ws_loop(srv.ws_url, stop, statuses, start(model="mel", mel_stream=True,
                                                    api_key="attacker"), trickle=True)
          for _ in range(3)],
        ws_loop(srv.ws_url, stop, statuses, start(model="plain", num_samples=64),
                headers=auth("player-0"), origin="http://evil.example"),
    ]


def attack_process(url: str, ws_url: str, seconds: float, queue) -> None:
    """The attackers, in a process of their own: their client-side work (5 MB bodies, JSON)
    must not slow the players' event loop, only the server's."""
    statuses: Counter = Counter()
    srv = argparse.Namespace(url=url, ws_url=ws_url)

    async def go():
        await asyncio.gather(*attacks(srv, time.monotonic() + seconds, statuses))

    asyncio.run(go())
    queue.put(dict(statuses))


async def run(srv: Server, seconds: float, attacked: bool) -> dict:
    import multiprocessing

    out = {"ttfa": [], "underruns": 0, "streams": 0}
    statuses: Counter = Counter()
    queue = multiprocessing.get_context("spawn").Queue()
    attackers = multiprocessing.get_context("spawn").Process(
        target=attack_process, args=(srv.url, srv.ws_url, seconds, queue))
    if attacked:
        attackers.start()
        await asyncio.sleep(1.0)            # the attacks under way before the players
    stop = time.monotonic() + seconds
    peak = [process_rss_bytes(srv.proc.pid) or 0]

    async def watch():
        while time.monotonic() < stop:
            peak[0] = max(peak[0], process_rss_bytes(srv.proc.pid) or 0)
            await asyncio.sleep(0.1)

    tasks = [player(srv.ws_url, KEYS[i], stop, out) for i in range(PLAYERS)] + [watch()]
    await asyncio.gather(*tasks)
    if attacked:
        statuses.update(await asyncio.to_thread(queue.get))
        attackers.join()
    ttfa = sorted(out["ttfa"])
    pick = lambda q: 1000 * ttfa[min(len(ttfa) - 1, int(q * len(ttfa)))]  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "underruns": out["underruns"],
            "streams": out["streams"], "peak": peak[0], "statuses": statuses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backend", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = make_checkpoints(Path(tmp), damaged=False)
        srv = Server.ready(models, {"WAVENET_BACKEND": args.backend, "WAVENET_LOG_LEVEL":
                                    "warning", "WAVENET_MAX_STREAMS": "16",
                                    "WAVENET_MAX_STREAMS_PER_CLIENT": "0",
                                    "WAVENET_API_KEYS": ",".join(KEYS)}, Path(tmp) / "log")
        try:
            baseline = process_rss_bytes(srv.proc.pid) or 0
            quiet = asyncio.run(run(srv, args.seconds, attacked=False))
            loud = asyncio.run(run(srv, args.seconds, attacked=True))
        finally:
            srv.stop()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
                  if line.startswith("Model name")), platform.processor())
    print(f"CPU: {model}; backend {args.backend}; {args.seconds:g} s per run; "
          f"{PLAYERS} players, 2 s mel each")
    print(f"{'run':10} {'streams':>8} {'ttfa p50':>9} {'ttfa p99':>9} {'underruns':>10} "
          f"{'rss peak - base':>16}")
    for name, r in (("quiet", quiet), ("attacked", loud)):
        print(f"{name:10} {r['streams']:8d} {r['p50']:7.1f}ms {r['p99']:7.1f}ms "
              f"{r['underruns']:10d} {(r['peak'] - baseline) / 2**20:13.1f} MB")
    print(f"p99 ratio attacked/quiet: {loud['p99'] / quiet['p99']:.2f} (target <= 2)")
    print("attack answers:", dict(sorted(loud["statuses"].items(), key=str)))
    fives = sum(n for k, n in loud["statuses"].items() if isinstance(k, int) and k >= 500)
    print(f"5xx: {fives}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
