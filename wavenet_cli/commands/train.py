"""`wavenet train`: train a WaveNet on a corpus made by `wavenet corpus`."""

from __future__ import annotations

import argparse
import dataclasses

from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.training.corpus import load_manifest
from wavenet_core.training.train import TrainSettings, train
from wavenet_core.training.utterance import NOISE_DOMAINS, NOISE_LAWS

BOOL_HELP = {"fused": "the fused training step on a CPU (the same loss, about 1.7x the "
                      "samples/s: wavenet_core/training/fused.py, benchmarks/train_speed.py); "
                      "--no-fused: the plain autograd step (default: fused)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True,
                   help="corpus folder (with manifest.json), or a training pack (.npz)")
    p.add_argument("--add-corpus", action="append", default=[], metavar="PATH",
                   help="more training audio (a corpus folder or pack, repeatable): its train "
                        "split joins --corpus's; validation stays --corpus's; no --speakers")
    p.add_argument("--out", required=True, help="run folder: checkpoints and metrics.jsonl")
    p.add_argument("--resume", action="store_true", help="continue from the run folder")
    model = p.add_argument_group("model")
    model.add_argument("--layers-per-stack", type=int, default=10)
    model.add_argument("--stacks", type=int, default=2)
    model.add_argument("--residual-channels", type=int, default=64)
    model.add_argument("--skip-channels", type=int, default=128)
    model.add_argument("--mel", action="store_true", help="condition on log-mel (vocoder)")
    model.add_argument("--speakers", action="store_true", help="condition on the speaker")
    model.add_argument("--speaker-channels", type=int, default=16)
    model.add_argument("--hop-length", type=int, default=MelConfig.hop_length)
    model.add_argument("--cond-layers", type=int, default=0,
                       help="conditioning network over the mel frames: blocks, each one frame "
                            "of lookahead (0 = none; with --init-from one is added, starting "
                            "as the identity)")
    model.add_argument("--cond-kernel", type=int, default=3, help="its conv taps (default 3)")
    model.add_argument("--excitation", choices=("none", "lpc"), default="none",
                       help="lpc: linear prediction from the mel carries the envelope and the "
                            "model outputs the excitation (docs/excitation.md; needs --mel)")
    model.add_argument("--lpc-order", type=int, default=16, help="its order (default 16)")
    run = p.add_argument_group("training")
    for field in dataclasses.fields(TrainSettings):
        if field.name in ("corpus", "out_dir", "add_corpus"):
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            run.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default,
                             help=BOOL_HELP[field.name])
            continue
        choices = {"precision": ("auto", "bf16", "fp32"),
                   "input_noise_domain": NOISE_DOMAINS,
                   "input_noise_law": NOISE_LAWS}.get(field.name)
        run.add_argument(flag, type=type(field.default), default=field.default,
                         choices=choices, help=f"default {field.default}")


def corpus_description(corpus: str) -> dict:
    """The corpus folder's manifest, or a training pack's description (.npz, pack.py): both
    name the speakers and the sample rate."""
    if str(corpus).endswith(".npz"):
        from wavenet_core.training.pack import read_pack

        return read_pack(corpus)[0]
    return load_manifest(corpus)


def run(args: argparse.Namespace) -> int:
    manifest = corpus_description(args.corpus)
    speakers = list(manifest["speakers"])
    mel = MelConfig(hop_length=args.hop_length)
    if args.excitation != "none" and not args.mel:
        raise SystemExit("--excitation lpc needs a mel-conditioned model: add --mel")
    if args.cond_layers and not (args.mel or args.init_from):
        raise SystemExit("--cond-layers needs a mel-conditioned model: add --mel")
    config = WaveNetConfig(
        layers_per_stack=args.layers_per_stack, stacks=args.stacks,
        residual_channels=args.residual_channels, skip_channels=args.skip_channels,
        sample_rate=int(manifest["sample_rate"]),
        mel_channels=mel.n_mels if args.mel or args.cond_layers else 0,
        num_speakers=len(speakers) if args.speakers else 0,
        speaker_channels=args.speaker_channels, mel=mel,
        cond_layers=args.cond_layers, cond_kernel=args.cond_kernel,
        excitation=args.excitation, lpc_order=args.lpc_order,
    )
    settings = TrainSettings(corpus=args.corpus, out_dir=args.out, **{
        f.name: getattr(args, f.name) for f in dataclasses.fields(TrainSettings)
        if f.name not in ("corpus", "out_dir", "add_corpus")},
        add_corpus=tuple(args.add_corpus))
    if args.init_from:  # the model's shape comes from that checkpoint (wavenet_core.model.transfer)
        print(f"starting from {args.init_from}'s weights, "
              f"{'speaker-conditioned' if args.speakers else 'universal (no speaker input)'}")
    else:
        print(f"receptive field {config.receptive_field} samples, {config.num_layers} layers, "
              f"speakers {len(speakers) if args.speakers else 0}, "
              f"mel {'yes' if args.mel else 'no'}, excitation {args.excitation}")
    path = train(config, settings, resume=args.resume,
                 speakers=speakers if args.speakers else None)
    print(f"checkpoint: {path}")
    return 0
