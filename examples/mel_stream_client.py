"""A streaming-TTS pipeline: an acoustic model's mel frames in over WS /v1/stream, paced in
real time, and the vocoder's audio out as it is made.

    .venv/bin/python examples/mel_stream_client.py --text "Hello there." -o hello.wav
    .venv/bin/python examples/mel_stream_client.py --wav speech.wav -o resynth.wav

A real pipeline gets its frames from an acoustic model (80-band log-mel, hop 256 at 16 kHz,
the HiFi-GAN convention). Here the frames come from a stand-in: the library's text front end
speaks `--text` (or `--wav` is read) and `wavenet_core.audio.mel.log_mel` analyses it. Frames go out
one per hop (16 ms), each as a binary message of 80 float32 (little-endian), then
`{"type": "end"}`. The client prints, per frame f, how long after frame f+1 left it the audio
that depends on frame f came back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import wave

import numpy as np
import websockets


def acoustic_frames(args, model: dict) -> np.ndarray:
    """The stand-in acoustic model: [frames, mel_channels] float32 log-mel."""
    from wavenet_core.audio.mel import log_mel
    from wavenet_core.audio.wav import read_wav
    from wavenet_core.model.config import MelConfig
    from wavenet_core.text.speech import speak
    from wavenet_core.text.voices import VOICES

    rate = model["sample_rate"]
    if args.wav:
        audio, _ = read_wav(args.wav, sample_rate=rate)
    else:
        voice = next(v for v in VOICES if v.name == args.voice)
        audio = speak(voice, args.text)
    cfg = MelConfig(n_mels=model["mel_channels"], hop_length=model["hop_length"])
    return log_mel(audio, rate, cfg)


async def stream(url: str, start: dict, frames: np.ndarray, frame_s: float, api_key):
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    sent, arrivals, pcm = [], [], bytearray()
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "mel_stream": True, "format": "pcm",
                                  **start}))
        started = json.loads(await ws.recv())
        if started["type"] != "started":
            raise SystemExit(f"server: {started}")

        async def read():
            async for message in ws:
                if isinstance(message, bytes):
                    pcm.extend(message)
                    arrivals.append((time.perf_counter(), len(pcm) // 2))
                else:
                    print(json.loads(message))

        reader = asyncio.create_task(read())
        t0 = time.perf_counter()
        for f, frame in enumerate(frames):        # as an acoustic model would emit them
            await asyncio.sleep(max(0.0, t0 + f * frame_s - time.perf_counter()))
            sent.append(time.perf_counter())
            await ws.send(frame.astype("<f4").tobytes())
        sent.append(time.perf_counter())
        await ws.send(json.dumps({"type": "end"}))
        await reader
    return started, bytes(pcm), sent, arrivals


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="ws://127.0.0.1:8000/v1/stream")
    p.add_argument("--model", default="vocoder")
    p.add_argument("--text", default="Hello there, this is a WaveNet vocoder, streaming.")
    p.add_argument("--voice", default="espeak-us-f2", help="the stand-in's voice")
    p.add_argument("--wav", help="analyse this WAV instead of speaking --text")
    p.add_argument("--speaker", help="the vocoder's speaker (id or name)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", default="streamed.wav")
    p.add_argument("--api-key", default=os.environ.get("WAVENET_API_KEY"))
    args = p.parse_args()

    import httpx

    http = "http" + args.url[2:].rsplit("/v1/", 1)[0]
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    model = httpx.get(f"{http}/v1/models/{args.model}", headers=headers, timeout=30).json()
    frames = acoustic_frames(args, model)
    hop, rate = model["hop_length"], model["sample_rate"]
    start = {"model": args.model, "seed": args.seed}
    if args.speaker is not None:
        start["speaker"] = int(args.speaker) if args.speaker.isdigit() else args.speaker
    started, pcm, sent, arrivals = asyncio.run(
        stream(args.url, start, frames, hop / rate, args.api_key))
    latencies, i = [], 0
    for f in range(len(frames)):
        while arrivals[i][1] < (f + 1) * hop:
            i += 1
        latencies.append(1000 * (arrivals[i][0] - sent[f + 1]))
    print(f"{len(frames)} frames at one per {1000 * hop / rate:g} ms; audio of frame f after "
          f"frame f+1: p50 {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms")
    with wave.open(args.out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    print(f"wrote {args.out}: {len(pcm) // 2} samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
