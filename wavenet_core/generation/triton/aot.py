"""Compile the triton kernel for a CUDA architecture on a machine without a GPU.

`python -m wavenet_core.generation.triton.aot --config B --precision fp16 --arch 90`
runs Triton's own compiler (front end, LLVM, the bundled ptxas) and prints JSON with the
cubin size and the shared memory the kernel needs, so CPU-only CI catches a kernel that
would not compile or would not fit an SM. Run it without TRITON_INTERPRET.

The build is the one `triton.jit` makes for a call of the backend: the same signature,
constexprs and options, and the JIT's own specialisation of the arguments
(`jit_specialisation`): every pointer 16-byte aligned (torch's CUDA allocations are), an
int divisible by 16 marked so, an int equal to 1 made a constexpr. Without those hints
the compiler cannot vectorise the loads (224 two-byte loads per layer in config B fp16)
and the build is not the one the GPU runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from wavenet_core.model.config import CONFIG_A, CONFIG_B

INTS = ("n", "num_steps", "hop", "num_frames", "ring_len", "num_layers")


def call_ints(config, batch: int, num_steps: int, local: bool) -> dict[str, int]:
    """The int arguments of the backend's call for `batch` streams, `num_steps` samples
    (a mel as frames of hop `config.mel.hop_length`, else the dummies hop 1, one frame)."""
    spans = [(config.kernel_size - 1) * d for d in config.dilations]
    hop = config.mel.hop_length if local else 1
    frames = num_steps // hop + 2 if local else 1
    return dict(n=batch, num_steps=num_steps, hop=hop, num_frames=frames,
                ring_len=sum(spans), num_layers=config.num_layers)


def jit_specialisation(kind: str, value=None) -> tuple[str, str | None]:
    """(type, hint) as `triton.jit` specialises an argument: `kind` is a pointer type
    ("*fp16") for a tensor (aligned: hint "D"), else `value` is the int or float passed.
    Uses Triton's own function where it has one (3.6, 3.7), else the same rule."""
    if kind.startswith("*"):
        return kind, "D"
    try:
        from triton._C.libtriton import native_specialize_impl
        from triton.backends.compiler import BaseBackend
    except ImportError:
        native_specialize_impl = None
    if native_specialize_impl is not None:
        return native_specialize_impl(BaseBackend, value, False, True, True)
    if isinstance(value, float):
        return "fp32", None
    if value == 1:
        return "constexpr", 1
    return ("i32" if -2 ** 31 <= value < 2 ** 31 else "i64"), ("D" if value % 16 == 0 else "")


def compile_kernel(config, precision: str, arch: int, teacher: bool = False,
                   local: bool = False, block: int = 16, num_warps: int | None = None,
                   shaped: bool = False, batch: int = 16, num_steps: int = 1024,
                   dots: str | None = None):
    """The kernel as `triton.jit` builds it for a call of `batch` streams and `num_steps`
    samples (batch 1 and a chunk of 1 make `n` or `num_steps` a constexpr, as the JIT does),
    its dots' input precision `backend.DOT_PRECISION` unless `dots` names another (to
    compare builds: "tf32x3")."""
    import triton
    from triton.backends.compiler import BaseBackend, GPUTarget
    from triton.compiler import ASTSource

    from wavenet_core.generation.triton.backend import DOT_PRECISION
    from wavenet_core.generation.triton.kernel import wavenet_chunk
    from wavenet_core.generation.triton.shape import NUM_WARPS, model_constexprs

    w = "*fp16" if precision == "fp16" else "*fp32"
    kinds = {"pos_ptr": "*i64", "next_ptr": "*i64", "seed_ptr": "*i64", "slots_ptr": "*i64",
             "forced_ptr": "*i64", "codes_ptr": "*i64", "phase_ptr": "*i64",
             "dil_ptr": "*i32", "off_ptr": "*i32"}
    warps = num_warps or NUM_WARPS
    constants = dict(TEACHER=teacher, LOCAL=local, SHAPED=shaped, PRECISION=dots or DOT_PRECISION,
                     ASM=True, **model_constexprs(config, precision, warps, block))
    if constants["VALUES"]:     # samples, not codes, in and out
        kinds.update(next_ptr="*fp32", forced_ptr="*fp32", codes_ptr="*fp32")
    weights = ("wf_ptr", "wg_ptr", "wres_ptr", "wskip_ptr", "wh_ptr", "wl_ptr")
    floats = {"residual_scale": float(config.residual_scale),
              "log_scale_min": float(config.log_scale_min)}
    ints = call_ints(config, batch, num_steps, local)
    fn = triton.jit(wavenet_chunk)
    signature, attrs = {}, {}
    for index, name in enumerate(fn.arg_names):
        if name in constants:
            signature[name] = "constexpr"
            continue
        if name in ints or name in floats:
            kind, hint = jit_specialisation("", {**ints, **floats}[name])
        else:
            kind, hint = jit_specialisation(w if name in weights else kinds.get(name, "*fp32"))
        signature[name] = kind
        if kind == "constexpr":
            constants[name] = hint
        elif isinstance(hint, str):
            attrs[(index,)] = BaseBackend.parse_attr(hint)
    source = ASTSource(fn=fn, signature=signature, constexprs=constants, attrs=attrs)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32),
                          options=dict(num_warps=warps, num_stages=1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=("A", "B"), default="B")
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp16")
    p.add_argument("--arch", type=int, default=90, help="compute capability, e.g. 80, 90")
    p.add_argument("--teacher", action="store_true")
    p.add_argument("--local", action="store_true")
    p.add_argument("--excitation", action="store_true",
                   help="the config with an 80-band mel and the excitation output")
    p.add_argument("--shaped", action="store_true", help="voicing-shaped sampling rows")
    p.add_argument("--batch", type=int, default=16, help="streams in the call")
    args = p.parse_args(argv)
    config = {"A": CONFIG_A, "B": CONFIG_B}[args.config]
    if args.excitation:
        config = dataclasses.replace(config, mel_channels=80, excitation="lpc")
    kernel = compile_kernel(config, args.precision, args.arch, args.teacher, args.local,
                            shaped=args.shaped, batch=args.batch)
    print(json.dumps({"config": args.config, "precision": args.precision, "arch": args.arch,
                      "shared_bytes": kernel.metadata.shared,
                      "cubin_bytes": len(kernel.asm.get("cubin", b""))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
