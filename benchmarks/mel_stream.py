"""Mel streamed in at real-time pace: how soon after frame f+1 arrives the audio of frame f
leaves the server, with N streams at once.

    .venv/bin/python benchmarks/mel_stream.py [-c 1 16] [--seconds 3] [--frame-ms 16]
        [--checkpoint PATH | --residual 32 --skip 64] [--backend cpu] [--py-spy FILE]
        [--py-spy-rate 500]
        [--rounds 3] [--compare main=/tmp/main-tree branch=.]

Each client opens WS /v1/stream with `"mel_stream": true` and sends one binary frame every
`--frame-ms` (16 ms = one 256-sample hop at 16 kHz: real time). Samples f*hop .. (f+1)*hop-1
read frames f and f+1, so the audio "depending on frame f" is complete once the client holds
(f+1)*hop samples; its latency is that moment minus the moment frame f+1 was sent (for the
last frame: minus the moment `end` was sent). Loopback, client and server on this machine.
Targets: p50 <= 30 ms, p99 <= 100 ms at 16 streams. The server keeps up only where it makes
N x 16,000 samples/s; each row also gives the server process's CPU seconds per second of
audio made (all its threads: the kernel's and the rest), its event loop's alone, the
clients' (this process), the CPU inside the server's kernel calls (every thread's, from
/metrics: a compiled CPU backend's), and the engine alone on the same work in this process
right after (`benchmarks/engine_alone.py`: N slots, one hop per call, as a stream at
real-time pace allows a step) with its kernel calls' share, with engine/server, the
issue-32 ratio (target >= 0.97); and the server's steps per second, mean batch and mean
chunk (from /metrics). `--compare` starts one server per source tree (a copy of another
revision's tree) and takes the rounds in turn, so an A/B sees the same machine. The
engine alone runs each server's own precision (its /v1/models entry; the last column):
`auto` times the candidates in each process and could pick differently. Set
WAVENET_PRECISION (e.g. int8a) to skip that timing at load; the engine alone reads it too.
Each stream's mel is the model's own features of a voiced test signal. Without
--checkpoint the model is a random vocoder with the bundled one's layout (2 x 9 layers,
80 mels, hop 256) and --residual/--skip channels.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from tests.helpers.server import Server, metric  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402


def make_vocoder(folder: Path, residual: int, skip: int) -> Path:
    import torch

    from wavenet_core import MelConfig, WaveNet, WaveNetConfig, save_checkpoint

    torch.manual_seed(0)
    config = WaveNetConfig(stacks=2, layers_per_stack=9, residual_channels=residual,
                           skip_channels=skip, mel_channels=80, mel=MelConfig())
    path = folder / f"vocoder_r{residual}_s{skip}.safetensors"
    save_checkpoint(path, WaveNet(config))
    return path


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


def cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process: (all its threads, its main thread, which
    runs the server's event loop)."""
    def read(stat: str) -> float:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return read(f"/proc/{pid}/stat"), read(f"/proc/{pid}/task/{pid}/stat")


