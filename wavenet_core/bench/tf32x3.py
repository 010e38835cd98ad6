"""3xTF32 dots emulated on the CPU: what Triton's input_precision="tf32x3" would do to
the triton kernel's fp32 logits (no GPU needed; the interpreter's tl.dot ignores the
input precision, so it cannot show it).

Triton 3.6 / 3.7 rewrite an fp32 `tl.dot(a, b, acc, input_precision="tf32x3")` (the
TritonGPU F32DotTC pass, read from the sm_90 build's TTGIR and SASS) as
    hi = cvt.rna.tf32.f32(x)   (round to 10 mantissa bits, to nearest, ties away from
                                zero: ptxas emits (bits + 0x1000) & 0xffffe000)
    lo = x - hi                (exact in float32)
    small = dot(lo_a, hi_b) then + dot(hi_a, lo_b)   (one accumulator, NaNs zeroed)
    out = dot(hi_a, hi_b, small) + acc
on TF32 tensor-core MMAs (HMMA.1688.F32.TF32). lo is handed to the MMA as it is, and a
TF32 MMA reads 10 of its mantissa bits: `lo_rounding` "trunc" (the low 13 bits ignored,
as the tensor cores are described to do) or "rna". Every product of two TF32 values is
exact in float32 (11 x 11 significant bits), so the emulation's only other rounding is
float32 accumulation, in numpy/torch order: the tensor cores' own accumulation order and
rounding (not round-to-nearest on every add) are not modelled, and bound to differ at
float32 accumulation noise, which `forward_errors` reports beside (float32 vs float64).
"""

from __future__ import annotations

import torch

from wavenet_core.generation.triton.packed_forward import packed_forward

MASK = -8192                    # 0xffffe000 as int32: sign, exponent, 10 mantissa bits


def tf32(x: torch.Tensor, rounding: str = "rna") -> torch.Tensor:
    """float32 -> the nearest TF32 value (ties away from zero, cvt.rna) or truncated,
    as float32. Finite inputs (the kernel's weights and activations are)."""
    bits = x.to(torch.float32).view(torch.int32)
    if rounding == "rna":
        bits = bits + 0x1000
    elif rounding != "trunc":
        raise ValueError(f"rounding is 'rna' or 'trunc', not {rounding!r}")
    return (bits & MASK).view(torch.float32)


def split(x: torch.Tensor, lo_rounding: str = "trunc") -> tuple[torch.Tensor, torch.Tensor]:
    """(hi, lo as the MMA reads it): hi = tf32(x), lo = tf32(x - hi, lo_rounding)."""
    x = x.to(torch.float32)
    hi = tf32(x)
    return hi, tf32(x - hi, lo_rounding)


def tf32x3_matmul(a: torch.Tensor, b: torch.Tensor, lo_rounding: str = "trunc") -> torch.Tensor:
    """a @ b as Triton's tf32x3 computes it (float32 in, float32 out)."""
    a_hi, a_lo = split(a, lo_rounding)
    b_hi, b_lo = split(b, lo_rounding)
    small = a_lo @ b_hi + a_hi @ b_lo
    return a_hi @ b_hi + small


def tf32_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b with plain TF32 operands (input_precision="tf32", truncated as the MMA reads
    them): the yardstick of what the two extra products buy."""
    return tf32(a, "trunc") @ tf32(b, "trunc")


def forward_errors(weights, dilations, codes: torch.Tensor, speaker=None,
                   steps: int | None = None) -> dict[str, dict[str, float]]:
    """Teacher-forced logits of `packed_forward` (codes [1, T]) with every dot as: float64,
    float32 (the kernel's ieee dots), tf32x3 (lo truncated and rounded), plain TF32 and
    fp16 (the kernel's fp16 roundings). Per variant, over the last `steps` positions, the
    largest |logit - float32 logit| (`abs`) and that over the step's largest |logit|
    (`rel`, the max over steps), and the same against float64 (`abs64`, `rel64`)."""
    def run(**kw) -> torch.Tensor:
        return packed_forward(weights, dilations, codes, None, speaker, **kw)[0].double()

    ref64 = run(dtype=torch.float64)
    variants = {
        "fp32 (ieee)": run(),
        "tf32x3, lo truncated": run(dot=lambda a, w: tf32x3_matmul(a, w.T, "trunc")),
        "tf32x3, lo rounded": run(dot=lambda a, w: tf32x3_matmul(a, w.T, "rna")),
        "tf32": run(dot=lambda a, w: tf32_matmul(a, w.T)),
        "fp16": run(fp16=True),
    }
    window = slice(-steps, None) if steps else slice(None)
    ref32 = variants["fp32 (ieee)"]
    scale = ref64[:, window].abs().amax(0)             # per step: its largest |logit|
    out = {}
    for name, logits in variants.items():
        row = {}
        for key, ref in (("", ref32), ("64", ref64)):
            gap = (logits - ref)[:, window].abs()
            row["abs" + key] = float(gap.max())
            row["rel" + key] = float((gap.amax(0) / scale).max())
        out[name] = row
    return out
