"""The reference generator: recompute the whole receptive field for every new sample.

Slow by design (the baseline the fast backends are measured against) and simple enough
to trust: each sample is the last logit of a full forward over the latest
receptive_field inputs, zero-padded at the stream's start exactly like zeroed queues.
"""

from __future__ import annotations

import numpy as np
import torch

from wavenet_core.audio.mulaw import silence_code
from wavenet_core.generation.sampling import next_sample
from wavenet_core.model.wavenet import WaveNet


@torch.no_grad()
def naive_generate(model: WaveNet, num_samples: int, *, seed: int = 0,
                   temperature: float = 1.0, speaker: int = 0,
                   local: np.ndarray | None = None, progress=None) -> np.ndarray:
    """Generate `num_samples` codes from silence. `local` [num_samples, M] per sample.
    Scalar-output models give 16-bit PCM codes and feed back the unrounded sample."""
    device = next(model.parameters()).device
    field, config = model.receptive_field, model.config
    inputs = [0.0 if config.scalar_io else silence_code(config.classes)]
    local_t = None if local is None else torch.as_tensor(local, dtype=torch.float32,
                                                         device=device)
    spk = torch.tensor([speaker], device=device) if model.speaker_embedding is not None else None
    seed_t = torch.tensor([seed])
    temp_t = torch.tensor([float(temperature)])
    out = np.empty(num_samples, dtype=np.int64)
    for n in range(num_samples):
        window = torch.tensor(inputs[-field:], device=device,
                              dtype=torch.float32 if config.scalar_io else torch.int64)[None]
        cond = None
        if local_t is not None:
            cond = local_t[max(0, n + 1 - window.size(1)):n + 1].T.unsqueeze(0)
        logits = model(window, cond, spk, pad=True)[:, :, -1].cpu()
        fed, code = next_sample(logits, config, temp_t, seed_t, torch.tensor([n]))
        out[n] = int(code[0])
        inputs.append(fed[0].item())
        if progress is not None:
            progress(1)
    return out
