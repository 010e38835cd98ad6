"""The static GPU profile of the triton kernel: its sm_90 build read without a GPU.

`python -m wavenet_core.bench.gpu_profile --configs A,B --precisions fp16,fp32` compiles
the kernel as `triton.jit` builds it for one stream (`aot.compile_kernel`: the JIT's own
specialisation; batch 1, a 1,024-sample chunk, no mel), with Triton's bundled ptxas, and
prints one JSON object per build: registers and local-memory (spill) bytes per thread
(`cuobjdump -res-usage`), shared memory, and from the SASS (`cuobjdump -sass`, read by
sass.py) the instructions, barriers, global (L2) loads, tensor-core and FMA instructions
of one pass of the layer loop and of a whole sample, the dots per layer (TTGIR), and the
latency model's cycles per sample (gpu_model.py). Run it without TRITON_INTERPRET
(`profiles()` starts it in a child process for that reason). `Unavailable` names what is
missing where Triton's CUDA tools are not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from wavenet_core.bench import gpu_model, sass

CONFIG_NAMES = ("A", "B")
PRECISIONS = ("fp16", "fp32")


class Unavailable(RuntimeError):
    pass


def _tool(name: str) -> str:
    import triton

    path = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name
    if not path.exists():
        raise Unavailable(f"{path} is missing (Triton's CUDA tools): no static GPU profile")
    return str(path)


def _dots_per_layer(ttgir: str) -> int:
    """tt.dot ops run per pass of the layer loop (the scf.for up to %num_layers): its own
    and those of its inner loops times their trip counts (constant bounds)."""
    consts = {m.group(1): int(m.group(2)) for m in
              re.finditer(r"(%c\w+) = arith\.constant (-?\d+) : i32", ttgir)}
    bounds = re.compile(r"scf\.for %\S+ = (%\S+) to (%\S+) step (%\S+) ")
    stack, layer = [], None
    for line in ttgir.splitlines():
        opens, closes = line.count("{"), line.count("}")
        m = bounds.search(line)
        if m and "scf.for" in line and opens > closes:
            lo, hi, step = (consts.get(g) for g in m.groups())
            trips = (hi - lo) // step if None not in (lo, hi, step) else 1
            # the layer loop: up to %num_layers in steps of 1 (the ring write's go by 4)
            stack.append([0, trips, m.group(2) == "%num_layers" and step == 1])
        elif "tt.dot " in line and stack:
            stack[-1][0] += 1
        for _ in range(max(0, closes - opens)):
            if not stack:
                break
            dots, trips, is_layer = stack.pop()
            if is_layer:
                layer = dots
            elif stack:
                stack[-1][0] += dots * trips
    if layer is None:
        raise RuntimeError("no layer loop (scf.for to %num_layers) in the TTGIR")
    return layer


# tensor-core products per multiply-add of a dot, by its input precision: tf32x3 makes
# three (hi*lo, lo*hi, hi*hi; docs/triton-kernel.md "Precision")
PASSES = {"tf32x3": 3}


def _own_macs(code, span, passes: int = 1) -> float:
    """Multiply-adds per thread of the dots in a loop's body, its inner loops left out:
    an FFMA is one, a tensor-core instruction its shape's (`sass.mma_macs`) over the
    `passes` products each of its dots' multiply-adds takes."""
    inner = sass.children(code, span)
    body = [i for i in sass.inside(code, span)
            if not any(s[0] <= i.address <= s[1] for s in inner)]
    return sum(i.base == "FFMA" for i in body) + sum(map(sass.mma_macs, body)) / passes


