"""The runner: one model's backend and batched GenerationState, stepped off the event loop.

`execute(plan)` runs in the runner's own single worker thread, so the state is only ever
touched by one thread and the event loop stays free while a chunk is generated. It frees
and opens slots, gathers each stream's mel conditioning for the chunk, generates K samples
for every stepping slot and returns each stream's PCM s16le bytes. A failure confined to one
stream (opening its slot, its conditioning, its generation: a failed batched call is
retried stream by stream) is returned in that stream's place and ends that request only.
A stream's mel rows for a chunk come from `conditioning_window` (`mel_window`, or the
model's learned upsampler on the chunk's own frames), whose rows do not depend on the
chunk's bounds, so a stream's audio does not depend on how it was chunked. A backend that
projects mel frames itself (`accepts_mel_frames`: the cpu and triton backends, the cpu one
only for models without a learned upsampler) gets the chunk's frames (`MelFrames`) instead
of the per-sample rows they interpolate to.
A model with a conditioning network (`cond_layers`) gets, for each chunk, its frames
conditioned one by one (`ConditioningNetwork.condition_frames`, the same values whatever the
chunk), the feed holding back the network's lookahead until the mel ends (mel_feed.py).
A model with pre-emphasis gets its decoded audio de-emphasized per slot, the filter state
carried from chunk to chunk (wavenet_core/audio/emphasis.py), so chunking still changes nothing.
An excitation model (docs/excitation.md) also gets each chunk's linear-prediction rows from
the stream's raw mel (`lpc.lpc_window`, rows that do not depend on the chunk).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from server.engine.prepare import Job
from server.engine.scheduler import Plan
from wavenet_core.audio.emphasis import Deemphasis
from wavenet_core.audio.lpc import lpc_window
from wavenet_core.audio.wav import float_to_pcm16
from wavenet_core.generation.mel_frames import MelFrames, frames_needed
from wavenet_core.generation.sampling import codes_to_audio
from wavenet_core.model.upsampler import conditioning_window


class Runner:
    def __init__(self, name: str, backend, config, num_slots: int, cond_net=None):
        self.name, self.backend, self.config, self.num_slots = name, backend, config, num_slots
        self.state = backend.new_state(num_slots)
        self.mels: dict[int, Job] = {}     # mel-conditioned streams by slot
        self.cond_frames: dict[int, dict] = {}  # their final conditioned frames, by slot
        self.deemphasis = Deemphasis(config.preemphasis, num_slots)
        self._frames = bool(getattr(backend, "accepts_mel_frames", False))
        self._upsampler = getattr(getattr(backend, "model", None), "upsampler", None)
        self._cond = cond_net or getattr(getattr(backend, "model", None), "cond_net", None)
        if config.cond_layers and self._cond is None:   # never stream unconditioned frames
            raise ValueError(f"cond_layers={config.cond_layers}: pass the model's cond_net")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"runner-{name}")

    async def execute(self, plan: Plan) -> list[bytes]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.execute_sync, plan)

    async def call(self, fn, *args):
        """Run `fn(*args)` on the runner's thread (warm-up, anything touching the state)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def execute_sync(self, plan: Plan) -> list[bytes | Exception]:
        """One step: free, open, generate. Returns each stepping stream's PCM bytes, or the
        exception that stream alone met (its slot, its conditioning or its generation):
        one stream's failure is not the others'."""
        failed: dict[int, Exception] = {}
        self._update_slots(plan, failed)
        if not plan.step or plan.num_steps < 1:
            return []
        k = plan.num_steps
        local = self._conditioning_windows(plan.step, k, failed)
        out = self._generate_isolated([s for s in plan.step if s.slot not in failed], k,
                                      local, failed)
        return [failed[s.slot] if s.slot in failed else out[s.slot] for s in plan.step]

    def _update_slots(self, plan: Plan, failed: dict[int, Exception]) -> None:
        """Free the leaving streams' slots and open the new ones' (a failure is recorded)."""
        for slot in plan.free:
            self.state.free_slot(slot)
            self.mels.pop(slot, None)
            self.cond_frames.pop(slot, None)
        for stream in plan.open:
            try:
                job: Job = stream.job
                self.backend.open_slot(self.state, stream.slot, speaker=job.speaker,
                                       seed=job.seed, temperature=job.temperature)
                self.deemphasis.reset(stream.slot)
                if job.mel_frames is not None:
                    self.mels[stream.slot] = job
                    self.cond_frames[stream.slot] = {}
            except Exception as exc:
                failed[stream.slot] = exc

    def _conditioning_windows(self, step: list, k: int, failed: dict[int, Exception]
                              ) -> dict[int, np.ndarray]:
        """Each mel stream's per-sample conditioning for this chunk, by slot."""
        local: dict[int, np.ndarray] = {}
        if not self.config.mel_channels:
            return local
        for s in step:
            if s.slot not in failed:
                try:
                    job = self.mels[s.slot]
                    args = self._mel_window(job.mel_frames, job.hop_length, s.produced, k,
                                            s.slot)
                    local[s.slot] = (MelFrames.window(*args) if self._frames
                                     else conditioning_window(self._upsampler, *args))
                except Exception as exc:
                    failed[s.slot] = exc
        return local

    def _mel_window(self, mel: np.ndarray, hop: int, start: int, k: int,
                    slot: int | None = None) -> tuple:
        """(mel, hop, start, k) for this chunk: with a conditioning network, the chunk's
        conditioned frames (frame by frame, condnet.condition_frames, each final frame
        computed once per stream: chunks share frames) and the start within them; the rest
        as they are."""
        if self._cond is None:
            return mel, hop, start, k
        first = start // hop
        cond = self._cond.condition_frames(mel, first, frames_needed(hop, k),
                                           self.cond_frames.get(slot))
        return cond, hop, start - first * hop, k

    def _generate_isolated(self, streams: list, k: int, local: dict[int, np.ndarray],
                           failed: dict[int, Exception]) -> dict[int, bytes]:
        """Generate k samples for every stream at once; if that fails, each alone, so the
        failure is pinned on its stream."""
        out: dict[int, bytes] = {}
        if not streams:
            return out
        try:
            out.update(zip([s.slot for s in streams], self._generate(streams, k, local)))
        except Exception as exc:
            if len(streams) == 1:
                failed[streams[0].slot] = exc
            else:
                # which stream? each alone (the batched call's partial work, if any, is
                # lost to the others: a glitch of at most k samples, not their end)
                for s in streams:
                    try:
                        out[s.slot] = self._generate([s], k, local)[0]
                    except Exception as alone:
                        failed[s.slot] = alone
        return out

    def _generate(self, streams: list, k: int, local: dict[int, np.ndarray]) -> list[bytes]:
        cond = None
        if self.config.mel_channels:
            rows = [local[s.slot] for s in streams]
            cond = MelFrames.stack(rows) if self._frames else np.stack(rows)
        codes = self.backend.generate(self.state, [s.slot for s in streams], k, cond,
                                      **self._lpc_rows(streams, k))
        audio = self.deemphasis(codes_to_audio(codes, self.config), [s.slot for s in streams])
        pcm = float_to_pcm16(audio)
        return [pcm[i, :min(k, s.remaining)].tobytes() for i, s in enumerate(streams)]

    def _lpc_rows(self, streams: list, k: int) -> dict:
        """An excitation model's linear-prediction rows for the chunk, from each stream's
        raw mel (`lpc.lpc_window`, as offline synthesis), as the `lpc` keyword; {} else."""
        if not self.config.lpc_excitation:
            return {}
        return {"lpc": np.stack([lpc_window(self.mels[s.slot].mel_frames, self.config,
                                            s.produced, k) for s in streams])}

    def warmup(self, num_samples: int) -> list[tuple[int, int, float]]:
        """Generate a little at batch 1 and at full batch; returns (batch, steps, seconds)
        measurements for the scheduler's cost model. Leaves every slot free."""
        timings = []
        if num_samples <= 0:
            return timings
        sizes = sorted({1, max(1, self.num_slots // 2), self.num_slots})
        m = self.config.mel_channels
        for i, n in enumerate(sizes):
            slots = list(range(n))
            for slot in slots:
                self.backend.open_slot(self.state, slot, seed=slot, temperature=1.0)
            steps = max(8, num_samples // n) if i else num_samples
            local = np.zeros((n, steps, m), np.float32) if m else None
            lpc = ({"lpc": np.zeros((n, steps, self.config.lpc_order), np.float32)}
                   if self.config.lpc_excitation else {})
            first = 4 if i == 0 else 1          # first call pays any compilation
            self.backend.generate(self.state, slots, first, None if local is None
                                  else local[:, :first], **{k: v[:, :first]
                                                            for k, v in lpc.items()})
            t0 = time.perf_counter()
            self.backend.generate(self.state, slots, steps, local, **lpc)
            timings.append((n, steps, time.perf_counter() - t0))
            for slot in slots:
                self.state.free_slot(slot)
        return timings
