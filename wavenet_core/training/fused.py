"""The fast training step: `train.batch_loss`'s loss, computed with fewer, larger products.

Why: the plain forward (model/layers.py) is written for clarity and for generation's
priming; trained through autograd on a CPU, most of its time goes outside the matrix
products' arithmetic: casts and copies of every sliced layer input, zero-filled gradients
of every slice, a product of the mel with every layer's weights at every sample, one skip
product and one addition per layer, and separate passes for each elementwise step. Here the
residual stack is one autograd Function (`ResidualStack`) whose backward is written out:

- activations run time-major, [T, B, C], so a dilated tap `x[t - d]` of the whole batch is
  a contiguous block of rows: the products read views, never copies;
- local conditioning is projected per frame, not per sample: a window's rows interpolate
  its frames linearly, and a product commutes with that, so each layer adds the
  interpolated projections of ~20 frames (kernels.py) instead of multiplying 5,000 rows;
- only the last `W` (output) rows of a layer's skip reach the head: only those rows of z
  are multiplied by the skip weights, accumulating into one skip sum (in bfloat16, as the
  plain path sums its skips);
- the last layer's residual output, which nothing reads, is not computed (its weights get
  no gradient, as in the plain path);
- the passes between products (gate, bias, conditioning, residual add and cast, and their
  gradients) are one numba pass each (kernels.py);
- work buffers are kept between steps (buffers.py), not faulted in afresh.

The head and the loss are one Function too (fused_head.py); input vectors, conditioning
network and frame projections run through autograd. The weights stay the model's
parameters (checkpoint and optimizer files are unchanged). With bfloat16 the products
take bfloat16 operands as autocast gives them and the residual stream stays float32, as
in the plain path. Figures: benchmarks/train_speed.py, docs/training.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from wavenet_core.model.wavenet import WaveNet
from wavenet_core.training import buffers, kernels
from wavenet_core.training.fused_head import HeadLoss
from wavenet_core.training.kernels import numpy_view

PER_LAYER = 5   # taps side by side, bias, speaker bias, residual weight, residual bias


class StackSpec(NamedTuple):
    dilations: tuple[int, ...]
    kernel_size: int
    out_steps: int         # W: the time steps the head reads (the last W)
    residual_scale: float
    dtype: torch.dtype     # the products' operand type (bfloat16 or float32)


class _Window(NamedTuple):
    """Local and speaker conditioning as kernels.py reads them (zeros for a model without)."""
    proj: np.ndarray      # [B, F, layers * 2G] float32 frame projections
    left: np.ndarray      # [B, n] int64 frame index per window position
    right: np.ndarray
    weight: np.ndarray    # [B, n] float32
    spk: list             # per layer [B, 2G] float32 speaker biases


def _layer_forward(spec, x, xb, window, group, index, skip, skip_w):
    """One layer. x: its input stream [L_in*B, C] float32 (rows t*B + b), xb: the same in
    the products' type. Returns what its backward needs and the next layer's (x, xb), or
    None after the last layer."""
    taps, bias, spk_bias, res_w, res_b = group
    dt, k, shift = spec.dtype, spec.kernel_size, spec.dilations[index] * window.left.shape[0]
    channels, gate = x.size(1), bias.size(0) // 2
    rows = x.size(0) - (k - 1) * shift
    w = taps.detach().to(dt)
    pre = torch.mm(xb[(k - 1) * shift:], w[k - 1].t(), out=buffers.take((rows, 2 * gate), dt))
    for j in range(k - 1):
        pre.addmm_(xb[j * shift:j * shift + rows], w[j].t())
    t, s, z = (buffers.take((rows, gate), dt) for _ in range(3))
    kernels.gate_forward(numpy_view(pre), numpy_view(bias), window.proj, index * 2 * gate,
                         window.left, window.right, window.weight,
                         window.left.shape[1] - rows // window.left.shape[0], window.spk[index],
                         numpy_view(t), numpy_view(s), numpy_view(z))
    buffers.give(pre)
    tail = z[rows - skip.size(0):]          # the rows the head reads: this layer's skip
    weight = skip_w[:, index * gate:(index + 1) * gate].t()
    if index == 0:
        torch.mm(tail, weight, out=skip)
    else:
        skip.addmm_(tail, weight)
    kept = (xb, t, s, z)
    if res_w is None:
        return kept, None
    r = torch.mm(z, res_w.detach().to(dt).t(), out=buffers.take((rows, channels), dt))
    nxt = buffers.take((rows, channels))
    nxt_low = buffers.take((rows, channels), dt)
    kernels.residual_forward(numpy_view(x[x.size(0) - rows:]), numpy_view(r),
                             numpy_view(None if res_b is None else res_b, numpy_view(bias)),
                             np.float32(spec.residual_scale), numpy_view(nxt),
                             numpy_view(nxt_low))
    buffers.give(r)
    return kept, (nxt, nxt_low)


def _layer_backward(spec, ctx, index, g_res, g_skip, g_skip_t, d_skip_w, g_proj):
    """One layer's backward. g_res: (gradient of its output stream times the residual
    scale [L*B, C] float32, the same in the products' type), None for the last layer;
    g_proj: the frame projections' gradient [B, F, layers * 2G], added into.
    Returns the weight gradients and the next (lower) layer's g_res pair (for layer 0:
    the gradient of x0)."""
    taps, bias, spk_bias, res_w, res_b = ctx.groups[index]
    xb, t, s, z = ctx.layers[index]
    dt, k = spec.dtype, spec.kernel_size
    rows, gate = z.shape
    window = ctx.window
    batch = window.left.shape[0]
    shift = spec.dilations[index] * batch
    dz = torch.mm(g_skip, ctx.skip_w_low[:, index * gate:(index + 1) * gate],
                  out=buffers.take((g_skip.size(0), gate), dt))
    d_skip_w[:, index * gate:(index + 1) * gate] = torch.mm(g_skip_t, z[rows - dz.size(0):])
    gz = d_res_w = d_res_b = None
    if g_res is not None:
        gz = torch.mm(g_res[1], res_w.detach().to(dt), out=buffers.take((rows, gate), dt))
        d_res_w = torch.mm(g_res[1].t(), z).float()
        d_res_b = None if res_b is None else g_res[0].sum(0)
    gpre = buffers.take((rows, 2 * gate), dt)
    kernels.gate_backward(numpy_view(gz, numpy_view(dz)), numpy_view(dz), numpy_view(t),
                          numpy_view(s), numpy_view(gpre), numpy_view(g_proj),
                          index * 2 * gate, window.left, window.right, window.weight,
                          window.left.shape[1] - rows // batch)
    # each row's weights on its two frames sum to one: the bias and speaker-bias
    # gradients are sums of the frame projections' over frames (and windows)
    d_spk = g_proj[:, :, index * 2 * gate:(index + 1) * 2 * gate].sum(1)
    d_bias = d_spk.sum(0)
    buffers.give(dz, gz)
    w = taps.detach().to(dt)
    d_taps = torch.stack([torch.mm(gpre.t(), xb[j * shift:j * shift + rows])
                          for j in range(k)]).float()
    g_taps = buffers.take((k, rows, xb.size(1)), dt)
    for j in range(k):
        torch.mm(gpre, w[j], out=g_taps[j])
    # layer 0's input gradient goes to autograd: a tensor of its own, not a kept buffer
    g_in = torch.empty(xb.shape) if index == 0 else buffers.take(xb.shape)
    g_in_low = buffers.take(xb.shape, dt)
    scale = 1.0 if index == 0 else spec.residual_scale
    kernels.stream_backward(numpy_view(None if g_res is None else g_res[0], numpy_view(g_in)),
                            numpy_view(g_taps), shift, np.float32(scale), numpy_view(g_in),
                            numpy_view(g_in_low))
    buffers.give(g_taps, gpre, t, s, z, *(g_res or ()))
    if index > 0:
        buffers.give(xb)    # (layer 0's is x0's cast, or x0 itself in float32)
    else:
        buffers.give(g_in_low)
    return [d_taps, d_bias, None if spk_bias is None else d_spk, d_res_w, d_res_b], \
        (g_in, g_in_low)


class ResidualStack(torch.autograd.Function):
    """Residual layers and skip sum, time-major: x0 [n*B, C] float32 (row t*B + b),
    frame projections proj [B, F, layers * 2G] float32 (or None) interpolated at
    left/right/weight [B, n] -> skip sum [W*B, S] in the products' type (row t*B + b:
    window b, step n-W+t)."""

    @staticmethod
    def forward(ctx, spec, x0, proj, left, right, weight, skip_w, skip_b, *flat):
        dt = spec.dtype
        groups = [flat[i:i + PER_LAYER] for i in range(0, len(flat), PER_LAYER)]
        batch = left.size(0)
        gate = groups[0][1].size(0) // 2
        spk = [np.zeros((batch, 2 * gate), np.float32) if g[2] is None else numpy_view(g[2])
               for g in groups]
        proj_np = (np.zeros((batch, 1, len(groups) * 2 * gate), np.float32) if proj is None
                   else numpy_view(proj))
        window = _Window(proj_np, numpy_view(left), numpy_view(right), numpy_view(weight), spk)
        skip = torch.empty(spec.out_steps * batch, skip_w.size(0), dtype=dt)
        skip_w_low = skip_w.detach().to(dt)
        x, xb, saved = x0, x0.to(dt), []
        for i, group in enumerate(groups):
            kept, nxt = _layer_forward(spec, x, xb, window, group, i, skip, skip_w_low)
            saved.append(kept)
            if x is not x0:
                buffers.give(x)      # (the stream this layer read is read no more)
            if nxt is not None:
                x, xb = nxt
        if skip_b is not None:
            skip += skip_b.to(dt)
        ctx.spec, ctx.layers, ctx.window = spec, saved, window
        ctx.groups, ctx.skip_w_low = groups, skip_w_low
        ctx.has_proj, ctx.has_skip_b = proj is not None, skip_b is not None
        return skip

    @staticmethod
    def backward(ctx, g_skip):
        spec, dt = ctx.spec, ctx.spec.dtype
        g = g_skip.to(dt).contiguous()
        g_t = g.t().contiguous()    # (a product reads its rows' dimension faster contiguous)
        d_skip_w = torch.empty(ctx.skip_w_low.shape)
        d_skip_b = g.float().sum(0) if ctx.has_skip_b else None
        g_proj = torch.zeros(ctx.window.proj.shape)
        grads: list = [None] * (len(ctx.groups) * PER_LAYER)
        g_res = None
        for i in reversed(range(len(ctx.groups))):
            layer_grads, g_res = _layer_backward(spec, ctx, i, g_res, g, g_t, d_skip_w,
                                                 g_proj)
            grads[i * PER_LAYER:(i + 1) * PER_LAYER] = layer_grads
            ctx.layers[i] = None
        return (None, g_res[0], g_proj if ctx.has_proj else None, None, None, None, d_skip_w,
                d_skip_b, *grads)


def stack_inputs(model: WaveNet, spk: torch.Tensor | None) -> tuple[list, torch.Tensor,
                                                                   torch.Tensor | None]:
    """The model's parameters arranged for `ResidualStack` (autograd ops, so gradients
    reach the parameters): per layer taps [k, 2G, C] (filter then gate; tap j reads
    t - (k-1-j)*d), bias [2G],
    speaker bias [B, 2G], residual weight [C, G] and bias (none for the last layer: nothing
    reads its residual output); the skip weights side by side [S, layers*G] and their
    biases summed."""
    flat = []
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        taps = torch.cat([layer.filter_conv.weight, layer.gate_conv.weight]).permute(2, 0, 1)
        bias = torch.cat([layer.filter_conv.bias, layer.gate_conv.bias])
        spk_bias = None
        if layer.filter_global is not None:
            weight = torch.cat([layer.filter_global.weight, layer.gate_global.weight])[:, :, 0]
            spk_bias = F.linear(spk, weight)
        res_w = None if i == last else layer.residual_1x1.weight[:, :, 0]
        res_b = None if i == last else layer.residual_1x1.bias
        flat += [taps.contiguous(), bias, spk_bias, res_w, res_b]
    skip_w = torch.cat([layer.skip_1x1.weight[:, :, 0] for layer in model.layers], dim=1)
    skip_b = (None if model.layers[0].skip_1x1.bias is None
              else torch.stack([layer.skip_1x1.bias for layer in model.layers]).sum(0))
    return flat, skip_w, skip_b


def frame_projections(model: WaveNet, frames: torch.Tensor) -> torch.Tensor:
    """Raw (or conditioned) log-mel frames of the windows [B, F, M] -> every layer's
    filter and gate conditioning of each standardised frame [B, F, layers * 2G], float32."""
    c = model.config
    weight = torch.cat([torch.cat([layer.filter_local.weight, layer.gate_local.weight])
                        for layer in model.layers])[:, :, 0]
    return F.linear((frames - c.mel_mean) / c.mel_std, weight)


def fused_skip(model: WaveNet, codes: torch.Tensor, frames, speaker: torch.Tensor | None,
               prediction: torch.Tensor | None, bfloat16: bool) -> torch.Tensor:
    """The skip sum `model.run_layers` gives for training windows, with the local
    conditioning given as frames (`frames`: (frames [B, F, M], left, right [B, n],
    weight [B, n]) as data.FrameWindow holds them, or None without), as rows [W*B, S] in
    time-major order (row t*B + b: window b, step t) in the products' type."""
    c = model.config
    dt = torch.bfloat16 if bfloat16 else torch.float32
    with torch.autocast(codes.device.type, dtype=torch.bfloat16, enabled=bfloat16):
        x0 = model.input_vectors(codes.t(), None if prediction is None else prediction.t())
        spk = model.speaker_vectors(speaker)
    n, batch = x0.size(0), x0.size(1)
    x0 = x0.float().reshape(n * batch, -1)
    proj = None
    if c.local_conditioning:
        if frames is None:
            raise ValueError("this model is locally conditioned: pass `frames`")
        raw, left, right, weight = frames
        if model.cond_net is not None:   # as the plain path runs it: under autocast
            with torch.autocast(codes.device.type, dtype=torch.bfloat16, enabled=bfloat16):
                raw = model.cond_net(raw).float()
        proj = frame_projections(model, raw).contiguous()
    else:
        left = right = torch.zeros(batch, n, dtype=torch.int64)
        weight = torch.zeros(batch, n)
    spec = StackSpec(tuple(c.dilations), c.kernel_size, n - c.receptive_field + 1,
                     float(c.residual_scale), dt)
    flat, skip_w, skip_b = stack_inputs(model, None if spk is None else spk.float())
    return ResidualStack.apply(spec, x0, proj, left.contiguous(), right.contiguous(),
                               weight.float().contiguous(), skip_w, skip_b, *flat)