def loop_trips(code, layers, sample, shape, kernel_size: int, threads: int,
               copy_trips: int = 0, block: int = 16, tensor_cores: bool = False,
               passes: int = 1) -> dict:
    """Trip counts of the loops inside the layer and sample loops, from the kernel's
    shape (shape.kernel_shape): in a layer, the gate's loop over (channel block, tap)
    pairs where CB < CP and the residual/skip loop over z blocks where GB < GP; in a
    sample, the head's loop over TN-wide tiles where TN < SP, and the loop over HB-wide
    skip blocks where HB < SP (inside the head's loop, if that is one); and, where the
    layer loop is pipelined (shape.layer_stages), the loop after it that writes the
    staged x(t) of 4 layers at a time into the rings: `copy_trips` (ceil(layers / 4)),
    the sample loop's one loop without multiply-adds. Each loop in the
    SASS is told by the multiply-adds of its own body (`passes`: tensor-core products
    per multiply-add, 3 for tf32x3), which its dots fix; a loop the
    compiler unrolled is walked as straight code. A loop that matches none, or two with
    different trip counts, is an error, not a guess."""
    cp, gp, sp, qp, tn, cb, gb, hb = shape

    def macs(n: int, k: int, chained: bool = False) -> float:
        """Per thread, a [block, k] x [k, n] dot. An FMA dot spreads the outputs over
        the threads (replicated when fewer). On tensor cores a warp's tile is 16 x 8 and
        Triton puts the warps along N (each at least one tile, the same tile repeated when
        more warps than tiles), but along M for a dot whose result feeds another dot
        (`chained`, the head's hidden units) when N <= M: each warp then does it all."""
        if not tensor_cores:
            return k * max(1.0, block * n / threads)
        cols = n if chained and n <= block else max(8, n * 32 / threads)
        return k * block * cols / 32

    layer = [(kernel_size * cp // cb, 2 * macs(gp, cb))] * (cb < cp) + \
        [(gp // gb, macs(cp, gb) + macs(sp, gb))] * (gb < gp)
    skip_blocks = [(sp // hb, macs(tn, hb, chained=True))] * (hb < sp)
    groups = [(sass.children(code, layers), layer)]
    outer = [s for s in sass.children(code, sample) if s != layers]
    copies = [s for s in outer if _own_macs(code, s) == 0 and not sass.children(code, s)]
    staged = int(copy_trips > 0)
    if len(copies) != staged:
        raise RuntimeError(f"{len(copies)} loops without multiply-adds in the sample loop: "
                           f"expected {staged}, the staged ring write")
    outer = [s for s in outer if s not in copies]
    if tn < sp:
        inner = [c for h in outer for c in sass.children(code, h)]
        groups.append((outer, [(sp // tn, macs(qp, tn)
                                                + (not inner) * macs(tn, sp, chained=True))]))
        groups.append((inner, skip_blocks))
    else:
        groups.append((outer, skip_blocks))
    trips = {loop: copy_trips for loop in copies}
    for found, kinds in groups:
        for loop in found:
            own = _own_macs(code, loop, passes)
            match = {t for t, m in kinds if abs(own - m) <= 0.1 * m}
            if len(match) != 1:
                raise RuntimeError(f"a loop at {loop[0]:#x} with {own} multiply-adds per "
                                   f"thread matches {len(match)} of the kernel's loops "
                                   f"{kinds} (shape {shape}): the profile cannot count it")
            trips[loop] = match.pop()
    return trips


def profile(config_name: str, precision: str, arch: int = 90,
            num_warps: int | None = None, dots: str | None = None) -> dict:
    import tempfile

    from wavenet_core.generation.triton.aot import compile_kernel
    from wavenet_core.generation.triton.backend import DOT_PRECISION
    from wavenet_core.generation.triton.shape import kernel_shape, layer_stages
    from wavenet_core.model.config import CONFIG_A, CONFIG_B

    config = {"A": CONFIG_A, "B": CONFIG_B}[config_name]
    kernel = compile_kernel(config, precision, arch, batch=1, num_warps=num_warps, dots=dots)
    dots = dots or DOT_PRECISION
    passes = PASSES.get(dots, 1)
    num_warps = kernel.metadata.num_warps
    stages = layer_stages(config, precision, num_warps)
    copy_trips = -(-config.num_layers // 4) if stages > 1 else 0
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(kernel.asm["cubin"])
        usage = subprocess.run([_tool("cuobjdump"), "-res-usage", str(cubin)], check=True,
                               capture_output=True, text=True).stdout
        listing = subprocess.run([_tool("cuobjdump"), "-sass", str(cubin)], check=True,
                                 capture_output=True, text=True).stdout
    fields = dict(item.split(":") for item in usage.split()
                  if ":" in item and item.split(":")[1].isdigit())
    code = sass.parse(listing)
    layers = sass.layer_loop(code)
    sample = sass.sample_loop(code, layers)
    trips = loop_trips(code, layers, sample, kernel_shape(config, precision),
                       config.kernel_size, 32 * num_warps, copy_trips,
                       tensor_cores=precision == "fp16" or dots != "ieee", passes=passes)
    layer_path = sass.walk(code, layers, trips=trips)
    rest_path = sass.walk(code, sample, skip=layers, trips=trips)
    per_layer, rest = sass.counts(layer_path), sass.counts(rest_path)
    n = config.num_layers
    # a sample in order: what precedes the layer loop (a pipelined loop's prologue,
    # copying layer 0's operands), n passes of it, the head and sampling
    sample_path = sass.walk(code, sample, trips={**trips, layers: n})
    cycles = {scenario: gpu_model.issue_cycles(sample_path, lat)
              for scenario, lat in gpu_model.LATENCIES.items()}
    return {"config": config_name, "precision": precision, "arch": arch,
            "input_precision": dots, "dot_passes": passes,
            "num_warps": num_warps, "layer_stages": stages, "block": 16, "layers": n,
            "registers": int(fields.get("REG", 0)), "stack_bytes": int(fields.get("STACK", 0)),
            "shared_bytes": kernel.metadata.shared,
            "dots_per_layer": _dots_per_layer(kernel.asm["ttgir"]),
            "head_tile": kernel_shape(config, precision)[4],
            "per_layer": per_layer,
            "per_sample": {k: n * per_layer[k] + rest[k] for k in per_layer},
            "cycles_per_sample": cycles}


def profiles(configs=CONFIG_NAMES, precisions=PRECISIONS, timeout: float = 600,
             dots: str | None = None) -> list[dict]:
    """The profiles, compiled in a child process (no TRITON_INTERPRET there); `dots` as
    `profile`'s."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-m", "wavenet_core.bench.gpu_profile",
                           "--configs", ",".join(configs), "--precisions", ",".join(precisions),
                           *(["--dots", dots] if dots else [])],
                          capture_output=True, text=True, env=env, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 3:
        raise Unavailable(done.stderr.strip().splitlines()[-1])
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"gpu_profile failed ({done.returncode}): {done.stderr[-2000:]}")
    return [json.loads(line) for line in lines]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="A,B")
    p.add_argument("--precisions", default="fp16,fp32")
    p.add_argument("--arch", type=int, default=90)
    p.add_argument("--dots", default=None, help="the dots' input precision (default "
                   "backend.DOT_PRECISION; \"tf32x3\": 3xTF32 on the tensor cores)")
    args = p.parse_args(argv)
    try:
        for config in args.configs.split(","):
            for precision in args.precisions.split(","):
                print(json.dumps(profile(config, precision, args.arch, dots=args.dots)),
                      flush=True)
    except (Unavailable, ImportError) as exc:
        print(f"unavailable: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
