"""`wavenet load`: N concurrent WebSocket streams against a running server; prints time to
first audio p50/p99 and aggregate samples/s per concurrency level (JSON lines).

For the side-by-side with the engine alone, see benchmarks/load_ws.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument("--model", help="model name (default: the server's only model)")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=0.5, help="audio per request")
    parser.add_argument("--requests", type=int, default=20,
                        help="at least this many requests per concurrency level")
    parser.add_argument("--api-key", default=os.environ.get("WAVENET_API_KEY"))


def run(args: argparse.Namespace) -> int:
    from server.loadtest import run_load, ws_url

    start = {"seconds": args.seconds}
    if args.model:
        start["model"] = args.model
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else None
    failed = 0
    for n in args.concurrency:
        result = asyncio.run(run_load(ws_url(args.url), n, start, args.requests, headers))
        print(json.dumps(result.summary()), flush=True)
        failed += result.failures
    return 1 if failed else 0
