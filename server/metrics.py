"""Prometheus collectors, one registry per app (so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RTF_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0, 16.0, 64.0)
OCCUPANCY_BUCKETS = (0.0625, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("wavenet_requests", "Requests by route and status",
                                ["route", "status"], registry=r)
        self.live = Gauge("wavenet_live_streams", "Streams holding a generation slot",
                          ["model"], registry=r)
        self.waiting = Gauge("wavenet_waiting_streams", "Streams queued for a slot",
                             ["model"], registry=r)
        self.occupancy = Histogram("wavenet_batch_occupancy",
                                   "Fraction of a model's slots stepping in each engine step",
                                   ["model"], buckets=OCCUPANCY_BUCKETS, registry=r)
        self.steps = Histogram("wavenet_engine_step_seconds", "Wall time of one engine step",
                               ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.samples = Counter("wavenet_samples_generated", "Audio samples generated",
                               ["model"], registry=r)
        self.ttfa = Histogram("wavenet_time_to_first_audio_seconds",
                              "From request admission to its first audio chunk",
                              ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.rtf = Histogram("wavenet_real_time_factor",
                             "Wall time over audio duration per finished request (<1: faster "
                             "than real time)", ["model"], buckets=RTF_BUCKETS, registry=r)
        # set_function'd by the engine to its backend's `kernel_cpu_s` (the compiled CPU
        # backend's): the server's CPU less this is what it spends around the kernel
        self.kernel_cpu = Gauge("wavenet_kernel_cpu_seconds", "CPU seconds inside the "
                                "compiled kernel's calls so far, every thread's", ["model"],
                                registry=r)
        self.models = Gauge("wavenet_models", "Models by load status", ["status"], registry=r)
        # set_function'd by the app to server.wire.encoding.AudioOutput.live
        self.encoders = Gauge("wavenet_audio_encoders", "Open audio outputs (encoder and "
                              "resampler of a response)", registry=r)

    def observe_step(self, model: str, batch: int, slots: int, num_steps: int,
                     seconds: float) -> None:
        self.occupancy.labels(model).observe(batch / slots)
        self.steps.labels(model).observe(seconds)
        self.samples.labels(model).inc(batch * num_steps)

    def render(self) -> bytes:
        return generate_latest(self.registry)
