"""The compiled CPU kernel of several revisions, or with one part of its step removed, side
by side in one process (issue 32 item 2: where a batch-16 step goes, and each change's A/B).

    .venv/bin/python benchmarks/kernel_ab.py main . .:gate .:sampler [--precision int8a]
        [--batch 16] [--threads 2] [--steps 2000] [--rounds 8]

A variant is REV or REV:PART. REV is a git revision, or "." for the working tree: its
wavenet_core is copied to a folder under the temp dir as a package of its own name, so two
revisions' kernels load in one process. PART removes one part of `cpu/loop.py`'s step (see
PARTS); the step then computes other values, but a part's cost does not depend on them, so
1 - rate(REV) / rate(REV:PART) is the share of REV's time that part took. Every variant
runs the bundled vocoder (mel as frames, as the server sends them) on `--batch` streams
over `--threads` threads (group mode) for `--rounds` rounds in turn, so all see the same
machine, each round starting one variant later (no variant always runs first) and, unless
`--kept`, on a backend and state built anew. Prints each variant's best and median samples
per wall second and per CPU second of the process (both threads; on a loaded machine the
steadier of the two), its ratio to the first variant, and the load average and CPU model.

Two copies of one revision under different names (`main` and its hash) measured 2-9%
apart (typically 4-5%) in every run, in one process and across processes (AMD EPYC,
docs/cpu-kernel.md "Twins"): presumably the compiled code's layout, not the source. Put
twins beside a candidate (`main e9091cd 'e9091cd^{}' X`) and read a candidate against the
twins' spread; a change smaller than it is not measured.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wavenet_core.audio.lpc import timing_rows  # noqa: E402  (the tree's own, for any revision)

LOOP = "generation/cpu/loop.py"
SIMD = "generation/cpu/simd.py"
KERNELS = "generation/cpu/kernels.py"
WEIGHTS = "generation/cpu/weights.py"

# PART: (what it changes, [([file,] text or pattern, replacement)]), file cpu/loop.py
# unless named; one missing
# stops the run, so an edited loop.py cannot silently ablate nothing.
PARTS = {
    "gate": ("the gate nonlinearity (z = clamp(filter) instead)",
             [("zr[o] = _gated(hf[o], hg[o])", "zr[o] = min(max(hf[o], -_ONE), _ONE)")]),
    "sampler": ("softmax, cumulative sum and draw (the counter uniform stays)",
                [(re.compile(r"drawn = \w+\(lr, temperature, floor,\s+counter_uniform_one"
                             r"\(call\.seed\[slot\], pos\[r\]\), probs\)"),
                  "drawn = np.int64(counter_uniform_one(call.seed[slot], pos[r]) * 255)")]),
    "ring": ("the ring's tap reads, its write and the tap prefetch",
             [("            prev[o] = q[o]", "            pass"),
              ("                        q[o] = xr[o]\n", ""),
              ("                            _prefetch(q, o)", "                            pass")]),
    "ring_write": ("the ring write only",
                   [("                        q[o] = xr[o]\n", "")]),
    "prefetch": ("the tap prefetch only",
                 [("                            _prefetch(q, o)",
                   "                            pass")]),
    "head": ("the head and logit matrices",
             [("            if shard.ht > 0:", "            if shard.ht < 0:"),
              ("            if shard.qt > 0:", "            if shard.qt < 0:")]),
    "layer_matrices": ("every layer's gate and residual/skip matrices (with int8a's packing)",
                       [("_matmul(shard.w, shard.s, shard.gate_off", "_skip(shard.w, shard.s, "
                         "shard.gate_off"),
                        ("_matmul(shard.w, shard.s, shard.out_off", "_skip(shard.w, shard.s, "
                         "shard.out_off"),
                        ("\n\n@njit(**_JIT)\ndef run_rows", "\n\n@njit(inline=\"always\")\n"
                         "def _skip(w, s, wo, so, n_in, n_out, x, xo, xld, init, io, ild, y, "
                         "yo, yld, n, scratch):\n    pass\n\n\n@njit(**_JIT)\ndef run_rows")]),
    "mel": ("the mel frames' projection and per-step interpolation",
            [("        if m > 0 and jt2 > 0:", "        if m < 0 and jt2 > 0:"),
             ("                        for r in range(n):\n                            w1 =",
              "                        for r in range(0):\n                            w1 =")]),
    "packing": ("int8a's and bf16a's activation packing before every matrix (the scratch "
                "stays zeros)",
                [(KERNELS, "        pack_rows(w, x, xo, xld, n_in, n, scratch, qld)\n", "")]),
    "eight_rows": ("int8a in int8's 8 x 32 register blocks (cpu/weights.py)",
                   [(WEIGHTS, 'kind == "int8")', 'kind in ("int8", "int8a"))')]),
    "mel_projection": ("the mel frames' projection only",
                       [("        if m > 0 and jt2 > 0:", "        if m < 0 and jt2 > 0:")]),
    "mel_interpolation": ("the mel's per-step interpolation only",
                          [("                        for r in range(n):\n"
                            "                            w1 =",
                            "                        for r in range(0):\n"
                            "                            w1 =")]),
    **{f"prefetch{k}": (f"the ring taps prefetched {k} layers ahead (cpu/simd.py)",
                        [(SIMD, "PREFETCH_LAYERS = 2 ", f"PREFETCH_LAYERS = {k} ")])
       for k in (1, 3, 4)},
    **{f"prefetch{k}_l2": (f"the ring taps prefetched {k} layers ahead into L2 only "
                           "(prefetcht1), not L1 (cpu/simd.py)",
                           [(SIMD, "PREFETCH_LAYERS = 2 ", f"PREFETCH_LAYERS = {k} "),
                            (SIMD, "(0, 3, 1))", "(0, 2, 1))")])
       for k in (2, 4)},
    "align64": ("LLVM told to align loops to 64 bytes (a process-wide option: list this "
                "variant after every variant that compiles)",
                [(SIMD, "\nimport numpy as np\n",
                  "\nimport llvmlite.binding as _llvm\nimport numpy as np\n\n"
                  "_llvm.set_option('', '-align-loops=64')\n")]),
    "align_all": ("LLVM told to align every function and every block not fallen into to 64 "
                  "bytes (process-wide, as align64)",
                  [(SIMD, "\nimport numpy as np\n",
                    "\nimport llvmlite.binding as _llvm\nimport numpy as np\n\n"
                    "_llvm.set_option('', '-align-all-functions=6')\n"
                    "_llvm.set_option('', '-align-all-nofallthru-blocks=6')\n")]),
    "barriers": ("the barriers (group mode: a team of one)",
                 [("barrier(team.flags, team.thread, team.threads, generation)", "pass")]),
}


def materialize(rev: str, part: str | None, base: Path) -> str:
    """A copy of REV's wavenet_core (with PART removed) as package `wn_<tag>` under base."""
    tag = re.sub(r"\W", "_", f"{rev}_{part or 'all'}").strip("_") or "x"
    name = f"wn_{tag}"
    target = base / name
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "wavenet_core"
        if rev == ".":
            shutil.copytree(ROOT / "wavenet_core", src,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "wavenet_core"],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        for path in src.rglob("*.py"):
            text = path.read_text().replace("wavenet_core", name)
            rel = path.relative_to(src).as_posix()
            for sub in PARTS[part][1] if part is not None else ():
                file, old, new = sub if len(sub) == 3 else (LOOP, *sub)
                if file != rel:
                    continue
                old = old if isinstance(old, re.Pattern) else re.compile(re.escape(old))
                text, count = old.subn(new.replace("\\", "\\\\"), text)
                if not count:
                    raise SystemExit(f"{rev}:{part}: {old.pattern!r} is not in {file}")
            out = target / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            if not out.exists() or out.read_text() != text:   # unchanged: numba's cache holds
                out.write_text(text)
    return name


