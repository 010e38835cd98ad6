"""A middleware for Ray Serve's HTTP proxy: a WebSocket whose replica dies gets an error.

When a replica dies mid-stream the proxy just drops the client's TCP connection (close
code 1006, no reason). With this middleware the client instead gets the protocol's
error event, `{"type": "error", "code": "replica_lost", ...}`, and close code 1011, like
any other internal failure (server/api/stream.py). A streamed HTTP response cannot
change its status once started; there the error is the chunked body that never ends.

Enable it in the environment of every Ray node (the proxies read it when they start):
    RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=server.scaleout.proxy:middlewares
`wavenet serve --ray` sets it for the local cluster it starts.
"""

from __future__ import annotations

import contextlib
import json
import logging

CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
CALLBACK_PATH = "server.scaleout.proxy:middlewares"
LOST = {"type": "error", "code": "replica_lost",
        "message": "the replica serving this stream stopped; retry the request"}

log = logging.getLogger("wavenet.scaleout")


class ReplicaLossOnWebSocket:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        state = {"accepted": False, "ended": False}

        async def watched_receive():
            message = await receive()
            if message["type"] == "websocket.disconnect":
                state["ended"] = True      # the client left: nothing more to tell it
            return message

        async def watched_send(message):
            if message["type"] == "websocket.accept":
                state["accepted"] = True
            elif message["type"] == "websocket.close":
                state["ended"] = True
            await send(message)

        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            if state["accepted"] and not state["ended"]:
                log.warning("replica lost mid-stream on %s", scope.get("path"))
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.send", "text": json.dumps(LOST)})
                    await send({"type": "websocket.close", "code": 1011,
                                "reason": "replica_lost"})


def middlewares() -> list:
    """The proxy callback: Serve applies these to every request its proxy handles."""
    from starlette.middleware import Middleware

    return [Middleware(ReplicaLossOnWebSocket)]
