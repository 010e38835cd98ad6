"""Faults through real `wavenet serve` processes: clients that vanish mid-stream, slow
readers, a generation that raises for one request, malformed WebSocket traffic.

A damaged checkpoint at startup is covered by test_http.test_health_ready_and_models (the
server starts with its other models; /v1/models names the failed file) and by the
"broken" cases of test_validation and test_ws (503 / close 1013 for that model only).

Fault injection is test-only and lives in this file: `FAULT_HOOK` is written as a
`sitecustomize.py` into a temporary folder put first on the faulty server's PYTHONPATH.
It wraps every generation backend the server makes so that a slot opened with seed
`FAULT_SEED` raises in `generate` once it has made `FAULT_AFTER` samples: a failure inside
a batched generation step, as a numerical or device fault in one stream would be. The
server itself has no fault-injection code.

The disconnect storm runs `DISCONNECT_CLIENTS` clients (200, as the issue asks; set
WAVENET_FAULT_CLIENTS to change it) through wavenet_cli/loadtest/, the `wavenet load` engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.helpers.server import BACKEND, ROOT, Server, metric
from tests.helpers.ws import read_error, ws_synthesize
from wavenet_cli.loadtest import LoadConfig, process_rss_bytes, run_mixed

DISCONNECT_CLIENTS = int(os.environ.get("WAVENET_FAULT_CLIENTS", "200"))
FAULT_SEED = 3_999_999_937
FAULT_AFTER = 2048

# The kernel buffers a lot for a client that stops reading: on loopback the server's send
# buffer grows to net.ipv4.tcp_wmem's maximum (4 MiB is common: ~2 min of 16 kHz audio).
# So these ask for more audio than that; only then do the server's own buffers fill and the
# drop follow. What the client gets in the end is bounded by that kernel buffer plus the
# server's own (a few chunks per stream and the transport's 64 KiB).
def _kernel_send_buffer_max() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


KERNEL_SEND_MAX = _kernel_send_buffer_max()
SLOW_SECONDS = int(1.5 * KERNEL_SEND_MAX / 32000) + 20
# mp3 is 64 kbit/s: the same buffers hold four times the audio (about 1 min to fill here)
MP3_SLOW_SECONDS = int(1.5 * KERNEL_SEND_MAX / 8000) + 20
SLOW_BOUND = KERNEL_SEND_MAX + (512 << 10)
fillable_buffers = pytest.mark.skipif(SLOW_SECONDS > 1200,
                                      reason=f"tcp_wmem max {KERNEL_SEND_MAX} "
                                      "would need too long a stream to fill")

FAULT_HOOK = '''
"""Test-only fault injection (tests/server/test_faults.py), loaded as sitecustomize."""
import os
import sys

if os.environ.get("WAVENET_TEST_FAULT_SEED"):
    import wavenet_core.generation.registry as _backends

    _SEED = int(os.environ["WAVENET_TEST_FAULT_SEED"])
    _AFTER = int(os.environ.get("WAVENET_TEST_FAULT_AFTER", "0"))
    _make_backend = _backends.make_backend

    class FaultyBackend:
        """Delegates to the real backend; a slot opened with seed _SEED raises in
        generate() once it has made _AFTER samples (before touching any state)."""

        def __init__(self, inner):
            self._inner = inner
            self._made = {}          # poisoned slot -> samples it has made

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def open_slot(self, state, slot, **kwargs):
            self._made.pop(slot, None)
            if kwargs.get("seed") == _SEED:
                self._made[slot] = 0
            return self._inner.open_slot(state, slot, **kwargs)

        def generate(self, state, slots, num_steps, local=None):
            slots = [int(s) for s in slots]
            for slot in slots:
                if self._made.get(slot, -1) >= _AFTER:
                    print(f"fault hook: raising in a batch of {len(slots)}", file=sys.stderr,
                          flush=True)
                    raise RuntimeError(f"injected fault in slot {slot}")
            codes = self._inner.generate(state, slots, num_steps, local)
            for slot in slots:
                if slot in self._made:
                    self._made[slot] += num_steps
            return codes

    def make_backend(*args, **kwargs):
        return FaultyBackend(_make_backend(*args, **kwargs))

    _backends.make_backend = make_backend
'''


def _serve(checkpoints, tmp_path_factory, name: str, env: dict) -> Server:
    folder = tmp_path_factory.mktemp(name)
    shutil.copy(checkpoints / "plain.safetensors", folder / "plain.safetensors")
    return Server.ready(folder, {"WAVENET_BACKEND": BACKEND, **env}, folder / "server.log")


@pytest.fixture(scope="module")
def faulty(checkpoints, tmp_path_factory):
    """Room for the storm (64 slots, 512 waiting), streams longer than the kernel's buffers
    and the fault hook on seed FAULT_SEED."""
    hook = tmp_path_factory.mktemp("fault_hook")
    (hook / "sitecustomize.py").write_text(FAULT_HOOK)
    srv = _serve(checkpoints, tmp_path_factory, "faulty", {
        "WAVENET_MAX_STREAMS": "64", "WAVENET_MAX_WAITING": "512",
        "WAVENET_MAX_SECONDS": str(SLOW_SECONDS),
        "WAVENET_TEST_FAULT_SEED": str(FAULT_SEED), "WAVENET_TEST_FAULT_AFTER": str(FAULT_AFTER),
        "PYTHONPATH": f"{hook}{os.pathsep}{ROOT}"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def slow(checkpoints, tmp_path_factory):
    """Small per-stream buffers and a 1 s patience with clients that stop reading."""
    srv = _serve(checkpoints, tmp_path_factory, "slow", {
        "WAVENET_MAX_STREAMS": "4", "WAVENET_STREAM_BUFFER_CHUNKS": "2",
        "WAVENET_SLOW_CLIENT_SECONDS": "1",
        "WAVENET_MAX_SECONDS": str(max(SLOW_SECONDS, MP3_SLOW_SECONDS))})
    yield srv
    srv.stop()


def gauges(url: str) -> tuple[float, float]:
    text = httpx.get(url + "/metrics").text
    return (metric(text, "wavenet_live_streams", model="plain"),
            metric(text, "wavenet_waiting_streams", model="plain"))


def synthesize_request(body: dict, request_id: str) -> bytes:
    """A raw POST /v1/synthesize, for a socket the test controls."""
    data = json.dumps(body).encode()
    return (f"POST /v1/synthesize HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"X-Request-ID: {request_id}\r\n\r\n").encode() + data


def wait_idle(url: str, timeout: float = 10.0) -> tuple[float, float]:
    deadline = time.monotonic() + timeout
    while True:
        live, waiting = gauges(url)
        if (live, waiting) == (0, 0) or time.monotonic() > deadline:
            return live, waiting
        time.sleep(0.05)


# -- clients that vanish ------------------------------------------------------------------
def test_disconnect_storm_leaves_no_live_stream_and_no_memory(faulty):
    """DISCONNECT_CLIENTS clients at once, WebSocket and streamed HTTP, every one leaving
    at a random point (abort, close, cancel, or early while still queued). A first storm
    warms the server up; its RSS then is the baseline for a second one."""
    n = DISCONNECT_CLIENTS
    cfg = LoadConfig(url=faulty.url, concurrency=n, requests=n, seconds=0.2, max_seconds=0.8,
                     http_fraction=0.5, disconnect=1.0, timeout=60, seed=11)
    report = asyncio.run(run_mixed(cfg, server_pid=faulty.proc.pid, warmup_requests=n))
    s = report.summary()
    assert s["requests"] == n and s["errors"] == 0, s
    assert s["disconnected"] >= 0.9 * n, s        # the rest finished before leaving
    assert (s["live_streams_after"], s["waiting_streams_after"]) == (0, 0), s
    assert report.rss_after <= 1.10 * report.rss_before, s
    # and the server still serves
    r = httpx.post(faulty.url + "/v1/synthesize", json={"num_samples": 800, "format": "pcm"})
    assert r.status_code == 200 and len(r.content) == 1600
    assert "Traceback" not in faulty.log_path.read_text(errors="replace")


@fillable_buffers
def test_disconnect_mid_stream_frees_the_slot(faulty):
    """A streamed HTTP client that closes mid-stream frees its slot. The stream is longer
    than every buffer between server and client, so it is still live when the client goes
    (a 30 s stream of the tiny model could finish into the kernel's buffers first)."""
    request = synthesize_request({"seconds": SLOW_SECONDS, "seed": 2, "stream": True,
                                  "format": "pcm"}, "leaves-mid-stream")
    sock = small_window_socket(faulty.port)
    try:
        sock.sendall(request)
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 10
        while gauges(faulty.url) != (1, 0) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gauges(faulty.url) == (1, 0)
    finally:
        sock.close()
    assert wait_idle(faulty.url) == (0, 0)
    log = faulty.log_path.read_text(errors="replace")
    line = next(x for x in log.splitlines()
                if '"request_id":"leaves-mid-stream"' in x and '"event"' in x)
    assert '"stream_status":"cancelled"' in line
    r = httpx.post(faulty.url + "/v1/synthesize", json={"num_samples": 100})
    assert r.status_code == 200


# -- a generation that raises for one request -----------------------------------------------
def test_a_failing_generation_ends_only_its_own_request(faulty):
    bystanders = [{"num_samples": 12000 + 700 * i, "seed": 100 + i} for i in range(4)]
    poisoned = {"num_samples": 8000, "seed": FAULT_SEED}

    async def http_stream(body: dict, rid: str):
        async with httpx.AsyncClient(base_url=faulty.url, timeout=30) as client:
            got = b""
            try:
                async with client.stream("POST", "/v1/synthesize", headers={"X-Request-ID": rid},
                                         json={**body, "stream": True, "format": "pcm"}) as r:
                    async for chunk in r.aiter_raw():
                        got += chunk
            except httpx.RemoteProtocolError as exc:      # the body was cut, not ended
                return r, got, exc
            return r, got, None

    async def http_whole(body: dict, rid: str):
        async with httpx.AsyncClient(base_url=faulty.url, timeout=30) as client:
            return await client.post("/v1/synthesize", headers={"X-Request-ID": rid},
                                     json={**body, "format": "pcm"})

    async def main():
        tasks = [ws_synthesize(faulty.ws_url, b) for b in bystanders]
        tasks += [ws_synthesize(faulty.ws_url, poisoned, headers={"X-Request-ID": "poison-ws"}),
                  http_stream(poisoned, "poison-stream"), http_whole(poisoned, "poison-whole")]
        return await asyncio.gather(*tasks)

    *others, ws_bad, (stream_r, stream_audio, cut), whole = asyncio.run(main())
    # the failed requests, each with its id
    assert ws_bad["started"]["request_id"] == "poison-ws" and ws_bad["done"] is None
    assert ws_bad["close_code"] == 1011 and ws_bad["error"]["code"] == "generation_failed"
    assert 0 < len(ws_bad["audio"]) < 2 * 8000
    assert stream_r.status_code == 200 and stream_r.headers["x-request-id"] == "poison-stream"
    assert cut is not None and len(stream_audio) < 2 * 8000
    assert whole.status_code == 500 and whole.json()["request_id"] == "poison-whole"
    assert whole.json()["error"]["code"] == "generation_failed"
    log = faulty.log_path.read_text(errors="replace")
    for rid in ("poison-ws", "poison-stream", "poison-whole"):
        assert f"generation failed for request {rid}: RuntimeError: injected fault" in log
    batches = [int(x.rsplit(" ", 1)[1]) for x in log.splitlines()
               if x.startswith("fault hook: raising in a batch of")]
    assert max(batches) > 1       # it failed a batched step, which others shared
    # the others finished, with the audio they get alone
    for body, res in zip(bystanders, others):
        assert res["close_code"] == 1000 and res["done"]["status"] == "done", res["error"]
        assert len(res["audio"]) == 2 * body["num_samples"]
    if BACKEND == "cpu":           # bitwise batch invariance: as if nothing had happened
        alone = [asyncio.run(ws_synthesize(faulty.ws_url, b)) for b in bystanders]
        assert [a["audio"] for a in alone] == [o["audio"] for o in others]
    assert wait_idle(faulty.url) == (0, 0)


# -- slow readers ------------------------------------------------------------------------------
def small_window_socket(port: int) -> socket.socket:
    """A connected client socket with a small receive buffer (the client side of the
    kernel's buffering stays small)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


def wait_dropped(url: str, timeout: float = 40.0) -> float:
    """Seconds until the slow server has no live or waiting stream (the stalled one was
    dropped); fails after `timeout`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if gauges(url) == (0, 0):
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError("the stalled stream was never dropped")


@fillable_buffers
def test_slow_websocket_reader_is_dropped_with_4408(slow):
    async def main():
        sock = small_window_socket(slow.port)
        async with websockets.connect(slow.ws_url, sock=sock, max_queue=1,
                                      compression=None) as ws:
            await ws.send(json.dumps({"type": "start", "seconds": SLOW_SECONDS}))
            started = json.loads(await ws.recv())
            # stop reading; meanwhile another client is served as usual
            t0 = time.monotonic()
            other = await ws_synthesize(slow.ws_url, {"num_samples": 16000})
            other_s = time.monotonic() - t0
            await asyncio.to_thread(wait_dropped, slow.url)
            audio, error = 0, None
            try:
                async for message in ws:
                    if isinstance(message, bytes):
                        audio += len(message)
                    else:
                        error = json.loads(message)
            except websockets.ConnectionClosedError:
                pass
            return started, other, other_s, audio, error, ws.close_code

    started, other, other_s, audio, error, code = asyncio.run(main())
    assert started["type"] == "started"
    assert other["done"]["status"] == "done" and other_s < 5
    assert code == 4408 and error["code"] == "slow_consumer"
    assert audio < SLOW_BOUND                # what the buffers on the way held
    log = slow.log_path.read_text(errors="replace")
    line = next(x for x in log.splitlines() if started["request_id"] in x and '"event"' in x)
    assert '"stream_status":"slow_consumer"' in line and '"status":4408' in line


def read_http_response(sock: socket.socket, url: str, timeout: float = 40.0
                       ) -> tuple[bytes, bytes]:
    """Read the headers, stop reading until the server dropped the stream, read to EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1024)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    wait_dropped(url, timeout)
    sock.settimeout(15)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return head, rest
        rest += chunk


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """Chunked transfer coding -> (payload, whether the terminating chunk came)."""
    out, pos = b"", 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            return out, False
        size = int(body[pos:end].split(b";")[0], 16)
        if size == 0:
            return out, True
        out += body[end + 2:end + 2 + size]
        pos = end + 2 + size + 2
        if pos > len(body):
            return out, False


@fillable_buffers
@pytest.mark.parametrize("fmt, seconds", [("pcm", SLOW_SECONDS), ("mp3", MP3_SLOW_SECONDS)])
def test_slow_http_reader_is_dropped_and_its_body_cut(slow, fmt, seconds):
    """An mp3 stream's reader is dropped as a pcm one is, and its encoder goes with it."""
    request = synthesize_request({"seconds": seconds, "stream": True, "format": fmt},
                                 f"slow-http-{fmt}")
    sock = small_window_socket(slow.port)
    try:
        sock.sendall(request)
        head, raw = read_http_response(sock, slow.url, timeout=40 * 32000 / 8000)
    finally:
        sock.close()
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    audio, complete = dechunk(raw)
    assert not complete                      # cut, not a complete-looking short file
    assert len(audio) < SLOW_BOUND
    log = slow.log_path.read_text(errors="replace")
    line = next(x for x in log.splitlines()
                if f'"request_id":"slow-http-{fmt}"' in x and '"event"' in x)
    assert '"stream_status":"slow_consumer"' in line
    assert metric(httpx.get(slow.url + "/metrics").text, "wavenet_audio_encoders") == 0


# -- malformed WebSocket traffic -------------------------------------------------------------
async def mid_stream(url: str, bad, *, start: dict | None = None) -> tuple[dict | None, int]:
    """Start a long stream, read its first audio, send `bad`; -> (error event, close code)."""
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "model": "plain", "seconds": 30,
                                  **(start or {})}))
        assert json.loads(await ws.recv())["type"] == "started"
        assert isinstance(await ws.recv(), bytes)
        await ws.send(bad)
        return await read_error(ws)