def backend_of(name: str, precision: str, threads: int, batch: int, fresh: bool):
    """A timed run of variant `name`: (samples per wall second, per CPU second) of one call.
    With `fresh`, each run first builds the backend and state anew and makes one untimed
    call (its page faults), so no variant keeps one placement of its weights and rings in
    memory for the whole run."""
    checkpoint = importlib.import_module(f"{name}.model.checkpoint")
    cpu = importlib.import_module(f"{name}.generation.cpu.backend")
    frames_mod = importlib.import_module(f"{name}.generation.mel_frames")
    model = checkpoint.load_checkpoint(ROOT / "models" / "vocoder.safetensors").eval()
    m, hop = model.config.mel_channels, model.config.mel.hop_length
    held = []

    def build():
        if held:
            held.pop().close()
        backend = cpu.CpuBackend(model, threads=threads, precision=precision, split="never")
        backend.warmup()
        state = backend.new_state(batch)
        for slot in range(batch):
            backend.open_slot(state, slot, seed=slot)
        held.append(backend)
        return backend, state

    def call(backend, state, steps: int, rng: np.random.Generator) -> tuple[float, float]:
        count = steps // hop + 2
        local = frames_mod.MelFrames(rng.standard_normal((batch, count, m)).astype(np.float32),
                                     np.zeros(batch, np.int64), hop, steps)
        rows = timing_rows(model.config, batch, steps)
        start, cpu_s = time.perf_counter(), time.process_time()
        backend.generate(state, list(range(batch)), steps, local, **rows)
        return (batch * steps / (time.perf_counter() - start),
                batch * steps / (time.process_time() - cpu_s))

    kept = build()

    def run(steps: int, rng: np.random.Generator) -> tuple[float, float]:
        backend, state = build() if fresh else kept
        if fresh:
            call(backend, state, steps, rng)
        return call(backend, state, steps, rng)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="REV or REV:PART; PART one of "
                        + ", ".join(PARTS))
    parser.add_argument("--precision", default="int8a")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--kept", action="store_true",
                        help="one backend and state per variant for the whole run")
    args = parser.parse_args()
    base = Path(tempfile.gettempdir()) / "kernel_ab"
    sys.path.insert(0, str(base))
    runs = {}
    for variant in args.variants:
        rev, _, part = variant.partition(":")
        if part and part not in PARTS:
            raise SystemExit(f"unknown part {part!r}: one of {', '.join(PARTS)}")
        name = materialize(rev, part or None, base)
        runs[variant] = backend_of(name, args.precision, args.threads, args.batch,
                                   not args.kept)
    rates = {v: ([], []) for v in runs}          # samples per wall second, per CPU second
    rng = np.random.default_rng(0)
    order = list(runs)
    for i in range(args.rounds):          # each round starts one variant later
        turn = i % len(order)
        for variant in order[turn:] + order[:turn]:
            for values, rate in zip(rates[variant], runs[variant](args.steps, rng)):
                values.append(rate)
    from wavenet_core.bench.roofline import cpu_model

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.precision}, batch {args.batch}, {args.threads} threads, {args.steps} steps x"
          f" {args.rounds} rounds ({cpu_model()}; load average after: {load})")
    for clock, index in (("wall", 0), ("CPU", 1)):
        print(f" samples per {clock} second (the process's CPU time: both threads')")
        first = rates[args.variants[0]][index]
        for variant, both in rates.items():
            values = both[index]
            best, med = max(values), statistics.median(values)
            rev, _, part = variant.partition(":")
            share = ""
            if part and rev in rates:        # the part's share of the whole step's time
                whole = rates[rev][index]
                share = (f"  {part} share: best {1 - max(whole) / best:+.3f}"
                         f" median {1 - statistics.median(whole) / med:+.3f}")
            print(f"  {variant:20} best {best:9,.0f}  median {med:9,.0f}  best/first"
                  f" {best / max(first):5.3f}  median/first"
                  f" {med / statistics.median(first):5.3f}{share}")

if __name__ == "__main__":
    main()
