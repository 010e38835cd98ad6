"""The fused training step's head and loss (fused.py): ReLU -> 1x1 -> ReLU -> 1x1 ->
mean cross-entropy as one autograd Function with its backward written out.

Why: through autograd the head's few products cost less than what surrounds them
(autocast copies, the logits' float32 copy, log-softmax and its backward, bias sums).
Here the loss and its gradient come from one pass over the logits (kernels.py), which
are in the products' type as in the plain path, whose loss reads them as float32.
"""

from __future__ import annotations

import numpy as np
import torch

from wavenet_core.training import buffers, kernels
from wavenet_core.training.kernels import numpy_view as _np


class HeadLoss(torch.autograd.Function):
    """skip [R, S] (products' type), head weights, targets [R] -> mean cross-entropy."""

    @staticmethod
    def forward(ctx, skip, w1, b1, w2, b2, targets):
        dt, rows, width = skip.dtype, skip.size(0), w1.size(0)
        act = torch.clamp_min(skip, 0, out=buffers.take(skip.shape, dt))
        hidden = torch.addmm(b1.to(dt), act, w1.to(dt).t(), out=buffers.take((rows, width), dt))
        hidden.relu_()
        logits = torch.mm(hidden, w2.to(dt).t(), out=buffers.take((rows, w2.size(0)), dt))
        grad = buffers.take(logits.shape, dt)
        ctx.grad_sum = torch.zeros(logits.size(1))
        total = kernels.cross_entropy(_np(logits), _np(b2.detach().float().contiguous()),
                                      _np(targets.contiguous()), np.float32(1.0 / rows),
                                      _np(grad), _np(ctx.grad_sum))
        buffers.give(logits)
        ctx.save_for_backward(act, hidden, grad, w1, w2)
        return torch.tensor(total / rows, dtype=torch.float32)

    @staticmethod
    def backward(ctx, g):
        act, hidden, grad, w1, w2 = ctx.saved_tensors
        dt = act.dtype
        d_b2 = ctx.grad_sum
        if float(g) != 1.0:
            grad.mul_(g.to(dt))
            d_b2 = d_b2 * g
        d_w2 = torch.mm(grad.t(), hidden).float()
        d_hidden = torch.mm(grad, w2.to(dt), out=buffers.take(hidden.shape, dt))
        torch.ops.aten.threshold_backward.grad_input(d_hidden, hidden, 0, grad_input=d_hidden)
        d_w1 = torch.mm(d_hidden.t(), act).float()
        d_b1 = d_hidden.sum(0, dtype=torch.float32)
        d_skip = torch.ops.aten.threshold_backward(torch.mm(d_hidden, w1.to(dt)), act, 0)
        buffers.give(act, hidden, grad, d_hidden)
        return d_skip, d_w1, d_b1, d_w2, d_b2, None
