"""Compile the triton kernel for a CUDA architecture on a machine without a GPU.

`python -m wavenet_core.generation.triton.aot --config B --precision fp16 --arch 90`
runs Triton's own compiler (front end, LLVM, the bundled ptxas) and prints JSON with the
cubin size and the shared memory the kernel needs, so CPU-only CI catches a kernel that
would not compile or would not fit an SM. Run it without TRITON_INTERPRET.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from wavenet_core.model.config import CONFIG_A, CONFIG_B


def compile_kernel(config, precision: str, arch: int, teacher: bool = False,
                   local: bool = False, block: int = 16, num_warps: int = 4,
                   shaped: bool = False):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from wavenet_core.generation.sampling import draws_per_sample
    from wavenet_core.generation.triton.backend import kernel_shape
    from wavenet_core.generation.triton.kernel import wavenet_chunk

    w = "*fp16" if precision == "fp16" else "*fp32"
    ints = ("n", "num_steps", "hop", "num_frames", "ring_len", "num_layers")
    kinds = {"pos_ptr": "*i64", "next_ptr": "*i64", "seed_ptr": "*i64", "slots_ptr": "*i64",
             "forced_ptr": "*i64", "codes_ptr": "*i64", "phase_ptr": "*i64",
             "dil_ptr": "*i32", "off_ptr": "*i32"}
    values = config.scalar_io or config.lpc_excitation
    if values:                  # samples, not codes, in and out
        kinds.update(next_ptr="*fp32", forced_ptr="*fp32", codes_ptr="*fp32")
    order = config.lpc_order if config.lpc_excitation else 1
    op = max(2, 1 << (order - 1).bit_length())
    weights = ("wf_ptr", "wg_ptr", "wres_ptr", "wskip_ptr", "wh_ptr", "wl_ptr")
    floats = ("residual_scale", "log_scale_min")
    cp, gp, sp, qp, tn, cb, gb = kernel_shape(config, precision)
    constants = dict(C=config.residual_channels, Q=config.output_channels, CP=cp, GP=gp,
                     SP=sp, QP=qp, TN=tn, BB=block, KS=config.kernel_size, TEACHER=teacher,
                     LOCAL=local, OUT_BIAS=config.out_bias,
                     SCALED=config.residual_scale != 1.0, SCALAR=config.scalar_io,
                     MIXTURES=config.mixtures, DRAWS=draws_per_sample(config),
                     PRECISION="ieee", EXCITE=config.lpc_excitation, VALUES=values,
                     ORDER=order, OP=op, LOG_OP=op.bit_length() - 1,
                     TP=max(2, 1 << (config.classes - 2).bit_length()), SHAPED=shaped,
                     CB=cb, GB=gb)
    names = wavenet_chunk.__code__.co_varnames[:wavenet_chunk.__code__.co_argcount]
    signature = {}
    for name in names:
        if name in constants:
            signature[name] = "constexpr"
        elif name in ints:
            signature[name] = "i32"
        elif name in floats:
            signature[name] = "fp32"
        elif name in weights:
            signature[name] = w
        else:
            signature[name] = kinds.get(name, "*fp32")
    source = ASTSource(fn=triton.jit(wavenet_chunk), signature=signature, constexprs=constants)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32),
                          options=dict(num_warps=num_warps, num_stages=1))


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
    args = p.parse_args(argv)
    config = {"A": CONFIG_A, "B": CONFIG_B}[args.config]
    if args.excitation:
        config = dataclasses.replace(config, mel_channels=80, excitation="lpc")
    kernel = compile_kernel(config, args.precision, args.arch, args.teacher, args.local,
                            shaped=args.shaped)
    print(json.dumps({"config": args.config, "precision": args.precision, "arch": args.arch,
                      "shared_bytes": kernel.metadata.shared,
                      "cubin_bytes": len(kernel.asm.get("cubin", b""))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
