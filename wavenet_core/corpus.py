"""A multi-speaker speech corpus rendered with the speech synthesizers of `speech`.

Why: we need licence-free speech from several distinct voices to train a small
speaker-conditioned vocoder, made offline on any machine. espeak-ng, flite and (optionally)
festival each render our own generated sentences; every voice of `speech.VOICES` is a speaker.

Layout: ``OUT/train/*.wav``, ``OUT/valid/*.wav`` (16 kHz mono 16-bit PCM, silence trimmed,
peak 0.9) and ``OUT/manifest.json``. The valid sentences never occur in training text and
are rendered by every speaker, so held-out audio is new text from known voices.
"""

from __future__ import annotations

import json
import random
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from wavenet_core.audio import write_wav
from wavenet_core.speech import SAMPLE_RATE, Voice, available_voices, speak

MANIFEST = "manifest.json"


class CorpusError(RuntimeError):
    """The corpus cannot be built or read; the message says what to fix."""


# --- sentences: a small grammar, deterministic from a seed -------------------------------
_W = {k: v.split() for k, v in {
    "name": "Anna Ben Carla David Emma Frank Grace Henry Iris Jack Laura Martin Nora Oscar "
            "Paula Rosa Samuel Tina Victor Walter Yvonne Zoe",
    "adj": "red quiet old bright small heavy curious silver broken gentle famous narrow warm "
           "strange busy green tall empty wooden golden noisy lonely",
    "noun": "cat train garden river teacher window letter engine island doctor bicycle kitchen "
            "market storm pencil village camera mountain bridge farmer violin lantern robot "
            "basket painter sailor tower blanket",
    "past": "found painted visited opened carried followed repaired watched described "
            "remembered ignored noticed borrowed cleaned answered moved",
    "base": "find paint visit open carry follow repair watch describe remember ignore notice "
            "borrow clean answer move",
    "adverb": "slowly carefully quickly quietly happily suddenly patiently proudly",
    "city": "Boston Lisbon Dublin Oslo Denver Madrid Vienna Chicago Prague Toronto",
    "day": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "month": "January March April June August October November",
}.items()}
_PLACES = ("near the station", "behind the old church", "in the garden", "on the hill",
           "under the bridge", "at the market", "across the river", "inside the museum",
           "by the sea", "in the kitchen")
_TIMES = ("yesterday", "this morning", "last winter", "at noon", "every Sunday",
          "before dinner", "after the storm", "tonight", "last week")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _clause(r: random.Random, c) -> str:
    return r.choice([
        f"{c('name')} {c('past')} the {c('adj')} {c('noun')} {r.choice(_PLACES)}",
        f"the {c('adj')} {c('noun')} {c('past')} {_a(c('noun'))} {r.choice(_TIMES)}",
        f"{c('name')} said that the {c('noun')} was {c('adj')}",
        f"{c('name')} will {c('base')} the {c('noun')} {c('adverb')}",
    ])


def _sentence(r: random.Random) -> str:
    def c(kind: str) -> str:
        return r.choice(_W[kind])

    n = r.randint(2, 99)
    templates = [
        lambda: _clause(r, c) + ".",
        lambda: _clause(r, c) + ", but " + _clause(r, c) + ".",
        lambda: _clause(r, c) + ", and " + c("name") + " agreed.",
        lambda: f"did {c('name')} {c('base')} the {c('noun')} {r.choice(_TIMES)}?",
        lambda: f"why would the {c('noun')} {c('base')} {c('name')} {r.choice(_PLACES)}?",
        lambda: f"how many {c('noun')}s did {c('name')} {c('base')} {r.choice(_TIMES)}?",
        lambda: f"{c('name')} bought {n} {c('noun')}s for {r.randint(1, 500)} dollars.",
        lambda: f"the train to {c('city')} leaves at {r.randint(1, 12)}:{r.randint(0, 59):02d} "
                f"on {c('day')}.",
        lambda: f"in {r.randint(1850, 2030)}, the {c('noun')}s of {c('city')} were {c('adj')}.",
        lambda: f"what {_a(c('adj'))} {c('noun')} that was!",
        lambda: f"is it true that {n} {c('noun')}s live {r.choice(_PLACES)}?",
        lambda: f"on {c('month')} {r.randint(1, 28)}, {_clause(r, c)}.",
        lambda: f"please ask {c('name')} to call {r.randint(200, 999)} {r.randint(1000, 9999)}.",
    ]
    text = r.choice(templates)()
    return text[0].upper() + text[1:]