MAX_MESSAGE = 256 * 1024         # the main server's WAVENET_MAX_BODY_BYTES


@pytest.mark.parametrize("bad,code,error_code", [
    (b"\x00\x01 audio from the client", 1003, "unsupported_data"),
    ("{not json", 1007, "invalid_json"),
    ("[" * 100_000, 1007, "invalid_json"),                    # nesting past the recursion limit
    ('{"type": "cancel", "n": ' + "9" * 5000 + "}", 1007, "invalid_json"),   # int too long
    ('"just a string"', 1007, "invalid_request"),
    ('{"type": "pause"}', 1008, "protocol_error"),
    ("x" * (MAX_MESSAGE + 10), 1009, "message_too_large"),
    ("y" * (4 * MAX_MESSAGE), 1009, None),          # past the transport's frame limit
], ids=["binary", "broken-json", "deep-json", "long-int", "not-object", "unknown-type",
        "oversized", "over-frame-limit"])
def test_malformed_message_mid_stream_ends_that_stream_only(server, bad, code, error_code):
    async def main():
        bystander = asyncio.ensure_future(ws_synthesize(server.ws_url, {
            "model": "spk", "num_samples": 24000, "seed": 3}))
        error, close_code = await mid_stream(server.ws_url, bad)
        return error, close_code, await bystander

    error, close_code, bystander = asyncio.run(main())
    assert close_code == code
    if error_code is None:         # uvicorn closes before the route sees the frame
        assert error is None
    else:
        assert error["code"] == error_code and "Traceback" not in error["message"]
    assert bystander["done"]["status"] == "done" and len(bystander["audio"]) == 48000
    assert wait_for_plain_idle(server.url)


