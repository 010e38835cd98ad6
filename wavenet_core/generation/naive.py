"""The reference generator: recompute the whole receptive field for every new sample.

Slow by design (the baseline the fast backends are measured against) and simple enough
to trust: each sample is the last logit of a full forward over the latest
receptive_field inputs, zero-padded at the stream's start exactly like zeroed queues.
An excitation model's inputs are its samples: the forward gets their mu-law codes and
each position's linear prediction, recomputed from the samples (lpc.prediction).
"""

from __future__ import annotations

import numpy as np
import torch

from wavenet_core.audio.lpc import prediction
from wavenet_core.audio.mulaw import mulaw_encode_exact, silence_code
from wavenet_core.generation.sampling import next_sample
from wavenet_core.model.wavenet import WaveNet


@torch.no_grad()
def naive_generate(model: WaveNet, num_samples: int, *, seed: int = 0,
                   temperature: float = 1.0, speaker: int = 0,
                   local: np.ndarray | None = None, lpc: np.ndarray | None = None,
                   shaping: np.ndarray | None = None, progress=None) -> np.ndarray:
    """Generate `num_samples` codes from silence. `local` [num_samples, M] per sample, an
    excitation model's `lpc` [num_samples, lpc_order] coefficient rows per sample,
    `shaping` [num_samples, 2] each sample's (temperature, floor) (generation/shaping.py).
    Scalar-output and excitation models give 16-bit PCM codes and feed back the unrounded
    sample."""
    device = next(model.parameters()).device
    field, config = model.receptive_field, model.config
    values = config.scalar_io or config.lpc_excitation
    inputs = [0.0 if values else silence_code(config.classes)]
    local_t = None if local is None else torch.as_tensor(local, dtype=torch.float32,
                                                         device=device)
    spk = torch.tensor([speaker], device=device) if model.speaker_embedding is not None else None
    seed_t = torch.tensor([seed])
    temp_t = torch.tensor([float(temperature)])
    out = np.empty(num_samples, dtype=np.int64)
    for n in range(num_samples):
        window = torch.tensor(inputs[-field:], device=device,
                              dtype=torch.float32 if values else torch.int64)[None]
        cond = None
        if local_t is not None:
            cond = local_t[max(0, n + 1 - window.size(1)):n + 1].T.unsqueeze(0)
        pred = None
        if config.lpc_excitation:   # input i predicts sample i (the first input is silence)
            x = np.array(inputs + [0.0], np.float32)     # + the sample being made
            p_all = prediction(x, np.concatenate([np.zeros((1, config.lpc_order), np.float32),
                                                  np.asarray(lpc[:n + 1], np.float32)]))
            pred = torch.from_numpy(p_all[1:][-field:]).to(device)[None]
            window = mulaw_encode_exact(window, config.classes)
        logits = model(window, cond, spk, pad=True, prediction=pred)[:, :, -1].cpu()
        p = None if pred is None else pred[:, -1].cpu()
        floor = None
        if shaping is not None:
            temp_t, floor = (torch.tensor([float(v)]) for v in shaping[n])
        fed, code = next_sample(logits, config, temp_t, seed_t, torch.tensor([n]), p, floor)
        out[n] = int(code[0])
        inputs.append(fed[0].item())
        if progress is not None:
            progress(1)
    return out
