"""`wavenet corpus`: build the synthetic multi-speaker speech corpus (wavenet_core.corpus)."""

from __future__ import annotations

import argparse

from wavenet_core.corpus import build_corpus
from wavenet_core.speech import available_voices


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="output directory")
    p.add_argument("--sentences-per-speaker", type=int, default=100)
    p.add_argument("--valid-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--speakers", type=int, default=None, help="use only the first N voices")
    p.add_argument("--list-voices", action="store_true", help="print usable voices and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.list_voices:
        for v in available_voices():
            print(f"{v.name}\t{v.engine}\t{v.voice}\t{' '.join(v.args)}")
        return 0
    if not args.out:
        raise SystemExit("wavenet corpus: --out is required")
    m = build_corpus(args.out, args.sentences_per_speaker, args.valid_fraction, args.seed,
                     not args.quiet, args.jobs, num_speakers=args.speakers)
    print(f"{len(m['utterances'])} utterances, {len(m['speakers'])} speakers, "
          f"{m['total_seconds'] / 3600:.2f} h -> {args.out}")
    return 0
