"""A generation session: slots of one backend's state, each fed by its own mel source.

Every caller generates through this: `wavenet generate` and `synthesize()` (one slot), and
the server's runner (many slots, one thread). Per slot it keeps the stream's `MelSource`
and position, the conditioning network's cache of final frames, and the de-emphasis
filter's state; per chunk it turns the source's frames into the backend's conditioning,
generates and decodes. Nothing here depends on how the stream is chunked: a chunk's
conditioning rows depend only on sample positions (docs/architecture.md section 4), the
conditioning network computes each frame alone (`condition_frames`), and de-emphasis
carries its state, so a stream's samples are bitwise the same for any chunking and for a
mel streamed in or sent whole. An excitation model (docs/excitation.md) also gets each
chunk's linear-prediction rows from the slot's raw mel (`lpc.lpc_window`: a row depends on
its sample and one frame, each frame computed once per stream), and a stream that samples
voicing-shaped (docs/voicing.md: its model sets it and it was opened without a
temperature) its (temperature, floor) rows the same way (`shaping.shaping_window`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wavenet_core.audio.emphasis import Deemphasis
from wavenet_core.audio.lpc import lpc_window
from wavenet_core.audio.wav import float_to_pcm16
from wavenet_core.generation.conditioning import MelSource, WholeMel, mel_from_audio
from wavenet_core.generation.mel_frames import MelFrames, frames_needed
from wavenet_core.generation.sampling import codes_to_audio
from wavenet_core.generation.shaping import plain_rows, shaping_window, wants_shaping
from wavenet_core.model.upsampler import conditioning_window


@dataclass
class _Slot:
    """One open stream: its mel, how far it has got, and its per-stream frame caches."""

    mel: MelSource | None
    position: int = 0
    cond_frames: dict = field(default_factory=dict)   # conditioning network's final frames
    lpc_frames: dict = field(default_factory=dict)    # an excitation model's coefficients
    voicing_frames: dict | None = None                # voicing-shaped: its frames; else None


class GenerationSession:
    def __init__(self, backend, num_slots: int, cond_net=None, config=None):
        self.backend, self.num_slots = backend, num_slots
        self.config = config if config is not None else backend.config
        model = getattr(backend, "model", None)
        self._upsampler = getattr(model, "upsampler", None)
        self._cond = cond_net or getattr(model, "cond_net", None)
        if self.config.cond_layers and self._cond is None:   # never unconditioned frames
            raise ValueError(f"cond_layers={self.config.cond_layers}: pass the model's "
                             "cond_net")
        # a backend that projects mel frames itself gets the chunk's frames, not rows
        self._frames = bool(getattr(backend, "accepts_mel_frames", False))
        self.deemphasis = Deemphasis(self.config.preemphasis, num_slots)
        self.state = backend.new_state(num_slots)
        self.slots: dict[int, _Slot] = {}

    def open(self, slot: int, *, seed: int = 0, temperature: float | None = None,
             speaker: int = 0, mel: MelSource | None = None) -> None:
        """Start a stream in `slot`. `temperature` None: the model's default sampling
        (temperature 1, voicing-shaped where the model sets it); a number: that
        temperature for every sample, unshaped (docs/voicing.md)."""
        shaped = wants_shaping(self.config, temperature)
        if shaped and mel is None:
            raise ValueError("voicing-shaped sampling reads the mel: open the slot with one, "
                             "or give a temperature")
        self.backend.open_slot(self.state, slot, speaker=speaker, seed=seed,
                               temperature=1.0 if temperature is None else temperature)
        self.deemphasis.reset(slot)
        self.slots[slot] = _Slot(mel, voicing_frames={} if shaped else None)

    def free(self, slot: int) -> None:
        self.state.free_slot(slot)
        self.slots.pop(slot, None)

    def conditioning(self, slot: int, count: int):
        """The slot's conditioning for its next `count` samples: per-sample rows
        [count, M], or the chunk's frames (`MelFrames`) for a backend that takes them;
        None for a model without a mel."""
        batch = self.batch_conditioning([slot], count)
        return batch if batch is None or isinstance(batch, MelFrames) else batch[0]

    def batch_conditioning(self, slots: list[int], count: int):
        """Every slot's conditioning for its next `count` samples as one batch: the
        chunk's frames (`MelFrames`, written straight into the batch's array) for a
        backend that takes them, else per-sample rows [len(slots), count, M]; None for a
        model without a mel. A slot's rows are bitwise its `conditioning` alone."""
        if not self.config.mel_channels:
            return None
        hop = self.config.mel.hop_length
        mels, starts = [], []
        for slot in slots:
            stream = self.slots[slot]
            if stream.mel is None:
                raise ValueError("this model is mel conditioned: open the slot with a mel")
            mel, start = stream.mel.frames, stream.position
            if self._cond is not None:
                # the chunk's frames conditioned one by one (each final frame once per stream)
                first = start // hop
                mel = self._cond.condition_frames(mel, first, frames_needed(hop, count),
                                                  stream.cond_frames)
                start -= first * hop
            mels.append(mel)
            starts.append(start)
        if self._frames:
            return MelFrames.windows(mels, hop, starts, count)
        return np.stack([conditioning_window(self._upsampler, mel, hop, start, count)
                         for mel, start in zip(mels, starts)])

    def generate(self, slots: list[int], count: int, conditioning: list | None = None
                 ) -> np.ndarray:
        """`count` more samples for each slot -> float32 audio [len(slots), count]
        (decoded, de-emphasized). `conditioning[i]` is slot i's: from `conditioning`, or
        per-sample rows [count, M] computed beforehand; None: the session makes every
        slot's at once (`batch_conditioning`)."""
        cond = None
        if conditioning is None:
            cond = self.batch_conditioning(slots, count)
        elif self.config.mel_channels:
            frames = all(isinstance(c, MelFrames) for c in conditioning)
            cond = MelFrames.stack(conditioning) if frames else np.stack(conditioning)
        codes = self.backend.generate(self.state, slots, count, cond,
                                      **self._lpc_rows(slots, count),
                                      **self._shaping_rows(slots, count))
        for slot in slots:
            self.slots[slot].position += count
        return self.deemphasis(codes_to_audio(codes, self.config), slots)

    def _lpc_rows(self, slots: list[int], count: int) -> dict:
        """An excitation model's coefficient rows [len(slots), count, order] for the chunk,
        as the backend's `lpc` keyword; {} for other models."""
        if not self.config.lpc_excitation:
            return {}
        rows = []
        for slot in slots:
            stream = self.slots[slot]
            if stream.mel is None:
                raise ValueError("an excitation model (excitation 'lpc') predicts from the "
                                 "mel: open the slot with one")
            rows.append(lpc_window(stream.mel.frames, self.config, stream.position, count,
                                   stream.lpc_frames))
        return {"lpc": np.stack(rows)}

    def _shaping_rows(self, slots: list[int], count: int) -> dict:
        """The chunk's (temperature, floor) rows [len(slots), count, 2] as the backend's
        `shaping` keyword when a slot samples voicing-shaped (the others get their own
        temperature and no floor: the same samples as without rows); {} otherwise."""
        streams = [self.slots[slot] for slot in slots]
        if all(stream.voicing_frames is None for stream in streams):
            return {}
        rows = [plain_rows(float(self.state.temperature[slot]), count)
                if stream.voicing_frames is None
                else shaping_window(stream.mel.frames, self.config, stream.position, count,
                                    stream.voicing_frames)
                for slot, stream in zip(slots, streams)]
        return {"shaping": np.stack(rows)}

    def warm(self, slot: int = 0) -> None:
        """One hop through `slot` (then freed) with a short mel and the model's own
        sampling, so the per-chunk numba code outside the backend's kernel (an excitation
        model's LPC rows, voicing-shaped rows: audio/frame_analysis.py) compiles or loads
        here and not in the first request: ~3.5 CPU-s in the runner's thread on a fresh
        numba cache (issue 32, docs/performance.md "The kernel stalls"). Without mel,
        nothing to do."""
        cfg = self.config
        if not cfg.mel_channels:
            return
        hop = cfg.mel.hop_length
        t = np.arange(8 * hop) / cfg.sample_rate
        audio = sum(np.sin(2 * np.pi * 150 * h * t) / h for h in range(1, 6)) * 0.1
        self.open(slot, mel=WholeMel(mel_from_audio(audio, cfg), cfg))
        try:
            self.generate([slot], hop)
        finally:
            self.free(slot)

    def generate_pcm(self, slots: list[int], count: int, conditioning: list | None = None
                     ) -> np.ndarray:
        """As `generate`, as 16-bit PCM [len(slots), count]."""
        return float_to_pcm16(self.generate(slots, count, conditioning))


