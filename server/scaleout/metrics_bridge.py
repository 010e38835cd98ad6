"""Each replica's engine metrics, carried into Ray's metrics so Prometheus sees them all.

The app keeps its own prometheus_client registry (its /metrics answers for one replica
only: whichever the proxy picked). Once a second, the bridge reads that registry and
mirrors it into `ray.serve.metrics`, which adds `deployment`, `replica` and
`application` tags; Ray's metrics agent on every node exports them for Prometheus
(see docs/deployment.md, "Metrics"). Ray prefixes every name with `ray_`.

- counters: incremented by what the registry gained since the last pass;
- gauges: set to the registry's value;
- histograms: their `_bucket` (tag `le`), `_sum` and `_count` series mirrored as gauges
  holding the same cumulative values, so the names match the single-process server's
  (with `ray_`) and `histogram_quantile(0.5, sum by (le)
  (rate(ray_wavenet_time_to_first_audio_seconds_bucket[1m])))` is exact across replicas
  (re-observing into a Ray histogram would lose the exact sums).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry

log = logging.getLogger("wavenet.scaleout")

HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


class MetricsBridge:
    def __init__(self, registry: CollectorRegistry, interval_s: float = 1.0):
        self.registry, self.interval_s = registry, interval_s
        self._metrics: dict[str, object] = {}
        self._last: dict[tuple, float] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics-bridge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.sync()   # the last increments before the replica goes

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.sync()
            except Exception:   # a bad pass must not stop later ones
                log.exception("metrics bridge pass failed")

    def sync(self) -> None:
        """One pass: registry -> Ray metrics."""
        for family in self.registry.collect():
            for sample in family.samples:
                if family.type == "counter" and sample.name.endswith("_total"):
                    self._add(sample.name.removesuffix("_total"), sample)
                elif family.type == "gauge" or (family.type == "histogram"
                                                and sample.name.endswith(HISTOGRAM_PARTS)):
                    self._metric("gauge", sample.name, sample.labels).set(
                        sample.value, tags=sample.labels)

    def _add(self, name: str, sample) -> None:
        key = (name, tuple(sorted(sample.labels.items())))
        delta = sample.value - self._last.get(key, 0.0)
        self._last[key] = sample.value
        if delta > 0:
            self._metric("counter", name, sample.labels).inc(delta, tags=sample.labels)

    def _metric(self, kind: str, name: str, labels: dict):
        metric = self._metrics.get(name)
        if metric is None:
            from ray.serve import metrics

            cls = metrics.Gauge if kind == "gauge" else metrics.Counter
            metric = self._metrics[name] = cls(name, description=f"wavenet {kind} (mirrored)",
                                               tag_keys=tuple(sorted(labels)))
        return metric
