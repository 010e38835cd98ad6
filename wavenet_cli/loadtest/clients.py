"""The clients of a mixed load: one request each, over a WebSocket or streamed HTTP, run to
its end, its timeout or its planned departure (abort, close or cancel), as a `Record`.

Time to first audio is measured from sending the start message (WebSocket) or the request
(HTTP) to the first audio byte.
"""

from __future__ import annotations

import asyncio
import json
import time

from wavenet_cli.loadtest.plan import Plan
from wavenet_cli.loadtest.report import Record


async def _bounded(go, plan: Plan, timeout: float, rec: Record) -> None:
    """Run a request to its end, its timeout, or its planned early departure."""
    leave = plan.leave_after is not None and plan.leave_after < timeout
    try:
        await asyncio.wait_for(go(), plan.leave_after if leave else timeout)
    except asyncio.TimeoutError:
        rec.outcome = "disconnected" if leave else "timeout"


async def http_request(client, plan: Plan, timeout: float) -> Record:
    import httpx

    rec = Record("http", plan.model.name, plan.expected, plan.model.sample_rate,
                 time.perf_counter())
    nbytes = 0

    async def go() -> None:
        nonlocal nbytes
        async with client.stream("POST", "/v1/synthesize",
                                 json={**plan.body, "stream": True}) as r:
            rec.request_id = r.headers.get("x-request-id")
            if r.status_code != 200:
                await r.aread()
                try:
                    code = r.json()["error"]["code"]
                except Exception:
                    code = "?"
                rec.outcome, rec.detail = f"http_{r.status_code}_{code}", r.text[:200]
                return
            async for chunk in r.aiter_raw():
                if rec.first is None:
                    rec.first = time.perf_counter()
                nbytes += len(chunk)
                if plan.disconnect_at is not None and nbytes >= plan.disconnect_at:
                    rec.outcome = "disconnected"      # leaving the block closes the connection
                    return
        if nbytes != 2 * plan.expected:
            rec.outcome, rec.detail = "short_audio", f"{nbytes // 2} of {plan.expected}"

    try:
        await _bounded(go, plan, timeout, rec)
    except httpx.RemoteProtocolError as exc:
        rec.outcome, rec.detail = "http_incomplete", str(exc)[:200]
    except (httpx.TransportError, OSError) as exc:
        rec.outcome, rec.detail = f"http_{type(exc).__name__}", str(exc)[:200]
    rec.samples = nbytes // 2
    rec.end = time.perf_counter()
    return rec


async def ws_request(url: str, headers: dict, plan: Plan, timeout: float) -> Record:
    import websockets

    rec = Record("ws", plan.model.name, plan.expected, plan.model.sample_rate,
                 time.perf_counter())
    nbytes, done, error, cancelling, code = 0, None, None, False, None

    async def go() -> None:
        nonlocal nbytes, done, error, cancelling, code
        async with websockets.connect(url, additional_headers=headers or None, proxy=None,
                                      open_timeout=min(timeout, 30), close_timeout=5,
                                      max_size=2**22) as ws:
            rec.start = time.perf_counter()
            await ws.send(json.dumps({"type": "start", **plan.body}))
            try:
                async for message in ws:
                    if isinstance(message, bytes):
                        if rec.first is None:
                            rec.first = time.perf_counter()
                        nbytes += len(message)
                        if (plan.disconnect_at is not None and not cancelling
                                and nbytes >= plan.disconnect_at):
                            if plan.how == "abort":
                                ws.transport.abort()      # vanish: no close handshake
                                rec.outcome = "disconnected"
                                return
                            if plan.how == "close":
                                rec.outcome = "disconnected"
                                await ws.close()
                                return
                            cancelling = True
                            try:
                                await ws.send(json.dumps({"type": "cancel"}))
                            except websockets.ConnectionClosed:
                                pass     # the stream ended first; its "done" is read below
                        continue
                    event = json.loads(message)
                    if event.get("type") == "started":
                        rec.request_id = event.get("request_id")
                    elif event.get("type") == "done":
                        done = event
                    elif event.get("type") == "error":
                        error = event
            except websockets.ConnectionClosedError:
                pass
            code = ws.close_code

    try:
        await _bounded(go, plan, timeout, rec)
    except (websockets.InvalidHandshake, websockets.ConnectionClosed, OSError) as exc:
        rec.outcome, rec.detail = f"ws_{type(exc).__name__}", str(exc)[:200]
    rec.samples = nbytes // 2
    rec.end = time.perf_counter()
    if rec.outcome != "ok":
        return rec
    if error is not None:
        rec.outcome, rec.detail = f"ws_{code}_{error.get('code')}", error.get("message")
    elif done is None:
        rec.outcome = f"ws_{code}_closed_without_done"
    elif cancelling and done.get("status") in ("cancelled", "done"):
        rec.outcome = "cancelled"
    elif done.get("status") != "done":
        rec.outcome = f"ws_done_{done.get('status')}"
    elif nbytes != 2 * plan.expected or done.get("samples") != plan.expected:
        rec.outcome, rec.detail = "short_audio", f"{nbytes // 2} of {plan.expected}"
    return rec
