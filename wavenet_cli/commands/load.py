"""`wavenet load`: mixed load against a running server over loopback.

N concurrent clients (`-c`, several levels run one after the other) each run requests back
to back, WebSocket streams and streamed HTTP mixed (`--http-fraction`), until `--requests`
requests or `--duration` seconds (whichever comes first). `--disconnect P` makes that
share of clients leave mid-stream at a random point (WebSocket: abort, close or cancel;
HTTP: close). Prints time to first audio p50/p95/p99, real-time factor, aggregate
samples/s and errors by kind, then the server's live/waiting stream gauges once settled;
with `--server-pid` (a local server) also its RSS before and after, the "before" taken
after `--warmup` requests. Only loopback URLs (127.0.0.0/8, ::1, localhost) are accepted.
Exit status 1 when any request failed (leaving on purpose is not a failure) or streams
remain live afterwards.

    wavenet load -c 32 --requests 1000 --disconnect 0.2 --server-pid $(pgrep -f 'wavenet serve')

For the side-by-side with the engine alone, see benchmarks/load_ws.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000",
                        help="server base URL (loopback only)")
    parser.add_argument("--model", action="append",
                        help="model name; repeatable (default: every ready model)")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[16],
                        help="concurrent clients; several values run one after another")
    parser.add_argument("--requests", type=int,
                        help="requests per level (default 20 when no --duration)")
    parser.add_argument("--duration", type=float, help="seconds per level")
    parser.add_argument("--seconds", type=float, default=0.5, help="audio per request")
    parser.add_argument("--max-seconds", type=float,
                        help="audio per request is uniform in [--seconds, --max-seconds]")
    parser.add_argument("--http-fraction", type=float, default=0.5,
                        help="share of streamed HTTP requests; the rest are WebSocket")
    parser.add_argument("--disconnect", type=float, default=0.0,
                        help="share of clients that leave mid-stream at a random point")
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    parser.add_argument("--warmup", type=int, default=0,
                        help="requests run (and not counted) before each level")
    parser.add_argument("--server-pid", type=int,
                        help="pid of a local server: report its RSS before and after")
    parser.add_argument("--seed", type=int, help="seed of the random choices")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    parser.add_argument("--api-key", default=os.environ.get("WAVENET_API_KEY"))


def run(args: argparse.Namespace) -> int:
    from wavenet_cli.loadtest import LoadConfig, format_report, run_mixed

    requests = args.requests if args.requests is not None or args.duration else 20
    failed = 0
    for n in args.concurrency:
        cfg = LoadConfig(url=args.url, concurrency=n, requests=requests,
                         duration=args.duration, seconds=args.seconds,
                         max_seconds=args.max_seconds, http_fraction=args.http_fraction,
                         disconnect=args.disconnect, models=args.model, api_key=args.api_key,
                         timeout=args.timeout, seed=args.seed)
        try:
            cfg.validate()
        except ValueError as exc:
            print(f"wavenet load: {exc}", file=sys.stderr)
            return 2
        report = asyncio.run(run_mixed(cfg, server_pid=args.server_pid,
                                       warmup_requests=args.warmup))
        summary = report.summary()
        print(json.dumps(summary) if args.json else format_report(summary), flush=True)
        failed += summary["errors"] + int(bool(summary["live_streams_after"]))
    return 1 if failed else 0
