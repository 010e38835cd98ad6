"""Training data: utterances from a corpus manifest, and random teacher-forcing windows.

Each utterance is stored as mu-law codes, left-padded with `pad` samples of silence so
that every window start is valid and the model sees streams begin from silence, exactly
as generation does. Its log-mel is computed on the padded audio once; a window's
per-sample conditioning comes from `mel_window`, the same rows generation uses.

A window of `length` predictions starting at s holds inputs codes[s : s+R-1+length],
targets codes[s+R : s+R+length] and per-sample mel for samples s+1 .. s+R-1+length
(the mel of the sample each input predicts, see model.py).

A model with a conditioning network (`cond_layers`, condnet.py) conditions the frames
with weights that train, so its windows carry `frames` (a `FrameWindow`: the raw frames
the window needs, edge rule applied, and how its rows interpolate them) and no `local`;
`WaveNet.local_from_frame_window` makes the rows. The fused training step (fused.py) asks
for frames for every mel model (`frames=True`): it projects frames, not rows, and
`local_from_frame_window` gives the rows `mel_window` gives, bitwise, to the plain one.

An excitation model (`excitation` "lpc", docs/excitation.md) keeps per utterance the linear
prediction p of every sample from the mel's coefficients (`lpc.lpc_window`, the rows
generation uses) and the codes of the excitation x - p: its windows carry `prediction`
for samples s+1 .. s+R-1+length (aligned like `local`) and excitation targets. Inputs
stay the codes of x (of the audio, or a pack's codes decoded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavenet_core.audio.lpc import lpc_window
from wavenet_core.audio.mel import mel_window
from wavenet_core.audio.wav import read_wav
from wavenet_core.model.condnet import train_frame_window
from wavenet_core.model.config import WaveNetConfig
from wavenet_core.training.corpus import load_manifest
from wavenet_core.training.pack import load_pack_utterances
from wavenet_core.training.utterance import InputNoise, Utterance, make_utterance


@dataclass
class FrameWindow:
    frames: np.ndarray         # [B, n + context, n_mels] float32 raw log-mel
    left: np.ndarray           # [B, R-1+length] int64, into the n conditioned frames
    right: np.ndarray          # [B, R-1+length] int64
    weight: np.ndarray         # [B, R-1+length] float32

    @classmethod
    def concatenate(cls, windows: list[FrameWindow]) -> FrameWindow:
        return cls(*(np.concatenate([getattr(w, f) for w in windows])
                     for f in ("frames", "left", "right", "weight")))


@dataclass
class Batch:
    inputs: np.ndarray         # [B, R-1+length] int64
    targets: np.ndarray        # [B, length] int64
    local: np.ndarray | None   # [B, n_mels, R-1+length] float32 (None with `frames`)
    speaker: np.ndarray        # [B] int64
    frames: FrameWindow | None = None   # models with a conditioning network
    prediction: np.ndarray | None = None   # [B, R-1+length] float32 (excitation models)
    lpc: np.ndarray | None = None   # [B, R-1+length, order] float32: the coefficient rows
                                    # of `prediction` (fixed_batches(rows=True))

    @classmethod
    def concatenate(cls, batches: list[Batch]) -> Batch:
        """Batches of the same window length -> one."""
        def cat(name):
            parts = [getattr(b, name) for b in batches]
            if parts[0] is None:
                return None
            if isinstance(parts[0], FrameWindow):
                return FrameWindow.concatenate(parts)
            return np.concatenate(parts)
        return cls(*(cat(n) for n in ("inputs", "targets", "local", "speaker", "frames",
                                      "prediction", "lpc")))


def load_utterances(corpus_dir, split: str, config: WaveNetConfig, pad: int,
                    limit: int | None = None, progress=None,
                    noise: InputNoise | None = None) -> list[Utterance]:
    """Read `split` ('train' or 'valid') of a corpus folder, or of a pack (.npz, pack.py);
    `noise`: an excitation model's input noise (utterance.py)."""
    corpus_dir = Path(corpus_dir)
    if corpus_dir.suffix == ".npz":
        return load_pack_utterances(corpus_dir, split, config, pad, limit, noise)
    manifest = load_manifest(corpus_dir)
    items = [u for u in manifest["utterances"] if u["split"] == split][:limit]
    out = []
    for item in items:
        audio, _ = read_wav(corpus_dir / item["path"], sample_rate=config.sample_rate)
        out.append(make_utterance(audio, item["speaker_id"], config, pad, noise))
        if progress is not None:
            progress(1)
    return out


