"""The engine alone: `backend.generate` on n slots in the benchmark's own process, on the
work a server did, as the ceiling the server is held to (benchmarks/load_ws.py,
benchmarks/mel_stream.py).

The backend is the one the server builds (`make_backend` with the checkpoint's recorded NLL
costs; WAVENET_PRECISION, as the server reads it, overrides). `auto` times the candidates
here, not in the server, and may pick another: pass `precision`, the server's own (its
/v1/models entry), to compare like with like. A mel-conditioned model gets mel frames, as
the server's runner sends them, and an excitation model coefficient rows.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class EngineAlone:
    """backend.generate on n slots in this process."""

    def __init__(self, checkpoint: Path, backend: str = "auto", device: str = "cpu",
                 precision: str | None = None):
        from wavenet_core.generation.precision import recorded_costs
        from wavenet_core.generation.registry import make_backend
        from wavenet_core.model.checkpoint import load_checkpoint

        model = load_checkpoint(checkpoint)
        self.config = model.config
        precision = precision or os.environ.get("WAVENET_PRECISION", "auto")
        self.backend = make_backend(model, backend, device, precision,
                                    recorded_costs(checkpoint))
        if hasattr(self.backend, "warmup"):
            self.backend.warmup()

    def run(self, n: int, samples: int, chunk: int = 4096) -> tuple[float, float]:
        """Make `samples` per slot on n slots in calls of `chunk` steps -> (wall seconds,
        CPU seconds of this process: every thread's)."""
        import numpy as np

        from wavenet_core.audio.lpc import timing_rows
        from wavenet_core.generation.mel_frames import MelFrames, frames_needed

        b, cfg = self.backend, self.config
        state = b.new_state(n)
        slots = list(range(n))
        for slot in slots:
            b.open_slot(state, slot, seed=slot)
        hop = cfg.mel.hop_length if cfg.mel_channels else 0
        rng = np.random.default_rng(0)

        def mel(k: int):
            if not hop:
                return None
            frames = rng.standard_normal((n, frames_needed(hop, k), cfg.mel_channels))
            return MelFrames(frames.astype(np.float32), np.zeros(n, np.int64), hop, k)

        def lpc(k: int) -> dict:
            """An excitation model's coefficient rows (the session's are made from the mel
            outside the kernel)."""
            return timing_rows(cfg, n, k)

        b.generate(state, slots, 16, mel(16), **lpc(16))
        t0, cpu0 = time.perf_counter(), time.process_time()
        done = 0
        while done < samples:
            k = min(chunk, samples - done)
            np.asarray(b.generate(state, slots, k, mel(k), **lpc(k)))
            done += k
        return time.perf_counter() - t0, time.process_time() - cpu0

    def samples_per_s(self, n: int, samples: int, chunk: int = 4096) -> float:
        """Aggregate samples per wall second making `samples` per slot on n slots."""
        return n * samples / self.run(n, samples, chunk)[0]
