"""What 3xTF32 dots (Triton's input_precision="tf32x3") would do to the fp32 logits.

No GPU is needed: wavenet_core/bench/tf32x3.py emulates Triton's decomposition (hi =
TF32 rounded to nearest, lo = x - hi as the MMA reads it, hi*lo + lo*hi + hi*hi summed in
float32) inside `packed_forward`. The model is the bundled config-B model
(models/babble.safetensors: 2 x 1..512, residual 64, skip 128, trained), teacher-forced on
its own speech-like babble (generated here by the cpu backend, fp32, seed 0, speaker 0),
so the activations are a trained model's on its own kind of signal. Printed per dot
format: the largest logit gap to the float32 (ieee) forward and to a float64 forward,
absolute and relative to the step's largest |logit|, over the last --steps positions.

    python benchmarks/tf32x3_error.py --samples 2400 --steps 300
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wavenet_core.audio.mulaw import mulaw_encode  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402
from wavenet_core.bench.tf32x3 import forward_errors  # noqa: E402
from wavenet_core.generation.packing import pack_weights  # noqa: E402
from wavenet_core.generation.registry import make_backend  # noqa: E402
from wavenet_core.generation.session import synthesize  # noqa: E402
from wavenet_core.model.checkpoint import load_checkpoint  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="models/babble.safetensors")
    p.add_argument("--samples", type=int, default=2400, help="babble generated, then forced")
    p.add_argument("--steps", type=int, default=300, help="positions compared (the last)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    model = load_checkpoint(args.checkpoint).eval()
    config = model.config
    backend = make_backend(model, "cpu", "cpu", precision="fp32")
    audio = synthesize(backend, args.samples, seed=0, speaker=0)
    codes = torch.from_numpy(np.asarray(mulaw_encode(audio, config.classes - 1))).long()[None]
    speaker = torch.tensor([0]) if config.global_conditioning else None
    errors = forward_errors(pack_weights(model), config.dilations, codes, speaker, args.steps)
    print(f"{args.checkpoint}: {config.num_layers} layers, residual {config.residual_channels},"
          f" skip {config.skip_channels}; {args.samples} samples teacher-forced, the last "
          f"{args.steps} compared; CPU: {cpu_model()}")
    print("| dots | max abs gap to fp32 | max rel gap to fp32 | max abs gap to float64 "
          "| max rel gap to float64 |")
    print("|---|---:|---:|---:|---:|")
    for name, e in errors.items():
        print(f"| {name} | {e['abs']:.2e} | {e['rel']:.2e} | {e['abs64']:.2e} | "
              f"{e['rel64']:.2e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
