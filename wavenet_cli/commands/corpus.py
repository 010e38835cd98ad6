"""`wavenet corpus`: build the synthetic multi-speaker speech corpus (wavenet_core.training.corpus),
and optionally pack a compact training subset of it (wavenet_core.training.pack)."""

from __future__ import annotations

import argparse
import os

from wavenet_core.training.corpus import HELD_OUT, build_corpus, corpus_voices, load_manifest


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="output directory")
    p.add_argument("--sentences-per-speaker", type=int, default=100)
    p.add_argument("--valid-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--speakers", type=int, default=None, help="use only the first N voices")
    p.add_argument("--engine", action="append", metavar="NAME",
                   choices=("espeak-ng", "flite", "festival", "kokoro"),
                   help="render only this engine's voices (repeatable; default: every engine)")
    p.add_argument("--list-voices", action="store_true", help="print usable voices and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--keep-existing", action="store_true",
                   help="reuse WAVs already in --out (resume an interrupted build)")
    pack = p.add_argument_group("training pack (8-bit codes + float16 mels in one .npz)")
    pack.add_argument("--pack", metavar="FILE", help="also write a training subset here")
    pack.add_argument("--pack-minutes", type=float, default=15.0, help="training audio")
    pack.add_argument("--pack-valid-minutes", type=float, default=1.0)
    pack.add_argument("--pack-pad", type=int, default=1023,
                      help="leading silence = the model's receptive field (bundled: 1023)")
    pack.add_argument("--reuse", action="store_true",
                      help="pack the corpus already in --out instead of rendering it")


def run(args: argparse.Namespace) -> int:
    voices = [v for v in corpus_voices() if not args.engine or v.engine in args.engine]
    if args.list_voices:
        for v in voices:
            split = "held-out" if v.name in HELD_OUT else "train"
            print(f"{v.name}\t{split}\t{v.engine}\t{v.voice}\t{' '.join(v.args)}")
        return 0
    if not args.out:
        raise SystemExit("wavenet corpus: --out is required")
    if args.reuse:
        m = load_manifest(args.out)
    else:
        m = build_corpus(args.out, args.sentences_per_speaker, args.valid_fraction, args.seed,
                         not args.quiet, args.jobs, voices=voices, num_speakers=args.speakers,
                         keep_existing=args.keep_existing)
    print(f"{len(m['utterances'])} utterances, {len(m['speakers'])} training speakers, "
          f"{len(m.get('held_out_speakers', []))} held out, "
          f"{sum(u['num_samples'] for u in m['utterances']) / m['sample_rate'] / 3600:.2f} h"
          f" -> {args.out}")
    if args.pack:
        from wavenet_core.training.pack import write_pack

        info = write_pack(args.out, args.pack, args.pack_minutes, args.pack_valid_minutes,
                          args.pack_pad)
        print(f"pack: {info['seconds']['train'] / 60:.1f} min train, "
              f"{info['seconds']['valid'] / 60:.1f} min valid, "
              f"{os.path.getsize(args.pack) / 2**20:.1f} MiB -> {args.pack}")
    return 0
