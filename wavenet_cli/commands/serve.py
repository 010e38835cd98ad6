"""`wavenet serve`: the inference server under uvicorn (default http://127.0.0.1:8000).

Command-line options override the WAVENET_* environment (see server/settings.py).
SIGTERM or Ctrl-C drains first: /readyz turns 503, new requests get 503, live streams get
WAVENET_SHUTDOWN_GRACE_SECONDS to finish and the rest end with status "shutdown"; then
uvicorn stops. A second signal exits at once.

With --ray the same app runs as --replicas Ray Serve replicas behind one endpoint
(server/scaleout/launch.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from wavenet_core.generation.precision import PRECISIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--model", action="append", metavar="PATH",
                        help="checkpoint file or folder of *.safetensors; repeatable "
                             "(default: WAVENET_MODELS, else the bundled models/)")
    parser.add_argument("--backend", choices=["auto", "torch", "cpu", "cuda-graph", "triton"])
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="weight format: cpu fp32/bf16/int8, triton fp32/fp16 "
                             "(default: WAVENET_PRECISION, else auto)")
    parser.add_argument("--max-streams", type=int, help="live streams per model")
    parser.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--wyoming", metavar="URI",
                        help="also serve the Wyoming protocol (Home Assistant) on the same "
                             "models, e.g. tcp://0.0.0.0:10200 (default: WAVENET_WYOMING)")
    from server.scaleout.launch import add_arguments as add_ray_arguments

    add_ray_arguments(parser)


def _server_class():
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn.Server that drains the app's engines before it starts shutting down."""

        def __init__(self, config, service):
            super().__init__(config)
            self.service = service
            self._loop = None
            self._draining = False

        async def serve(self, sockets=None):
            self._loop = asyncio.get_running_loop()
            await super().serve(sockets)

        def handle_exit(self, sig, frame):
            if self._draining or self._loop is None or self.should_exit:
                return super().handle_exit(sig, frame)
            self._draining = True
            self._loop.call_soon_threadsafe(self._begin_drain)

        def _begin_drain(self):
            async def drain():
                try:
                    await self.service.drain(self.service.settings.shutdown_grace_seconds)
                    await asyncio.sleep(0.2)   # let routes send their final messages
                finally:
                    self.should_exit = True

            self._drain_task = asyncio.ensure_future(drain())

    return DrainingServer


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app
    from server.origins import exposure_warning
    from server.settings import Settings

    overrides = {"models": args.model, "backend": args.backend, "device": args.device,
                 "precision": args.precision, "max_streams": args.max_streams,
                 "log_level": args.log_level, "wyoming": args.wyoming}
    fields = {k: v for k, v in overrides.items() if v is not None}
    if args.ray:
        if args.wyoming:
            raise SystemExit("error: --wyoming serves beside one server; not with --ray")
        from server.scaleout import launch

        return launch.run(args, fields)
    settings = Settings(**fields)
    app = create_app(settings)
    warning = exposure_warning(settings, args.host)
    if warning:
        logging.getLogger("wavenet").warning(warning)
    # ws="auto": websockets' sans-I/O protocol on uvicorn 0.54 (uvicorn's legacy
    # `websockets` and `wsproto` cost the event loop as much or more per message:
    # docs/performance.md, "The WebSocket protocol and the engine's passes")
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=settings.log_level,
                            access_log=False, lifespan="on",
                            ws_max_size=settings.max_body_bytes + 4096,
                            # no permessage-deflate: PCM and mel frames barely compress, and
                            # zlib on every message cost the server (and each client) CPU
                            # the kernel needs (docs/performance.md, the engine's share)
                            ws_per_message_deflate=False,
                            timeout_graceful_shutdown=max(1.0, settings.shutdown_grace_seconds))
    server = _server_class()(config, app.state.service)
    server.run()
    return 0