def profiler(pid: int, out: Path, rate: int = 100) -> subprocess.Popen:
    """py-spy (the dev extra) recording `pid` in its raw format until it is interrupted,
    `rate` samples a second."""
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "-p", str(pid), "-o", str(out), "--format",
                             "raw", "--nonblocking", "--threads", "--rate", str(rate)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def stream_mels(config, streams: int, seconds: float) -> list:
    """Each stream's mel: the model's own features of a voiced signal (a pitch glide with
    its harmonics, in noise; a different pitch per stream), so the server's range check
    takes them, [frames, n_mels] little-endian float32."""
    import numpy as np

    from wavenet_core.generation.conditioning import mel_from_audio

    rate, n = config.sample_rate, round(seconds * config.sample_rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(0)
    mels = []
    for i in range(streams):
        f0 = (110 + 7 * i) * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        audio = sum(np.sin(h * phase) / h for h in range(1, 9)) * 0.1
        audio = audio + 0.01 * rng.standard_normal(n)
        mels.append(mel_from_audio(audio.astype(np.float32), config).astype("<f4"))
    return mels


async def run(url: str, mels: list, frame_s: float, hop: int) -> list[float]:
    results = await asyncio.gather(*(
        one_stream(url, [row.tobytes() for row in mel], frame_s, hop) for mel in mels))
    return [x for r in results for x in r]


def step_stats(url: str) -> tuple[float, float, float, float]:
    """The server's engine so far: (steps, stream-steps (the steps' batch sizes summed),
    samples made, CPU seconds inside the compiled kernel's calls), from /metrics."""
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    label = 'model="'                 # the model's name: any sample's model label
    models = [line.split(label)[1].split('"')[0] for line in text.splitlines()
              if label in line and not line.startswith("#")]
    if not models:
        return 0.0, 0.0, 0.0, 0.0
    model = {"model": models[0]}
    return tuple(metric(text, name, **model) or 0.0 for name in (
        "wavenet_engine_step_seconds_count", "wavenet_batch_occupancy_sum",
        "wavenet_samples_generated_total", "wavenet_kernel_cpu_seconds"))


def server_precision(url: str) -> str | None:
    """The precision the server's model runs (its /v1/models entry; None if not given)."""
    import httpx

    models = httpx.get(url + "/v1/models", timeout=10).json()["data"]
    return models[0].get("precision") if models else None


def engine_precision(engine: EngineAlone) -> str:
    return getattr(engine.backend, "precision", engine.backend.name)


def one_round(name: str, srv: Server, engine: EngineAlone, config, n: int, args,
              precision: str) -> None:
    """One level on one server, then the engine alone on the same work; prints a row."""
    mels = stream_mels(config, n, args.seconds)
    spy = profiler(srv.proc.pid, args.py_spy, args.py_spy_rate) if args.py_spy else None
    stats0, cpu0 = step_stats(srv.url), cpu_s(srv.proc.pid)
    client0, t0 = time.process_time(), time.perf_counter()
    lat = asyncio.run(run(srv.ws_url, mels, args.frame_ms / 1000, config.mel.hop_length))
    wall, client = time.perf_counter() - t0, time.process_time() - client0
    cpu1, stats1 = cpu_s(srv.proc.pid), step_stats(srv.url)
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait()
    load = os.getloadavg()[0]
    audio_s = n * args.seconds
    total, loop = ((b - a) / audio_s for a, b in zip(cpu0, cpu1))
    steps, occupancy, samples, kernel = (b - a for a, b in zip(stats0, stats1))
    batch = occupancy * args.slots / max(steps, 1)
    # the engine alone on the same samples: n slots, one hop per call (what a stream at
    # real-time pace allows a step), CPU seconds of this process per second of audio
    alone0 = getattr(engine.backend, "kernel_cpu_s", 0.0)
    _, engine_cpu = engine.run(n, round(args.seconds * config.sample_rate),
                               config.mel.hop_length)
    alone = getattr(engine.backend, "kernel_cpu_s", 0.0) - alone0
    ms = [1000 * x for x in lat]
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    ok = "met" if p50 <= 30 and p99 <= 100 else "MISSED"
    print(f"{name:>6} {n:>7} {len(ms):>6} {p50:>7.1f} {percentile(ms, 90):>7.1f} "
          f"{p99:>7.1f} {max(ms):>8.1f} {ok:>6} {total:>7.4f} {loop:>7.4f} "
          f"{client / audio_s:>7.4f} {kernel / audio_s:>7.4f} {engine_cpu / audio_s:>7.4f} "
          f"{alone / audio_s:>7.4f} "
          f"{engine_cpu / audio_s / total:>6.3f} {steps / wall:>6.1f} {batch:>5.1f} "
          f"{samples / max(occupancy * args.slots, 1):>6.0f} {wall:>5.1f} {load:>5.2f} {precision}",
          flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 16])
    p.add_argument("--seconds", type=float, default=3.0, help="audio per stream")
    p.add_argument("--frame-ms", type=float, default=16.0)
    p.add_argument("--checkpoint", type=Path, help="a mel vocoder (80 mels, hop 256)")
    p.add_argument("--residual", type=int, default=32)
    p.add_argument("--skip", type=int, default=64)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--rounds", type=int, default=1, help="rounds per level (alternating "
                   "the servers of --compare)")
    p.add_argument("--compare", nargs="+", default=[], metavar="NAME=TREE",
                   help="servers run from these source trees (a copy of another revision), "
                        "one beside the other, rounds taken in turn; default this tree")
    p.add_argument("--py-spy", type=Path, metavar="FILE",
                   help="record the server with py-spy during each round (raw format)")
    p.add_argument("--py-spy-rate", type=int, default=100, metavar="HZ",
                   help="py-spy's samples per second (the event loop's thread gets few at 100)")
    args = p.parse_args()
    args.slots = max(args.concurrency)
    from wavenet_core.model.checkpoint import load_checkpoint

    trees = dict(item.split("=", 1) for item in args.compare) or {"this": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or make_vocoder(Path(tmp), args.residual, args.skip)
        servers = {}
        try:
            for name, tree in trees.items():
                servers[name] = Server(ckpt, {"WAVENET_BACKEND": args.backend,
                                              "WAVENET_LOG_LEVEL": "warning",
                                              "WAVENET_MAX_STREAMS": str(args.slots),
                                              "WAVENET_WARMUP_SAMPLES": "2048"},
                                       Path(tmp) / f"server-{name}.log", root=Path(tree))
            for srv in servers.values():
                srv.wait_ready(timeout=600)
            # the engine alone at each server's own precision (`auto` may pick another in
            # each process; a server that does not say gets this process's pick)
            precisions = {name: server_precision(srv.url) for name, srv in servers.items()}
            engines = {p: EngineAlone(ckpt, args.backend, "cpu", p)
                       for p in dict.fromkeys(precisions.values())}
            config = load_checkpoint(ckpt).config
            named = ", ".join(f"{k}={v} ({precisions[k] or '?'})" for k, v in trees.items())
            alone = ", ".join(engine_precision(e) for e in engines.values())
            print(f"{cpu_model()}; model {ckpt.name}, backend {args.backend}; one frame every "
                  f"{args.frame_ms:g} ms, {args.seconds:g} s per stream; servers: {named}; "
                  f"engine alone: {alone}")
            print("latency in ms (target p50<=30 p99<=100); CPU seconds per second of audio: "
                  "server (all threads), its event loop, the clients (this process), the "
                  "server's kernel calls (every thread's), the engine alone on the same "
                  "work and its kernel calls; ratio engine/server; steps/s, mean batch "
                  "and chunk; wall s; load average; the engine alone's precision")
            print(f"{'server':>6} {'streams':>7} {'frames':>6} {'p50':>7} {'p90':>7} "
                  f"{'p99':>7} {'max':>8} {'target':>6} {'server':>7} {'loop':>7} "
                  f"{'clients':>7} {'kernel':>7} {'engine':>7} {'kernel':>7} {'ratio':>6} "
                  f"{'step/s':>6} {'batch':>5} {'chunk':>6} {'wall':>5} {'load':>5} prec")
            for n in args.concurrency:
                for _ in range(args.rounds):
                    for name, srv in servers.items():
                        engine = engines[precisions[name]]
                        one_round(name, srv, engine, config, n, args, engine_precision(engine))
        finally:
            for srv in servers.values():
                srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
