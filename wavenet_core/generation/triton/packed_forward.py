"""The teacher-forced forward over whole sequences from the packed weights, in float32 or
with the float16 roundings of the triton backend's fp16 path.

Why: the triton kernel's fp16 mode rounds the weights and every dot's input to float16
and accumulates in float32. On a CPU the same arithmetic is cheap to run over seconds of
held-out audio (and, under the interpreter, the kernel itself is far too slow for that),
so fp16's NLL cost is measured with this function; the tests check that the kernel's
fp16 logits equal `packed_forward(..., fp16=True)` up to float32 summation order (which
may tip a value on a float16 rounding boundary either way: ~1e-3 on the logits).
Sequences start from zeroed queues (the model's `pad=True`). `dtype=torch.float64` keeps
the same roundings but accumulates in float64: how far that moves the logits is the size
of the summation-order noise, the yardstick for kernel-vs-emulation differences.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from wavenet_core.generation.packing import PackedWeights


@torch.no_grad()
def packed_forward(w: PackedWeights, dilations, codes: torch.Tensor,
                   local: torch.Tensor | None = None, speaker: torch.Tensor | None = None,
                   fp16: bool = False, dtype: torch.dtype = torch.float32,
                   dot: Callable | None = None) -> torch.Tensor:
    """codes [B, T] (local [B, M, T] raw log-mel, speaker [B]) -> logits [B, classes, T].
    `dot(a, w)` computes every product a @ w.T of the layers and head (default: that;
    bench/tf32x3.py passes its emulated 3xTF32 dots)."""
    w = PackedWeights(**{k: None if v is None else v.to(dtype) for k, v in vars(w).items()})
    local = None if local is None else local.to(dtype)
    r = (lambda t: t.half().to(dtype)) if fp16 else (lambda t: t)
    mm = dot or (lambda a, b: a @ b.T)
    c = w.embedding.shape[1]
    x = w.embedding[codes]                                   # [B, T, C]
    length = x.shape[1]
    bias = w.gate_bias.unsqueeze(0)                          # [1 or B, L, 2C]
    if w.speaker_bias is not None:
        bias = bias + w.speaker_bias[speaker]
    mel = None if local is None else local.transpose(1, 2)   # [B, T, M]
    skip = 0.0
    for layer, d in enumerate(dilations):
        previous = torch.nn.functional.pad(x, (0, 0, d, 0))[:, :length]
        h = mm(r(torch.cat([previous, x], 2)), r(w.gate_weight[layer]))
        h = h + bias[:, layer].unsqueeze(1)
        if mel is not None:
            h = h + mel @ w.local_weight[layer].T
        z = torch.tanh(h[..., :c]) * torch.sigmoid(h[..., c:])
        out = mm(r(z), r(w.out_weight[layer]))
        x = x + out[..., :c]
        skip = skip + out[..., c:]
    hidden = torch.relu(mm(r(torch.relu(skip)), r(w.head_weight)) + w.head_bias)
    logits = mm(r(hidden), r(w.logits_weight)) + w.logits_bias
    return logits.transpose(1, 2)