def mel_statistics(utterances: list[Utterance]) -> tuple[float, float]:
    """Mean and standard deviation of every log-mel value (the model's standardisation)."""
    values = np.concatenate([u.mel.reshape(-1) for u in utterances]).astype(np.float64)
    return float(values.mean()), float(values.std())


def sample_batch(utterances: list[Utterance], config: WaveNetConfig, batch_size: int,
                 length: int, rng: np.random.Generator, frames: bool = False) -> Batch:
    """Random windows, utterances drawn in proportion to their length (local conditioning
    as a FrameWindow with `frames`, see the module docstring)."""
    span = config.receptive_field + length
    usable = [u for u in utterances if len(u.codes) >= span]
    weights = np.array([len(u.codes) - span + 1 for u in usable], dtype=np.float64)
    picks = rng.choice(len(usable), size=batch_size, p=weights / weights.sum())
    starts = [int(rng.integers(0, len(usable[i].codes) - span + 1)) for i in picks]
    return _assemble([usable[i] for i in picks], starts, config, length, frames)


def fixed_batches(utterances: list[Utterance], config: WaveNetConfig, batch_size: int,
                  length: int, max_windows: int | None = None, rows: bool = False) -> list[Batch]:
    """Deterministic non-overlapping windows over every utterance (validation), the first
    `max_windows` of them when given; `rows`: an excitation model's windows also carry
    their coefficient rows (what a generation backend takes to teacher-force them)."""
    span = config.receptive_field + length
    chosen, starts = [], []
    for u in utterances:
        for start in range(0, len(u.codes) - span + 1, length):
            chosen.append(u)
            starts.append(start)
    if max_windows is not None:
        chosen, starts = chosen[:max_windows], starts[:max_windows]
    return [_assemble(chosen[i:i + batch_size], starts[i:i + batch_size], config, length,
                      rows=rows) for i in range(0, len(chosen), batch_size)]


def _assemble(utts: list[Utterance], starts: list[int], config: WaveNetConfig,
              length: int, frames: bool = False, rows: bool = False) -> Batch:
    field = config.receptive_field
    inputs = np.stack([u.codes[s:s + field - 1 + length] for u, s in zip(utts, starts)])
    targets = np.stack([(u.codes if u.targets is None else u.targets)[s + field:s + field + length]
                        for u, s in zip(utts, starts)])
    pred = lpc = None
    if config.lpc_excitation:
        pred = np.stack([u.prediction[s + 1:s + field + length] for u, s in zip(utts, starts)])
    if config.lpc_excitation and rows:
        lpc = np.stack([lpc_window(u.mel, config, s + 1, field - 1 + length)
                        for u, s in zip(utts, starts)])
    local = window = None
    if config.local_conditioning and (frames or config.cond_layers):
        parts = [train_frame_window(u.mel, config.cond_left_context, config.cond_lookahead,
                                    config.mel.hop_length, s + 1, field - 1 + length)
                 for u, s in zip(utts, starts)]
        window = FrameWindow(*(np.stack(p).astype(dtype) for p, dtype in
                               zip(zip(*parts), (np.float32, np.int64, np.int64, np.float32))))
    elif config.local_conditioning:
        local = np.stack([mel_window(u.mel, config.mel.hop_length, s + 1, field - 1 + length).T
                          for u, s in zip(utts, starts)]).astype(np.float32)
    speaker = np.array([u.speaker for u in utts], dtype=np.int64)
    return Batch(inputs.astype(np.int64), targets.astype(np.int64), local, speaker, window, pred,
                 lpc)
