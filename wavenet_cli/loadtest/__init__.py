"""Load-test client for a running server, over loopback only (the `wavenet load` engine).

Two drivers:

- `run_mixed(LoadConfig)` (run.py): N concurrent clients, each running requests back to
  back (closed loop) until a request count or a duration is reached. Each request is a
  WebSocket stream or a streamed HTTP POST, drawn at random (plan.py), run by the clients
  (clients.py), some of which leave mid-stream on purpose. The report (report.py) has time
  to first audio p50/p95/p99, real-time factor, aggregate samples/s, outcomes and errors by
  kind, and the server's live and waiting stream gauges (and RSS) afterwards.
- `run_load(url, concurrency, start, min_requests)` (rounds.py): rounds of N WebSocket
  streams started together (benchmarks/load_ws.py compares these with the engine alone).

Only loopback targets are accepted (target.py): 127.0.0.0/8, ::1, localhost.
"""

from wavenet_cli.loadtest.plan import LoadConfig, ModelSpec, Plan, make_plan
from wavenet_cli.loadtest.report import LoadReport, Record, format_report, percentile, summarize
from wavenet_cli.loadtest.rounds import LoadResult, one_stream, run_load
from wavenet_cli.loadtest.run import fetch_models, run_mixed, server_gauges, wait_settled
from wavenet_cli.loadtest.target import check_loopback, http_url, process_rss_bytes, ws_url

__all__ = [
    "LoadConfig", "LoadReport", "LoadResult", "ModelSpec", "Plan", "Record", "check_loopback",
    "fetch_models", "format_report", "http_url", "make_plan", "one_stream", "percentile",
    "process_rss_bytes", "run_load", "run_mixed", "server_gauges", "summarize",
    "wait_settled", "ws_url",
]
