"""The fuzzing of tests/server/test_fuzz.py, longer, with a report.

    .venv/bin/python benchmarks/fuzz.py [--examples 500] [--seed N]
        [--url http://127.0.0.1:PORT] [--json out.json]

Three parts, each with the test's checks (no 5xx, no call over 30 s, every 4xx a JSON error,
every 200 the whole audio; WebSocket: "done" with all the audio, or an error event and a
documented close code):
  schema     hypothesis on SynthesisRequest + build_job in process (--examples x 5)
  openapi    schemathesis, every /v1 operation, positive and negative data
  http       hypothesis request bodies (mostly valid for the model named) POSTed to
             /v1/synthesize, whole and streamed
  websocket  hypothesis start messages and raw first frames over WS /v1/stream
Without --url it starts `wavenet serve` on a free loopback port with tiny random plain,
multi-speaker and mel checkpoints named as the test's (requests capped at 1 s of audio;
the parsing and streaming paths do not depend on the model's size). A --url server must
serve models named plain, spk (speakers ann, bob, cy) and mel (20 mel channels, hop 128)
for the generated requests to reach them. Afterwards: the server's live/waiting gauges
once settled, its RSS before and after, and whether its log holds a traceback. Examples
are random unless --seed is given (then derandomized). Exit status 1 on any problem.

Measured (--examples 1000, random): schema 5000 cases, openapi 3001 calls, http 1000
(321 x 200), websocket 1000 (314 complete streams); 0 5xx, 0 problems, slowest call
0.06 s; 0 live / 0 waiting afterwards; no traceback in the server log.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import fuzz as fz  # noqa: E402
from tests.helpers.server import make_checkpoints  # noqa: E402
from wavenet_cli.loadtest import check_loopback, process_rss_bytes  # noqa: E402


def run_part(name: str, fn) -> dict:
    """Run one part; a failing example (hypothesis re-raises it) is recorded, not fatal."""
    t0 = time.perf_counter()
    out = {"part": name}
    try:
        tally = fn()
        out.update(calls=tally.calls, statuses={str(k): v for k, v in
                                                sorted(tally.statuses.items(), key=str)},
                   server_errors=tally.server_errors, slowest_s=round(tally.slowest_s, 3),
                   problems=tally.problems[:10], skipped=tally.skipped)
    except Exception as exc:
        out.update(failed=f"{type(exc).__name__}: {exc}"[:2000])
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def schema_part(examples: int, seed) -> fz.Tally:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    entries = fz.model_entries()
    tally = fz.Tally()

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), derandomize=seed is not None)
    @given(body=fz.any_bodies(), name=st.sampled_from(fz.MODELS))
    def one(body, name):
        t0 = time.perf_counter()
        outcome = fz.check_request(body, entries[name])
        tally.add("schema", outcome, time.perf_counter() - t0)

    one()
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500,
                        help="per OpenAPI operation and mode, and for the WebSocket part")
    parser.add_argument("--seed", type=int, help="derandomize (default: random examples)")
    parser.add_argument("--url", help="fuzz this running loopback server instead")
    parser.add_argument("--parts", nargs="+", default=["schema", "openapi", "http", "websocket"])
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    if not 1 <= args.examples <= 100_000:
        parser.error("--examples must be in 1..100000")

    report = {"examples": args.examples, "seed": args.seed, "parts": []}
    with tempfile.TemporaryDirectory() as tmp:
        srv = None
        if args.url:
            url = check_loopback(args.url).rstrip("/")
            ws_url = "ws" + url[4:] + "/v1/stream"
        else:
            folder = Path(tmp) / "models"
            folder.mkdir()
            make_checkpoints(folder, damaged=False)
            srv = fz.start_fuzz_server(folder, Path(tmp) / "server.log")
            url, ws_url = srv.url, srv.ws_url
        try:
            rss_before = process_rss_bytes(srv.proc.pid) if srv else None
            if "schema" in args.parts:
                report["parts"].append(run_part("schema", lambda: schema_part(
                    args.examples * 5, args.seed)))
            if "openapi" in args.parts:
                report["parts"].append(run_part("openapi", lambda: fz.run_openapi_fuzz(
                    url, args.examples, seed=args.seed)))
            if "http" in args.parts:
                report["parts"].append(run_part("http", lambda: fz.run_http_fuzz(
                    url, args.examples, seed=args.seed)))
            if "websocket" in args.parts:
                report["parts"].append(run_part("websocket", lambda: fz.run_ws_fuzz(
                    ws_url, args.examples, seed=args.seed)))
            report["settled"] = fz.settled(url)
            if srv:
                report["rss_before_mb"] = round(rss_before / 2**20, 1)
                report["rss_after_mb"] = round(process_rss_bytes(srv.proc.pid) / 2**20, 1)
                report["tracebacks_in_log"] = srv.log_path.read_text(
                    errors="replace").count("Traceback")
        finally:
            if srv:
                srv.stop()

    for part in report["parts"]:
        if "failed" in part:
            print(f"{part['part']:>9}: FAILED after {part['wall_s']} s: {part['failed']}")
            continue
        print(f"{part['part']:>9}: {part['calls']} calls in {part['wall_s']} s, "
              f"5xx {part['server_errors']}, slowest {part['slowest_s']} s, "
              f"problems {len(part['problems'])}")
        print(f"{'':>11}outcomes {part['statuses']}")
        for problem in part["problems"]:
            print(f"{'':>11}PROBLEM {problem}")
    print(f"after: streams settled to 0 live / 0 waiting: {report['settled']}")
    if "rss_before_mb" in report:
        print(f"server RSS {report['rss_before_mb']} MB -> {report['rss_after_mb']} MB; "
              f"tracebacks in its log: {report['tracebacks_in_log']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    bad = (not report["settled"] or report.get("tracebacks_in_log")
           or any("failed" in p or p["problems"] or p["server_errors"] for p in report["parts"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
