"""The loaded models and their engines: loading, warm-up, lookup, readiness and draining.

Loading runs as a background task started by the app's lifespan, so the server answers
/healthz (and /readyz with 503) while checkpoints load and warm up. A checkpoint that
fails to load is recorded with its error (file and tensor named) and the others go on.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from server.engine.engine import Engine, Overloaded, ShuttingDown, StreamHandle, TooManyStreams
from server.engine.prepare import build_job
from server.engine.runner import Runner
from server.engine.scheduler import Scheduler
from server.errors import ApiError
from server.metrics import Metrics
from server.settings import Settings
from server.wire.encoding import FormatError, check_output, resolve_output
from server.wire.schemas import ModelInfo, SynthesisRequest

log = logging.getLogger("wavenet.service")

OPENAI_ALIASES = ("tts-1", "tts-1-hd")


def _mel_pacing(config, gather_hops: float) -> dict:
    """The scheduler's arguments for a model's streamed mels: how long a step is held to
    gather them, and the hop its steps keep to (none without a mel)."""
    if not config.mel_channels:
        return {}
    hop = config.mel.hop_length
    return {"gather_s": gather_hops * hop / config.sample_rate, "align": hop}


@dataclass(eq=False)
class ModelEntry:
    name: str
    path: Path
    status: str = "loading"
    error: str | None = None
    config: object = None
    speakers: list[str] | None = None
    engine: Engine | None = None
    backend: str | None = None
    device: str | None = None
    precision: str | None = None

    def info(self) -> ModelInfo:
        cfg = self.config
        out = ModelInfo(name=self.name, status=self.status, error=self.error)
        if cfg is not None:
            out.sample_rate, out.receptive_field = cfg.sample_rate, cfg.receptive_field
            out.conditioning = (["mel"] if cfg.mel_channels else []) + (
                ["speaker"] if cfg.num_speakers else [])
            out.mel_channels, out.num_speakers = cfg.mel_channels, cfg.num_speakers
            out.hop_length = cfg.mel.hop_length if cfg.mel_channels else None
            out.features = cfg.features.kind if cfg.mel_channels else None
            out.speakers = self.speakers
            out.voices = text_voices() if cfg.mel_channels else []
            out.backend, out.device = self.backend, self.device
            out.precision = self.precision
            out.max_streams = self.engine.runner.num_slots if self.engine else None
        return out


def text_voices() -> list[str]:
    """Names of the synthesizer voices installed here (the text path's front end)."""
    from wavenet_core.text.voices import available_voices

    return [v.name for v in available_voices()]


def _load(path: Path, backend_name: str, device: str, precision: str = "auto"):
    """Blocking: checkpoint -> (model, backend, speaker names). Raises CheckpointError."""
    from wavenet_core.generation.precision import recorded_costs
    from wavenet_core.generation.registry import make_backend
    from wavenet_core.model.checkpoint import load_checkpoint, read_metadata, speaker_names

    model = load_checkpoint(path, "cpu")
    speakers = speaker_names(path, model.config.num_speakers)
    if speakers is None and read_metadata(path).get("speakers"):
        log.warning("%s: ignoring 'speakers' metadata (not a JSON list of %d unique names)",
                    path.name, model.config.num_speakers)
    backend = make_backend(model, backend_name, device, precision, recorded_costs(path))
    backend.warmup()
    log.info("%s: backend %s on %s, precision %s", path.name, backend.name, backend.device,
             getattr(backend, "precision", "fp32"))
    return model, backend, speakers


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.metrics = Metrics()
        self.models: dict[str, ModelEntry] = {}
        self.loaded = False
        self.draining = False
        self._load_task: asyncio.Task | None = None
        # decoding, mel analysis and text rendering: bounded threads, and never more work
        # queued for them than the queues have places (each job holds one first)
        self._prepare = ThreadPoolExecutor(settings.prepare_workers,
                                           thread_name_prefix="prepare")

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        for path in self.settings.checkpoint_paths():
            name = path.name.removesuffix(".safetensors")
            if name in self.models:
                log.error("%s: a model named %r is already loaded; skipped", path, name)
                continue
            self.models[name] = ModelEntry(name=name, path=path)
        self._count_models()
        self._load_task = asyncio.create_task(self._load_all(), name="load-models")

    async def _load_all(self) -> None:
        if self.settings.torch_threads:
            import torch

            torch.set_num_threads(self.settings.torch_threads)
        for entry in list(self.models.values()):
            await self._load_one(entry)
            self._count_models()
        self.loaded = True
        ready = [e.name for e in self.models.values() if e.status == "ready"]
        log.info("models ready: %s", ", ".join(ready) or "none")

    async def _load_one(self, entry: ModelEntry) -> None:
        from wavenet_core.model.checkpoint import CheckpointError

        s = self.settings
        try:
            model, backend, speakers = await asyncio.to_thread(_load, entry.path, s.backend,
                                                               s.device, s.precision)
            entry.config, entry.speakers = model.config, speakers
            entry.backend, entry.device = backend.name, str(backend.device)
            entry.precision = getattr(backend, "precision", None)
            runner = Runner(entry.name, backend, model.config, s.max_streams, model.cond_net)
            scheduler = Scheduler(
                s.max_streams, s.max_waiting, chunk_size=s.chunk_size,
                first_chunk_size=s.first_chunk_size, min_chunk_size=s.min_chunk_size,
                chunk_target_s=s.chunk_target_ms / 1000,
                first_target_s=s.first_chunk_target_ms / 1000, per_client=s.client_cap(),
                **_mel_pacing(model.config, s.mel_gather_hops))
            for timing in await runner.call(runner.warmup, s.warmup_samples):
                scheduler.cost.observe(*timing)
            entry.engine = Engine(entry.name, runner, scheduler, self.metrics,
                                  sample_rate=model.config.sample_rate,
                                  buffer_chunks=s.stream_buffer_chunks,
                                  slow_client_s=s.slow_client_seconds)
            entry.engine.start()
            entry.status = "ready"
            log.info("model %s ready (%s on %s)", entry.name, entry.backend, entry.device)
        except CheckpointError as exc:
            entry.status = "failed"
            entry.error = str(exc).replace(exc.path, Path(exc.path).name)
            log.error("model %s failed to load: %s", entry.name, exc)
        except Exception as exc:
            entry.status = "failed"
            entry.error = f"{type(exc).__name__}: {exc}".replace(str(entry.path), entry.path.name)
            log.exception("model %s failed to load", entry.name)

    def _count_models(self) -> None:
        for status in ("loading", "ready", "failed"):
            n = sum(1 for e in self.models.values() if e.status == status)
            self.metrics.models.labels(status).set(n)

    async def drain(self, grace: float) -> None:
        """Stop admitting; give live streams `grace` seconds to finish; end the rest."""
        self.draining = True
        engines = [e.engine for e in self.models.values() if e.engine is not None]
        await asyncio.gather(*(engine.drain(grace) for engine in engines))

    async def close(self) -> None:
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            try:
                await self._load_task
            except asyncio.CancelledError:
                pass
        await self.drain(self.settings.shutdown_grace_seconds if not self.draining else 0)
        for entry in self.models.values():
            if entry.engine is not None:
                await entry.engine.stop()
        self._prepare.shutdown(wait=False, cancel_futures=True)
        await asyncio.sleep(0)   # let routes see their streams end before the loop goes

    # -- lookup --------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining"
        if not self.loaded:
            return False, "loading"
        if not any(e.status == "ready" for e in self.models.values()):
            return False, "no models loaded"
        return True, "ready"

    def default_vocoder(self) -> ModelEntry | None:
        """The first mel model in load order: what the OpenAI names tts-1 / tts-1-hd mean."""
        return next((e for e in self.models.values()
                     if e.status != "failed" and e.config is not None
                     and e.config.mel_channels), None)

    def aliases(self, entry: ModelEntry) -> list[str]:
        return list(OPENAI_ALIASES) if entry is self.default_vocoder() else []

    def resolve(self, name: str) -> str:
        """A model name, with the OpenAI aliases read as the default vocoder."""
        if name not in OPENAI_ALIASES or name in self.models:
            return name
        vocoder = self.default_vocoder()
        if vocoder is None:
            raise ApiError(404, "model_not_found", f"model: {name!r} names the default "
                           "vocoder, and no mel-conditioned model is loaded", field="model")
        return vocoder.name

    def get(self, name: str | None) -> ModelEntry:
        if self.draining:
            raise ApiError(503, "shutting_down", "the server is shutting down",
                           headers={"Retry-After": "5"})
        if name is None:
            if len(self.models) == 1:
                name = next(iter(self.models))
            else:
                raise ApiError(422, "invalid_request",
                               f"model: required when several models are served "
                               f"({', '.join(sorted(self.models))})", field="model")
        entry = self.models.get(name)
        if entry is None:
            raise ApiError(404, "model_not_found", f"model: no model named {name!r}; "
                           "see /v1/models", field="model")
        if entry.status == "loading":
            raise ApiError(503, "model_loading", f"model {name!r} is still loading",
                           field="model", headers={"Retry-After": "2"})
        if entry.status != "ready" or entry.engine is None:
            raise ApiError(503, "model_unavailable", f"model {name!r} failed to load: "
                           f"{entry.error}", field="model")
        return entry

    async def submit(self, req: SynthesisRequest, request_id: str, client: str = "",
                     max_seconds: float | None = None) -> tuple[ModelEntry, StreamHandle]:
        """Admit a request, then prepare it against its model: -> (entry, handle).
        Every transport (HTTP, WebSocket, Wyoming) comes in through here. The place in the
        queue comes first (or 503 / 429), so a refused request costs no preparation.
        `max_seconds` overrides the setting (a long text spoken sentence by sentence)."""
        try:
            check_output(req.format, req.sample_rate)
        except FormatError as exc:
            raise ApiError(400, "unsupported_format", f"{exc.field}: {exc}",
                           field=exc.field) from None
        entry = self.get(req.model)
        handle = self._reserve(entry, request_id, client)
        max_seconds = max_seconds or self.settings.max_seconds
        try:
            if req.mel is not None or req.audio is not None or req.text is not None:
                job = await self.prepare(build_job, req, entry, max_seconds)
            else:
                job = build_job(req, entry, max_seconds)
        except BaseException:
            handle.cancel()
            raise
        if handle.finished:                  # shed from the queue while it was prepared
            raise shed_error(entry.name)
        job.first_samples = resolve_output(req.format, req.sample_rate,
                                           entry.config.sample_rate).first_samples
        entry.engine.attach(handle, job)
        return entry, handle

    async def prepare(self, fn, *args):
        """Run CPU-bound preparation (decoding, the text synthesizer) on the bounded pool."""
        return await asyncio.get_running_loop().run_in_executor(self._prepare, fn, *args)

    def _reserve(self, entry: ModelEntry, request_id: str, client: str) -> StreamHandle:
        try:
            return entry.engine.reserve(request_id, client)
        except Overloaded as exc:
            if exc.flooding:
                raise shed_error(entry.name) from None
            raise ApiError(503, "overloaded", f"model {entry.name!r} has "
                           f"{self.settings.max_waiting} requests waiting already; retry "
                           "later", headers={"Retry-After": "1"}) from None
        except TooManyStreams:
            raise ApiError(429, "too_many_streams", f"this client holds "
                           f"{self.settings.client_cap()} streams on model {entry.name!r} "
                           "already (WAVENET_MAX_STREAMS_PER_CLIENT); retry when one ends",
                           headers={"Retry-After": "1"}) from None
        except ShuttingDown:
            raise ApiError(503, "shutting_down", "the server is shutting down",
                           headers={"Retry-After": "5"}) from None


def shed_error(model: str) -> ApiError:
    return ApiError(429, "too_many_requests", f"model {model!r} is overloaded and this "
                    "client holds more than its share of it; retry later",
                    headers={"Retry-After": "2"})
