"""Fuzzing: no 5xx, no hang, no stream left behind.

- schemathesis on the OpenAPI document of a real `wavenet serve` process, every /v1
  operation, data that fits the schema and data that does not (model names pinned to the
  served ones as well as free strings, so that generated requests reach the models);
- hypothesis on the request schema in-process: any JSON object through
  `SynthesisRequest` and `build_job` against a plain, a multi-speaker and a mel model
  (every field's edge values, base64 .npy and WAV of random shapes, dtypes and rates);
- hypothesis on WebSocket start messages (and raw text or binary first frames) against the
  server: each connection ends with "done" and the whole audio, or an error event and one
  of the documented close codes, within its time limit.

The runs here are bounded for CI (WAVENET_FUZZ_EXAMPLES, default 80, examples per
operation and mode); benchmarks/fuzz.py runs the same checks longer and reports figures.
The fuzz server serves lengths up to 1 s, so a valid request costs little.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.fuzz import (
    FUZZ_EXAMPLES,
    MODELS,
    any_bodies,
    check_request,
    model_entries,
    run_http_fuzz,
    run_openapi_fuzz,
    run_ws_fuzz,
    settled,
    start_fuzz_server,
)


@pytest.fixture(scope="module")
def fuzz_server(checkpoints, tmp_path_factory):
    """plain, spk and mel (no damaged file: its 503 is by design), at most 1 s per request."""
    folder = tmp_path_factory.mktemp("fuzz")
    for name in MODELS:
        shutil.copy(checkpoints / f"{name}.safetensors", folder / f"{name}.safetensors")
    srv = start_fuzz_server(folder, folder / "server.log")
    yield srv
    srv.stop()


def test_request_schema_property():
    entries = model_entries()
    seen: Counter = Counter()

    @settings(max_examples=FUZZ_EXAMPLES * 5, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=any_bodies(), name=st.sampled_from(MODELS))
    def one(body, name):
        seen[check_request(body, entries[name])] += 1

    one()
    assert seen["ok"] and seen["invalid_schema"] and seen["invalid_request"], seen


@pytest.mark.parametrize("body,name,code", [
    ({"num_samples": 10, "speaker": "\u00b2"}, "spk", "invalid_request"),   # was a 500
    ({"num_samples": 10, "speaker": "\u0663"}, "spk", "invalid_request"),   # 3: out of range
    ({"num_samples": 10, "speaker": "2"}, "spk", "ok"),
])
def test_request_schema_regressions(body, name, code):
    assert check_request(body, model_entries()[name]) == code


def test_openapi_fuzz_every_v1_route(fuzz_server):
    tally = run_openapi_fuzz(fuzz_server.url, FUZZ_EXAMPLES)
    assert tally.server_errors == 0 and not tally.problems, tally
    assert tally.statuses[200] and tally.statuses[422], tally.statuses
    assert settled(fuzz_server.url)


def test_synthesize_request_fuzz(fuzz_server):
    tally = run_http_fuzz(fuzz_server.url, FUZZ_EXAMPLES)
    assert tally.server_errors == 0 and not tally.problems, tally
    assert tally.statuses[200] and tally.statuses[422], tally.statuses
    assert settled(fuzz_server.url)


def test_websocket_start_fuzz(fuzz_server):
    tally = run_ws_fuzz(fuzz_server.ws_url, FUZZ_EXAMPLES)
    assert not tally.problems and tally.statuses[1000] and tally.statuses[1007], tally
    assert settled(fuzz_server.url)
    assert "Traceback" not in fuzz_server.log_path.read_text(errors="replace")