def synthesize(backend, num_samples: int, *, seed: int = 0,
               temperature: float | None = None, speaker: int = 0, mel: np.ndarray | None = None,
               local: np.ndarray | None = None, chunk: int = 4000, cond_net=None,
               progress=None) -> np.ndarray:
    """One stream of `num_samples` -> float32 audio in [-1, 1]: a one-slot session.

    The conditioning is the log-mel `mel` [frames, n_mels] (conditioned chunk by chunk, as
    the server does), or per-sample rows `local` [num_samples, n_mels] computed beforehand
    (`conditioning.local_from_mel`). `temperature` None samples as the model's default
    (voicing-shaped where it sets it, which needs `mel`). `progress(n)` is called after
    each chunk.
    """
    if mel is not None and local is not None:
        raise ValueError("give mel or local, not both")
    session = GenerationSession(backend, 1, cond_net)
    source = WholeMel(mel, backend.config) if mel is not None else None
    session.open(0, seed=seed, temperature=temperature, speaker=speaker, mel=source)
    audio = np.empty(num_samples, dtype=np.float32)
    for start in range(0, num_samples, chunk):
        k = min(chunk, num_samples - start)
        cond = [local[start:start + k]] if local is not None else None   # None: the mel's
        audio[start:start + k] = session.generate([0], k, cond)[0]
        if progress is not None:
            progress(k)
    return audio