def wait_for_plain_idle(url: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = httpx.get(url + "/metrics").text
        if all(metric(text, "wavenet_live_streams", model=m) == 0 for m in ("plain", "spk")):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("first,code,error_code", [
    ("[" * 100_000, 1007, "invalid_json"),
    ('{"type": "start", "model": "plain", "seed": ' + "1" * 5000 + "}", 1007, "invalid_json"),
    ("x" * (MAX_MESSAGE + 10), 1009, "message_too_large"),
    ('{"type": 5}', 1007, "invalid_request"),
    ('{"type": "done"}', 1008, "protocol_error"),
    ("", 1007, "invalid_json"),
], ids=["deep-json", "long-int", "oversized", "type-not-string", "done-first", "empty"])
def test_malformed_first_message_gets_error_and_close_code(server, first, code, error_code):
    from tests.helpers.ws import ws_error

    error, close_code = asyncio.run(ws_error(server.ws_url, first))
    assert close_code == code and error["code"] == error_code


def test_messages_after_done_and_a_late_cancel_are_harmless(server):
    async def main():
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "start", "model": "plain", "num_samples": 400}))
            events = [json.loads(m) async for m in ws if isinstance(m, str)]
            closed = ws.close_code
            for late in ('{"type": "cancel"}', "junk", b"\x00"):
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.send(late)
        return events, closed

    events, closed = asyncio.run(main())
    assert [e["type"] for e in events] == ["started", "done"] and closed == 1000
    # a cancel racing the end of a stream: sent after the last audio, before "done" is read
    res = asyncio.run(_cancel_at_the_end(server.ws_url))
    assert res["status"] in ("done", "cancelled") and res["close_code"] == 1000
    r = httpx.post(server.url + "/v1/synthesize", json={"model": "plain", "num_samples": 64})
    assert r.status_code == 200


