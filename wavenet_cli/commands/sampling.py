"""`wavenet sampling`: show or set a checkpoint's default sampling, the voicing-shaped
sampling of FFTNet and LPCNet (docs/voicing.md): voiced frames (from the mel) at
`--voiced-temperature` with the probabilities below `--voiced-floor` cut. The defaults live
in the checkpoint's config; a request's explicit temperature still samples unshaped.
"""

from __future__ import annotations

import argparse
import dataclasses


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .safetensors checkpoint (rewritten with --voiced-*)")
    p.add_argument("--voiced-temperature", type=float, default=None,
                   help="temperature in voiced frames (LPCNet: 0.5 at full voicing)")
    p.add_argument("--voiced-floor", type=float, default=None,
                   help="probabilities below this (after the temperature) are zeroed in "
                        "voiced frames (LPCNet: 0.002)")
    p.add_argument("--off", action="store_true", help="back to plain sampling (1.0 and 0)")


def run(args: argparse.Namespace) -> int:
    from wavenet_core.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint

    model = load_checkpoint(args.checkpoint)
    config = model.config
    change = {}
    if args.off:
        change = dict(voiced_temperature=1.0, voiced_floor=0.0)
    for name in ("voiced_temperature", "voiced_floor"):
        if getattr(args, name) is not None:
            change[name] = getattr(args, name)
    if change:
        try:
            config = dataclasses.replace(config, **change)
        except ValueError as exc:
            raise SystemExit(f"wavenet sampling: {exc}") from None
        model.config = config
        keep = {k: v for k, v in read_metadata(args.checkpoint).items()
                if k not in ("format", "format_version", "config")}
        save_checkpoint(args.checkpoint, model, keep)
    state = (f"voicing-shaped: voiced frames at temperature {config.voiced_temperature:g}, "
             f"floor {config.voiced_floor:g}; unvoiced at 1" if config.voicing_shaping
             else "plain: every sample at the request's temperature (default 1)")
    print(f"{args.checkpoint}{' (written)' if change else ''}: {state}")
    return 0
