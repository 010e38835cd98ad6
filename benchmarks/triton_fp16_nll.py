"""What float16 costs the triton backend: held-out NLL (bits/sample), fp16 minus fp32.

The kernel's fp16 mode rounds weights and every dot input to float16 and accumulates in
float32. `packed_forward(..., fp16=True)` does exactly that over whole windows on the CPU
(tests/generation/triton/test_triton_backend.py checks kernel == emulation up to summation
order); this script
1. checks, on each real model, that the fp32 emulation reproduces `validation_bits` (the
   model's own NLL) and that the kernel's fp16 logits (Triton interpreter on the CPU, or
   the compiled kernel on CUDA) match the fp16 emulation on a short window as closely as
   the emulation matches itself with float64 accumulation (summation order tips values
   on float16 rounding boundaries either way);
2. reports held-out NLL in fp32 and fp16, their difference, the largest logit change and
   how often the most likely code changes.

Held-out data: the corpus's 'valid' split, utterances chosen as benchmarks/quality.py
chooses them, teacher-forced in windows of --window predictions (as validation_bits).

    python benchmarks/triton_fp16_nll.py --corpus corpus --utterances 24
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.quality import choose_utterances, speaker_for  # noqa: E402
from wavenet_core.audio.wav import read_wav  # noqa: E402
from wavenet_core.generation.packing import pack_weights  # noqa: E402
from wavenet_core.generation.triton.packed_forward import packed_forward  # noqa: E402
from wavenet_core.model.checkpoint import load_checkpoint, speaker_names  # noqa: E402
from wavenet_core.training.corpus import load_manifest  # noqa: E402
from wavenet_core.training.data import fixed_batches  # noqa: E402
from wavenet_core.training.train import validation_bits  # noqa: E402
from wavenet_core.training.utterance import make_utterance  # noqa: E402


def _tensors(batch, config):
    codes = torch.from_numpy(batch.inputs)
    local = None if batch.local is None else torch.from_numpy(batch.local)
    speaker = torch.from_numpy(batch.speaker) if config.global_conditioning else None
    return codes, local, speaker


def kernel_gap(model, batch, samples: int) -> tuple[float, float]:
    """Over the first `samples` inputs: max |kernel fp16 logits - emulated fp16 logits|,
    and, as the yardstick, max |emulated fp16 - the same with float64 accumulation|."""
    from wavenet_core.generation.triton.backend import TritonBackend

    config = model.config
    codes, local, speaker = _tensors(batch, config)
    codes, local = codes[:1, :samples], None if local is None else local[:1, :, :samples]
    speaker = None if speaker is None else speaker[:1]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    backend = TritonBackend(model, device, precision="fp16")
    state = backend.new_state(1)
    backend.open_slot(state, 0, speaker=0 if speaker is None else int(speaker[0]))
    rows = None if local is None else local.transpose(1, 2).numpy()
    got = backend.teacher_force(state, [0], codes.numpy(), rows).cpu()
    model.cpu()
    w = pack_weights(model)
    emulated = packed_forward(w, config.dilations, codes, local, speaker, fp16=True)
    wide = packed_forward(w, config.dilations, codes, local, speaker, fp16=True,
                          dtype=torch.float64).float()
    return (float((got - emulated.transpose(1, 2)).abs().max()),
            float((wide - emulated).abs().max()))


def measure(path: Path, corpus: Path, utterances: int, window: int,
            kernel_samples: int) -> dict:
    model = load_checkpoint(path, "cpu").eval()
    config, field = model.config, model.config.receptive_field
    names = speaker_names(path) or []
    items = choose_utterances(load_manifest(corpus), utterances, split="valid")
    utts = [make_utterance(read_wav(corpus / u["path"], config.sample_rate)[0],
                           speaker_for(u, names) if config.global_conditioning else 0,
                           config, field) for u in items]
    batches = fixed_batches(utts, config, 8, window)
    w = pack_weights(model)
    nats = {"fp32": 0.0, "fp16": 0.0}
    count, max_gap, flips = 0, 0.0, 0
    for batch in batches:
        codes, local, speaker = _tensors(batch, config)
        targets = torch.from_numpy(batch.targets)
        out = {}
        for precision in nats:
            logits = packed_forward(w, config.dilations, codes, local, speaker,
                                    fp16=precision == "fp16")[..., field - 1:]
            out[precision] = logits
            nats[precision] += float(F.cross_entropy(logits, targets, reduction="sum"))
        max_gap = max(max_gap, float((out["fp16"] - out["fp32"]).abs().max()))
        flips += int((out["fp16"].argmax(1) != out["fp32"].argmax(1)).sum())
        count += targets.numel()
    bits = {k: v / count / math.log(2) for k, v in nats.items()}
    reference = validation_bits(model, batches, torch.device("cpu"))
    gaps = kernel_gap(model, batches[0], kernel_samples) if kernel_samples else (None, None)
    return {"checkpoint": str(path), "utterances": len(items), "windows": sum(
                len(b.targets) for b in batches), "predicted_samples": count,
            "fp32_bits": bits["fp32"], "fp16_bits": bits["fp16"],
            "fp16_minus_fp32_bits": bits["fp16"] - bits["fp32"],
            "model_validation_bits": reference,
            "max_abs_logit_change": max_gap, "argmax_changed_fraction": flips / count,
            "kernel_vs_emulation_max_abs": gaps[0],
            "emulation_fp32_vs_fp64_accumulation_max_abs": gaps[1]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["models/vocoder.safetensors",
                                                   "models/babble.safetensors"])
    p.add_argument("--corpus", default="corpus")
    p.add_argument("--utterances", type=int, default=24)
    p.add_argument("--window", type=int, default=4000)
    p.add_argument("--kernel-samples", type=int, default=32,
                   help="inputs the kernel itself runs for the emulation check (0: skip)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for path in args.models:
        t0 = time.perf_counter()
        r = measure(Path(path), Path(args.corpus), args.utterances, args.window,
                    args.kernel_samples)
        r["seconds"] = time.perf_counter() - t0
        results.append(r)
        print(f"{Path(path).stem}: fp32 {r['fp32_bits']:.4f} fp16 {r['fp16_bits']:.4f} "
              f"diff {r['fp16_minus_fp32_bits']:+.5f} bits/sample over "
              f"{r['predicted_samples']} samples (model's own {r['model_validation_bits']:.4f});"
              f" max |dlogit| {r['max_abs_logit_change']:.4f}, argmax changed "
              f"{100 * r['argmax_changed_fraction']:.3f}%; kernel vs emulation "
              f"{r['kernel_vs_emulation_max_abs']} (summation-order yardstick "
              f"{r['emulation_fp32_vs_fp64_accumulation_max_abs']})", flush=True)
    text = json.dumps(results, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