async def _cancel_at_the_end(url: str) -> dict:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "start", "model": "plain", "num_samples": 64}))
        assert json.loads(await ws.recv())["type"] == "started"
        await ws.recv()                             # all 64 samples: one frame
        with contextlib.suppress(websockets.ConnectionClosed):    # the server may be done
            await ws.send(json.dumps({"type": "cancel"}))
        events = [json.loads(m) async for m in ws if isinstance(m, str)]
    assert [e["type"] for e in events] == ["done"]
    return {"status": events[0]["status"], "close_code": ws.close_code}


@pytest.mark.parametrize("url,allowed", [
    ("http://127.0.0.1:8000", True), ("http://127.9.8.7", True), ("ws://[::1]:9/v1/stream", True),
    ("http://localhost:1", True), ("http://10.0.0.1:8000", False), ("http://0.0.0.0:8000", False),
    ("http://example.com", False), ("http://127.0.0.1.example.com", False),
    ("http://[2001:db8::1]:80", False),
])
def test_load_tool_refuses_targets_off_loopback(url, allowed, capsys):
    from wavenet_cli.loadtest import check_loopback
    from wavenet_cli.main import main

    if allowed:
        assert check_loopback(url) == url
    else:
        with pytest.raises(ValueError, match="loopback"):
            check_loopback(url)
        assert main(["load", "--url", url, "--requests", "1"]) == 2
        assert "loopback" in capsys.readouterr().err


def test_server_rss_helper_reads_this_process():
    rss = process_rss_bytes(os.getpid())
    assert rss is not None and rss > 10 * 2**20