def fused_batch_loss(model: WaveNet, batch, bfloat16: bool = False) -> torch.Tensor:
    """`train.batch_loss` of a data.Batch (on the CPU), the fast way; a mel model's batch
    carries frames (`sample_batch(..., frames=True)`)."""
    c = model.config
    if c.local_conditioning and batch.frames is None:
        raise ValueError("the fused step takes local conditioning as frames: "
                         "sample_batch(..., frames=True)")
    frames = None if batch.frames is None else tuple(
        torch.from_numpy(getattr(batch.frames, f)) for f in ("frames", "left", "right", "weight"))
    speaker = torch.from_numpy(batch.speaker) if c.global_conditioning else None
    prediction = None if batch.prediction is None else torch.from_numpy(batch.prediction)
    return fused_loss(model, torch.from_numpy(batch.inputs), frames, speaker, prediction,
                      torch.from_numpy(batch.targets), bfloat16)


def fused_loss(model: WaveNet, codes, frames, speaker, prediction, targets,
               bfloat16: bool) -> torch.Tensor:
    """Mean cross-entropy of targets [B, W]: `train.batch_loss`'s value, the fast way."""
    skip = fused_skip(model, codes, frames, speaker, prediction, bfloat16)
    return HeadLoss.apply(skip, model.head_1x1.weight[:, :, 0], model.head_1x1.bias,
                          model.logits_1x1.weight[:, :, 0], model.logits_1x1.bias,
                          targets.t().reshape(-1))