def make_sentences(count: int, seed: int = 0) -> list[str]:
    """`count` distinct sentences, the same for the same seed."""
    r, seen, out = random.Random(seed), set(), []
    for _ in range(50 * count + 1000):
        if len(out) == count:
            return out
        s = _sentence(r)
        if s not in seen:
            seen.add(s)
            out.append(s)
    raise CorpusError(f"the grammar could not make {count} distinct sentences")


def split_texts(num_speakers: int, sentences_per_speaker: int, valid_fraction: float = 0.1,
                seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """(valid sentences for every speaker, each speaker's own train sentences); disjoint."""
    n_valid = max(1, round(sentences_per_speaker * valid_fraction)) if valid_fraction > 0 else 0
    n_train = sentences_per_speaker - n_valid
    if n_train < 1 or num_speakers < 1:
        raise CorpusError(f"too few sentences ({sentences_per_speaker}) or speakers"
                          f" ({num_speakers})")
    pool = make_sentences(n_valid + n_train * num_speakers, seed)
    train = [pool[n_valid + k * n_train: n_valid + (k + 1) * n_train] for k in range(num_speakers)]
    return pool[:n_valid], train


# --- rendering ---------------------------------------------------------------------------
def render(voice: Voice, text: str, out_path: str | Path, workdir: str | Path) -> int:
    """Synthesize `text` with `voice` to a 16 kHz WAV at `out_path`; returns its sample count."""
    audio = speak(voice, text, workdir)
    write_wav(out_path, audio, SAMPLE_RATE)
    return len(audio)


def build_corpus(out_dir: str | Path, sentences_per_speaker: int = 100,
                 valid_fraction: float = 0.1, seed: int = 0, progress: bool = True,
                 jobs: int = 2, voices: list[Voice] | None = None,
                 num_speakers: int | None = None) -> dict:
    """Render the corpus into `out_dir` (old WAVs in train/ and valid/ are removed).

    `voices` defaults to `available_voices()`; `num_speakers` keeps the first N of them.
    """
    voices = list(available_voices() if voices is None else voices)[:num_speakers]
    if not voices:
        raise CorpusError("no speech synthesizer found: install one, e.g. "
                          "`apt-get install -y espeak-ng flite` (festival voices optional)")
    valid, train = split_texts(len(voices), sentences_per_speaker, valid_fraction, seed)
    out = Path(out_dir)
    (out / MANIFEST).unlink(missing_ok=True)  # a stale manifest must not outlive its WAVs
    for split in ("train", "valid"):
        (out / split).mkdir(parents=True, exist_ok=True)
        for old in (out / split).glob("*.wav"):
            old.unlink()
    utterances = []
    for sid, voice in enumerate(voices):
        for split, texts in (("train", train[sid]), ("valid", valid)):
            for i, text in enumerate(texts):
                utterances.append({"path": f"{split}/{voice.name}_{i:04d}.wav",
                                   "speaker": voice.name, "speaker_id": sid,
                                   "split": split, "text": text})
    with tempfile.TemporaryDirectory() as work, ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(render, voices[u["speaker_id"]], u["text"], out / u["path"],
                               work): u for u in utterances}
        with tqdm(total=len(futures), disable=not progress, unit="utt", desc="corpus") as bar:
            try:
                for future in as_completed(futures):
                    futures[future]["num_samples"] = future.result()
                    bar.update(1)
            except BaseException:  # one failure (or Ctrl-C) stops the rest
                for future in futures:
                    future.cancel()
                raise
    manifest = {"format": 1, "sample_rate": SAMPLE_RATE,
                "speakers": [v.name for v in voices],
                "voices": [{**asdict(v), "args": list(v.args)} for v in voices],
                "seed": seed, "sentences_per_speaker": sentences_per_speaker,
                "valid_fraction": valid_fraction,
                "total_seconds": sum(u["num_samples"] for u in utterances) / SAMPLE_RATE,
                "utterances": utterances}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / MANIFEST)  # written last: a manifest means a complete corpus
    return manifest


def load_manifest(corpus_dir: str | Path) -> dict:
    """Read `corpus_dir/manifest.json`; utterance paths are relative to `corpus_dir`."""
    path = Path(corpus_dir) / MANIFEST
    if not path.exists():
        raise CorpusError(f"{path}: no manifest; build the corpus first (wavenet corpus --out ...)")
    manifest = json.loads(path.read_text())
    missing = {"sample_rate", "speakers", "utterances"} - set(manifest)
    if missing:
        raise CorpusError(f"{path}: manifest lacks {sorted(missing)}")
    return manifest
