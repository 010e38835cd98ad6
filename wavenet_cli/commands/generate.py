"""`wavenet generate`: write a WAV from a checkpoint, with a progress bar and samples/s."""

from __future__ import annotations

import argparse
import time

import numpy as np

from wavenet_core.audio.wav import read_wav, write_wav
from wavenet_core.generation.conditioning import check_mel, mel_from_audio, mel_num_samples
from wavenet_core.generation.precision import PRECISIONS, recorded_costs
from wavenet_core.generation.registry import BACKENDS, make_backend
from wavenet_core.generation.session import synthesize
from wavenet_core.model.checkpoint import load_checkpoint, speaker_names


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .safetensors checkpoint")
    p.add_argument("--out", "-o", default="out.wav", help="WAV file to write")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--seconds", type=float, default=None, help="length (no-mel models)")
    source.add_argument("--mel", help="a .npy log-mel [frames, n_mels] to vocode")
    source.add_argument("--audio", help="a WAV to resynthesize through the mel frontend")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    p.add_argument("--speaker", default="0", help="speaker id or name")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="weight format: cpu fp32/bf16/int8, triton fp32/fp16 (auto: cpu, the "
                        "fastest native one within the checkpoint's recorded NLL budget; "
                        "triton, fp16 on CUDA)")
    p.add_argument("--chunk", type=int, default=4000, help="samples per backend call")


def speaker_index(value: str, checkpoint) -> int:
    names = speaker_names(checkpoint) or []
    if value in names:
        return names.index(value)
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"unknown speaker {value!r}; this model has {names}") from None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    model = load_checkpoint(args.checkpoint)
    config = model.config
    speaker = speaker_index(args.speaker, args.checkpoint)
    if config.global_conditioning and not 0 <= speaker < config.num_speakers:
        raise SystemExit(f"speaker must be in 0..{config.num_speakers - 1}")
    mel = None
    if config.local_conditioning:
        if args.mel:
            mel = np.load(args.mel, allow_pickle=False)
        elif args.audio:
            try:
                mel = mel_from_audio(read_wav(args.audio, config.sample_rate)[0], config)
            except ValueError as exc:    # e.g. a recipe whose STFT cannot take this hop
                raise SystemExit(f"wavenet generate: {exc}") from None
        else:
            raise SystemExit("this model is mel conditioned: give --mel or --audio")
        mel = check_mel(mel, config)
        num_samples = mel_num_samples(len(mel), config)
    else:
        if args.mel or args.audio:
            raise SystemExit("this model takes no mel: give --seconds")
        num_samples = int(round((args.seconds or 1.0) * config.sample_rate))
    try:
        backend = make_backend(model, args.backend, args.device, args.precision,
                               recorded_costs(args.checkpoint))
    except ValueError as exc:          # e.g. a precision this backend does not offer
        raise SystemExit(f"wavenet generate: {exc}") from None
    began = time.perf_counter()
    with tqdm(total=num_samples, unit="sample", unit_scale=True, desc="generate") as bar:
        audio = synthesize(backend, num_samples, seed=args.seed, temperature=args.temperature,
                           speaker=speaker, mel=mel, chunk=args.chunk, progress=bar.update)
    elapsed = time.perf_counter() - began
    write_wav(args.out, audio, config.sample_rate)
    print(f"wrote {args.out}: {num_samples} samples ({num_samples / config.sample_rate:.2f} s) "
          f"in {elapsed:.2f} s = {num_samples / elapsed:,.0f} samples/s "
          f"({num_samples / elapsed / config.sample_rate:.2f}x real time, backend {backend.name}, "
          f"precision {getattr(backend, 'precision', 'fp32')})")
    return 0
