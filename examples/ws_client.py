"""Stream audio from `WS /v1/stream` into a WAV file, printing the server's events.

    .venv/bin/python examples/ws_client.py --model babble --seconds 2 -o babble.wav
    .venv/bin/python examples/ws_client.py --model vocoder --text "Hello there." -o hello.wav

Any request field can be given as --field NAME=JSON (e.g. --field temperature=0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import wave

import websockets


async def stream(url: str, request: dict, out: str, api_key: str | None) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", **request}))
        pcm = bytearray()
        rate = None
        async for message in ws:
            if isinstance(message, bytes):
                pcm += message
                continue
            event = json.loads(message)
            print(event)
            if event["type"] == "started":
                rate = event["sample_rate"]
            if event["type"] in ("done", "error"):
                break
    if rate and pcm:
        with wave.open(out, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(bytes(pcm))
        print(f"wrote {out}: {len(pcm) // 2} samples at {rate} Hz")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="ws://127.0.0.1:8000/v1/stream")
    p.add_argument("--model", required=True)
    p.add_argument("--seconds", type=float)
    p.add_argument("--text")
    p.add_argument("--speaker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--field", action="append", default=[], metavar="NAME=JSON")
    p.add_argument("-o", "--out", default="out.wav")
    args = p.parse_args()
    request = {"model": args.model, "seed": args.seed}
    for name in ("seconds", "text", "speaker"):
        if getattr(args, name) is not None:
            request[name] = getattr(args, name)
    for item in args.field:
        name, _, value = item.partition("=")
        request[name] = json.loads(value)
    asyncio.run(stream(args.url, request, args.out, os.environ.get("WAVENET_API_KEY")))


if __name__ == "__main__":
    main()
