"""Single-stream synthesis on any backend, and conditioning from a mel or from audio.

The server batches many streams itself; this is the one-stream path for the CLI,
benchmarks and quality reports, and the place that says how a mel becomes per-sample
conditioning: F frames give F * hop_length samples (the HiFi-GAN convention).
"""

from __future__ import annotations

import numpy as np

from wavenet_core.audio.emphasis import deemphasize
from wavenet_core.audio.lpc import lpc_window
from wavenet_core.audio.mel import log_mel, ready_samples
from wavenet_core.generation.sampling import codes_to_audio
from wavenet_core.model.config import WaveNetConfig
from wavenet_core.model.upsampler import conditioning_window


def mel_num_samples(frames: int, config: WaveNetConfig) -> int:
    """F whole frames -> F * hop_length samples (`ready_samples` of a finished mel)."""
    return ready_samples(int(frames), config.mel.hop_length, final=True)


def check_mel(mel: np.ndarray, config: WaveNetConfig) -> np.ndarray:
    """Validate a [frames, n_mels] log-mel for this model -> contiguous float32.

    Raises ValueError with a message a client can act on (the server names the field).
    """
    if not config.local_conditioning:
        raise ValueError("this model is not mel conditioned")
    mel = np.asarray(mel)
    channels = config.mel_channels
    if mel.ndim != 2:
        raise ValueError(f"must be 2-D [frames][{channels}], got shape {list(mel.shape)}")
    frames, width = mel.shape
    if width != channels:
        hint = " (transposed?)" if frames == channels else ""
        raise ValueError(f"each frame must have {channels} values for this model, "
                         f"got {width}{hint}")
    if frames < 1:
        raise ValueError("needs at least one frame")
    mel = np.ascontiguousarray(mel, dtype=np.float32)
    if not np.isfinite(mel).all():
        raise ValueError("contains NaN or infinite values")
    return mel


def local_from_mel(mel: np.ndarray, config: WaveNetConfig, upsampler=None,
                   cond_net=None) -> np.ndarray:
    """[frames, n_mels] log-mel -> per-sample conditioning [frames * hop, n_mels]
    (through the model's learned `upsampler` when it has one, see upsampler.py; the mel
    first through its conditioning network `cond_net` when it has one, condnet.py).

    A model with `cond_layers` > 0 must pass its `cond_net`: raw frames would be wrong."""
    mel = check_mel(mel, config)
    if config.cond_layers:
        if cond_net is None:
            raise ValueError(f"this model has a conditioning network (cond_layers="
                             f"{config.cond_layers}): pass the model's cond_net")
        mel = cond_net.condition_mel(mel)
    return conditioning_window(upsampler, mel, config.mel.hop_length, 0,
                               mel_num_samples(len(mel), config))


def mel_from_audio(audio: np.ndarray, config: WaveNetConfig) -> np.ndarray:
    """Analyse audio (already at the model's rate) with the model's own mel frontend."""
    return log_mel(np.asarray(audio, dtype=np.float32), config.sample_rate, config.mel)


def synthesize(backend, num_samples: int, *, seed: int = 0, temperature: float = 1.0,
               speaker: int = 0, local: np.ndarray | None = None,
               mel: np.ndarray | None = None, chunk: int = 4000,
               progress=None) -> np.ndarray:
    """Generate one stream of `num_samples` -> float32 audio in [-1, 1] (backend.config
    says how its codes decode: mu-law, or 16-bit PCM for scalar-output models;
    a pre-emphasized model's audio is de-emphasized).

    `local` [num_samples, n_mels] is per-sample conditioning (see `local_from_mel`); an
    excitation model also needs the raw log-mel `mel`, each chunk's linear-prediction rows
    coming from `lpc.lpc_window` (as in the server's runner).
    `progress(n)` is called after each chunk with the samples it made.
    """
    config, frame_lpcs = backend.config, {}
    if config.lpc_excitation and mel is None:
        raise ValueError("an excitation model (excitation 'lpc') needs the raw log-mel `mel`")
    state = backend.new_state(1)
    backend.open_slot(state, 0, seed=seed, temperature=temperature, speaker=speaker)
    codes = np.empty(num_samples, dtype=np.int64)
    for start in range(0, num_samples, chunk):
        k = min(chunk, num_samples - start)
        cond = None if local is None else local[None, start:start + k]
        extra = ({"lpc": lpc_window(mel, config, start, k, frame_lpcs)[None]}
                 if config.lpc_excitation else {})
        codes[start:start + k] = backend.generate(state, [0], k, cond, **extra)[0]
        if progress is not None:
            progress(k)
    return deemphasize(codes_to_audio(codes, backend.config), backend.config.preemphasis)
