"""`wavenet convert --from r9y9 IN.pth OUT.safetensors [--hparams FILE] [--meanvar FILE
[--trust-pickle]]`: import a WaveNet trained elsewhere as a checkpoint of this project, with
the recipe of the features it was trained on (wavenet_core.interop.r9y9)."""

from __future__ import annotations

import argparse
import sys

from wavenet_core.interop.r9y9 import ConvertError, convert_r9y9


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", choices=["r9y9"], required=True,
                   help="the implementation that trained it (r9y9: wavenet_vocoder)")
    p.add_argument("input", help="the checkpoint (.pth), read with torch.load weights_only")
    p.add_argument("output", help="the .safetensors checkpoint to write")
    p.add_argument("--hparams", help="their hparams as JSON (preset format); without it "
                                     "their LJSpeech preset's values")
    p.add_argument("--meanvar", help="r9y9 master features: their meanvar.joblib (needs "
                                     "--trust-pickle), or an .npz with `mean` and `scale`")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow unpickling the --meanvar .joblib (it can run code)")


def run(args: argparse.Namespace) -> int:
    try:
        model = convert_r9y9(args.input, args.output, args.hparams, args.meanvar,
                             args.trust_pickle)
    except ConvertError as exc:
        print(f"wavenet convert: {exc}", file=sys.stderr)
        return 1
    c = model.config
    print(f"wrote {args.output}: {c.num_layers} layers in {c.stacks} stacks, kernel "
          f"{c.kernel_size}, residual {c.residual_channels}, gate {c.gate_width}, skip "
          f"{c.skip_channels}, output {c.output}"
          + (f" ({c.mixtures} mixtures)" if c.mixtures else "")
          + (f", mel {c.mel_channels} upsampled x{c.mel.hop_length}" if c.mel_channels else "")
          + (f", {c.num_speakers} speakers" if c.num_speakers else "")
          + (f"; features: {c.features.describe()} at {c.sample_rate} Hz"
             if c.mel_channels else ""))
    return 0
