"""A compact training subset: mu-law codes (uint8) and log-mels (float16) in one .npz.

Why: `scripts/gpu-train` trains where there is no synthesizer and nothing to download, so
what it trains on travels with the tree and must stay small (under 40 MB). `wavenet corpus
--pack FILE` makes it from a built corpus: whole utterances of the training voices, drawn
round-robin over the voices until `minutes` of training audio, plus a few 'valid' ones.
Each utterance is stored exactly as `utterance.make_utterance` builds it (`pad` samples of
silence first, the log-mel of the padded audio), so training reads it without recomputing;
`load_utterances` accepts the .npz wherever it accepts a corpus folder.
No pickle: every array is numeric, the description is JSON in a uint8 array.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from wavenet_core.audio.wav import read_wav
from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.training.corpus import CorpusError, load_manifest
from wavenet_core.training.utterance import InputNoise, Utterance, make_utterance, with_excitation

PACK_FORMAT = 1


def choose(manifest: dict, split: str, seconds: float) -> list[dict]:
    """Utterances of `split`, one per voice in turn (voice order, then file order), until
    their audio reaches `seconds`. Deterministic for a given manifest."""
    by_voice: dict[str, list[dict]] = {}
    for u in sorted((u for u in manifest["utterances"] if u["split"] == split),
                    key=lambda u: u["path"]):
        by_voice.setdefault(u["speaker"], []).append(u)
    queues = [by_voice[s] for s in manifest["speakers"] if s in by_voice]
    picked, total, rate = [], 0.0, manifest["sample_rate"]
    for round_ in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if round_ < len(queue) and total < seconds:
                picked.append(queue[round_])
                total += queue[round_]["num_samples"] / rate
    return picked


def write_pack(corpus_dir, out_path, minutes: float, valid_minutes: float = 1.0,
               pad: int = 1023, mel: MelConfig | None = None) -> dict:
    """Pack a subset of `corpus_dir` into `out_path` (.npz); returns its description."""
    corpus_dir, mel = Path(corpus_dir), mel or MelConfig()
    manifest = load_manifest(corpus_dir)
    config = WaveNetConfig(sample_rate=manifest["sample_rate"], mel_channels=mel.n_mels, mel=mel)
    items = choose(manifest, "train", 60 * minutes) + choose(manifest, "valid",
                                                            60 * valid_minutes)
    utts = [make_utterance(read_wav(corpus_dir / u["path"], config.sample_rate)[0],
                           u["speaker_id"], config, pad) for u in items]
    codes = [u.codes for u in utts]
    mels = [u.mel.astype(np.float16) for u in utts]
    info = {"format": PACK_FORMAT, "sample_rate": config.sample_rate, "pad": pad,
            "mel": dataclasses.asdict(mel), "speakers": manifest["speakers"],
            "held_out_speakers": manifest.get("held_out_speakers", []),
            "splits": [u["split"] for u in items], "paths": [u["path"] for u in items],
            "seconds": {s: sum(len(c) - pad for c, u in zip(codes, items) if u["split"] == s)
                        / config.sample_rate for s in ("train", "valid")}}
    np.savez_compressed(
        out_path, codes=np.concatenate(codes), mels=np.concatenate(mels),
        code_offsets=np.cumsum([0] + [len(c) for c in codes]),
        mel_offsets=np.cumsum([0] + [len(m) for m in mels]),
        speakers=np.array([u.speaker for u in utts], dtype=np.int32),
        info=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8))
    return info


def read_pack(path) -> tuple[dict, dict]:
    """(description, arrays) of a pack; a clear error if it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        info = json.loads(arrays.pop("info").tobytes())
    except (OSError, ValueError, KeyError) as exc:
        raise CorpusError(f"{path}: not a training pack ({exc})") from exc
    if info.get("format") != PACK_FORMAT:
        raise CorpusError(f"{path}: pack format {info.get('format')!r}, expected {PACK_FORMAT}")
    return info, arrays


def load_pack_utterances(path, split: str, config: WaveNetConfig, pad: int,
                         limit: int | None = None, noise: InputNoise | None = None) -> list:
    """The pack's `split` utterances as `utterance.Utterance`s; the model must match the pack."""
    info, a = read_pack(path)
    mel = MelConfig(**info["mel"])
    if pad != info["pad"] or config.sample_rate != info["sample_rate"] or (
            config.local_conditioning and mel != config.mel):
        raise CorpusError(f"{path} was packed for pad {info['pad']}, {info['sample_rate']} Hz,"
                          f" {mel}; this model needs pad {pad}, {config.sample_rate} Hz,"
                          f" {config.mel}")
    if config.local_conditioning and config.features.kind != "ours":
        raise CorpusError(f"{path} holds this project's log-mel; a model with "
                          f"{config.features.kind!r} features trains on a corpus folder")
    if config.preemphasis:
        raise CorpusError(f"{path} holds codes of plain audio; a model with preemphasis "
                          "trains on a corpus folder")
    co, mo = a["code_offsets"], a["mel_offsets"]
    picked = [i for i, s in enumerate(info["splits"]) if s == split][:limit]
    utts = [Utterance(a["codes"][co[i]:co[i + 1]],
                      a["mels"][mo[i]:mo[i + 1]].astype(np.float32)
                      if config.local_conditioning else None, int(a["speakers"][i]))
            for i in picked]
    return ([with_excitation(u, config, noise=noise) for u in utts] if config.lpc_excitation
            else utts)
