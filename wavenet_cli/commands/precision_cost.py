"""`wavenet precision-cost`: measure each CPU precision's held-out NLL cost for a checkpoint
and (with --write) record it in the checkpoint, where precision "auto" reads it.

Held-out data: the `valid` utterances of a `wavenet corpus` folder (the first N by path,
of the speakers the checkpoint names) or of a training pack (.npz, models without speaker
input), cut into the validation windows training uses. An excitation model's audio is
mu-law audio (a pack's, or a folder's quantised first), so the kernel's own predictions
from the decoded inputs are the windows' (wavenet_core/bench/precision_cost.py). A
scalar-output model (a converted r9y9 one: mol or gaussian) is measured on a folder's
16-bit audio, resampled to its rate, with its own feature recipe and upsampler
(wavenet_core/training/scalar_windows.py); a pack's 8-bit mu-law audio is refused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .safetensors checkpoint")
    p.add_argument("--corpus", required=True,
                   help="a `wavenet corpus` folder, or a training pack (.npz)")
    p.add_argument("--utterances", type=int, default=24, help="held-out utterances to use")
    p.add_argument("--window", type=int, default=4000, help="predictions per window")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--write", action="store_true",
                   help="record the costs in the checkpoint's metadata")


def run(args: argparse.Namespace) -> int:
    import torch

    from wavenet_core.bench.precision_cost import precision_costs
    from wavenet_core.bench.roofline import cpu_model
    from wavenet_core.generation.precision import METADATA_KEY, NLL_BUDGET_BITS
    from wavenet_core.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint

    model = load_checkpoint(args.checkpoint)
    config = model.config
    if config.upsample_scales and not config.scalar_io:
        raise SystemExit(f"{args.checkpoint}: precision-cost measures softmax models with "
                         "linearly interpolated mel and scalar-output (mol, gaussian) models; "
                         "this softmax model with a learned upsampler runs fp32 under "
                         "precision auto")
    corpus = Path(args.corpus)
    if corpus.suffix != ".npz" and not (corpus / "manifest.json").is_file():
        raise SystemExit(f"{corpus}: not a `wavenet corpus` folder (no manifest.json) nor a "
                         "training pack (.npz)")
    if config.scalar_io:
        batches = scalar_held_out(corpus, args, model)
    else:
        batches = code_held_out(corpus, args, config)
    if not batches:
        raise SystemExit(f"no utterance is longer than --window {args.window}")
    predictions = sum(b.targets.size for b in batches)
    print(f"{args.checkpoint}: {predictions:,} held-out predictions; "
          f"cpu {cpu_model()}")
    with torch.no_grad():
        costs = precision_costs(model, batches, threads=args.threads)
    table = {p: round(v["cost"], 6) for p, v in costs.items() if p != "fp32"}
    print(json.dumps({"nll_bits": {p: round(v["bits"], 6) for p, v in costs.items()},
                      "cost_bits": table, "budget_bits": NLL_BUDGET_BITS}))
    if args.write:
        meta = read_metadata(args.checkpoint)
        meta[METADATA_KEY] = json.dumps(table, sort_keys=True)
        keep = {k: v for k, v in meta.items() if k not in ("format", "format_version", "config")}
        save_checkpoint(args.checkpoint, model, keep)
        print(f"recorded {METADATA_KEY} in {args.checkpoint}")
    return 0


def code_held_out(corpus: Path, args, config) -> list:
    """A softmax model's validation windows (data.fixed_batches) from a pack or a folder."""
    from wavenet_core.training.data import fixed_batches
    from wavenet_core.training.pack import load_pack_utterances
    from wavenet_core.training.utterance import make_utterance

    if corpus.suffix == ".npz":
        if config.global_conditioning:
            raise SystemExit(f"{corpus}: a pack's speakers are not this model's; give the "
                             "`wavenet corpus` folder")
        utts = load_pack_utterances(corpus, "valid", config, config.receptive_field,
                                    args.utterances)
    else:
        utts = [make_utterance(audio, speaker, config, config.receptive_field)
                for audio, speaker in folder_audio(corpus, args.checkpoint, config,
                                                   args.utterances, mulaw=config.lpc_excitation)]
    if not utts:
        raise SystemExit(f"{corpus}: no held-out utterances for this model's speakers")
    return fixed_batches(utts, config, 8, args.window, rows=config.lpc_excitation)


def scalar_held_out(corpus: Path, args, model) -> list:
    """A scalar-I/O model's windows (training/scalar_windows.py) from a corpus folder."""
    from wavenet_core.training.scalar_windows import scalar_batches, scalar_track

    config = model.config
    if corpus.suffix == ".npz":
        raise SystemExit(f"{corpus}: a pack holds 8-bit mu-law audio at its own rate; a "
                         f"{config.output} model's NLL is of 16-bit samples: give the "
                         "`wavenet corpus` folder")
    upsampler = getattr(model, "upsampler", None)
    tracks = [scalar_track(audio, speaker, config, upsampler)
              for audio, speaker in folder_audio(corpus, args.checkpoint, config,
                                                 args.utterances)]
    if not tracks:
        raise SystemExit(f"{corpus}: no held-out utterances for this model's speakers")
    return scalar_batches(tracks, config, 8, args.window)


def folder_audio(corpus: Path, checkpoint: str, config, limit: int,
                 mulaw: bool = False) -> list[tuple]:
    """(audio at the model's rate, speaker index) of the first `limit` held-out utterances
    (by path) of the checkpoint's speakers in a `wavenet corpus` folder; with `mulaw` the
    audio quantised to mu-law first (an excitation model's)."""
    from wavenet_core.audio.mulaw import mulaw_decode, mulaw_encode
    from wavenet_core.audio.wav import read_wav
    from wavenet_core.model.checkpoint import speaker_names

    names = speaker_names(checkpoint, config.num_speakers) or []
    manifest = json.loads((corpus / "manifest.json").read_text())
    held_out = sorted((u for u in manifest["utterances"] if u["split"] == "valid"
                       and (not names or u["speaker"] in names)), key=lambda u: u["path"])

    def speaker(u) -> int:
        if not config.global_conditioning:
            return 0
        return names.index(u["speaker"]) if names else int(u["speaker_id"])

    def audio(u):
        x = read_wav(corpus / u["path"], config.sample_rate)[0]
        if mulaw:
            x = mulaw_decode(mulaw_encode(x, mu=config.classes - 1), mu=config.classes - 1)
        return x

    return [(audio(u), speaker(u)) for u in held_out[:limit]]
