"""A multi-speaker speech corpus rendered with the Debian speech synthesizers.

Why: we need licence-free speech from several distinct voices to train a small
speaker-conditioned vocoder, made offline on any machine. espeak-ng, flite and (optionally)
festival each render our own generated sentences (through `speech.speak`, the system
programs); every voice of `voices.VOICES` this machine has is a speaker.

Layout: ``OUT/{train,valid,test}/*.wav`` (16 kHz mono 16-bit PCM, silence trimmed, peak
0.9) and ``OUT/manifest.json``. The held-out sentences never occur in training text and are
read by every voice: by training voices into 'valid' (new text, known voices) and by the
held-out voices (`voices.HELD_OUT`, never in training) into 'test' (new text, new voices).
"""

from __future__ import annotations

import json
import random
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from wavenet_core.audio.wav import write_wav
from wavenet_core.text.speech import SAMPLE_RATE, SpeechError, Voice, speak, trim_and_normalise
from wavenet_core.text.voices import HELD_OUT, VOICES, available_voices

__all__ = ["HELD_OUT", "VOICES", "Voice", "build_corpus", "corpus_voices", "load_manifest",
           "make_sentences", "speak", "split_texts", "trim_and_normalise", "CorpusError"]

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
def render(voice: Voice, text: str, out_path: str | Path, workdir: str | Path,
           keep: bool = False) -> int:
    """Synthesize `text` with `voice` to a 16 kHz WAV at `out_path`; returns its sample count.

    With `keep`, an existing file is taken as is (rendering is deterministic, and files are
    written whole under a temporary name, so one that exists is complete).
    """
    out_path = Path(out_path)
    if keep and out_path.exists():
        with wave.open(str(out_path)) as w:
            return w.getnframes()
    audio = speak(voice, text, workdir, program=True)   # the voices `voices.usable` checked
    tmp = out_path.with_suffix(".part")
    write_wav(tmp, audio, SAMPLE_RATE)
    tmp.replace(out_path)
    return len(audio)


def corpus_voices() -> list[Voice]:
    """Every voice of `VOICES` this machine's synthesizer programs render (speaker ids
    follow this order)."""
    return available_voices(VOICES, programs_only=True)


def build_corpus(out_dir: str | Path, sentences_per_speaker: int = 100,
                 valid_fraction: float = 0.1, seed: int = 0, progress: bool = True,
                 jobs: int = 2, voices: list[Voice] | None = None,
                 num_speakers: int | None = None, held_out: frozenset[str] = HELD_OUT,
                 keep_existing: bool = False) -> dict:
    """Render the corpus into `out_dir` (old WAVs in train/, valid/ and test/ are removed).

    `voices` defaults to `corpus_voices()`; `num_speakers` keeps the first N of them.
    Voices named in `held_out` read only the held-out sentences, into 'test'; the others
    are the training speakers (manifest `speakers`, ids in that order). A sentence a voice
    cannot render (some festival voices fail on some words) is left out and listed in the
    manifest's `failed`. `keep_existing` reuses WAVs already there (resuming a build).
    """
    voices = list(corpus_voices() if voices is None else voices)[:num_speakers]
    if not voices:
        raise CorpusError("no speech synthesizer found: install one, e.g. "
                          "`apt-get install -y espeak-ng flite` (festival voices optional)")
    known = [v for v in voices if v.name not in held_out]
    unseen = [v for v in voices if v.name in held_out]
    valid, train = split_texts(len(known), sentences_per_speaker, valid_fraction, seed)
    out = Path(out_dir)
    (out / MANIFEST).unlink(missing_ok=True)  # a stale manifest must not outlive its WAVs
    for split in ("train", "valid", "test"):
        (out / split).mkdir(parents=True, exist_ok=True)
        for old in (out / split).glob("*.wav"):
            if not keep_existing:
                old.unlink()
    jobs_by_voice = [(v, sid, (("train", train[sid]), ("valid", valid)))
                     for sid, v in enumerate(known)]
    jobs_by_voice += [(v, -1, (("test", valid),)) for v in unseen]
    utterances, voice_of = [], {}
    for voice, sid, splits in jobs_by_voice:
        voice_of[voice.name] = voice
        for split, texts in splits:
            for i, text in enumerate(texts):
                utterances.append({"path": f"{split}/{voice.name}_{i:04d}.wav",
                                   "speaker": voice.name, "speaker_id": sid,
                                   "split": split, "text": text})
    with tempfile.TemporaryDirectory() as work, ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(render, voice_of[u["speaker"]], u["text"], out / u["path"],
                               work, keep_existing): u for u in utterances}
        with tqdm(total=len(futures), disable=not progress, unit="utt",
                  desc="corpus") as bar:
            try:
                for future in as_completed(futures):
                    try:
                        futures[future]["num_samples"] = future.result()
                    except (CorpusError, SpeechError) as exc:
                        futures[future]["error"] = str(exc)[:300]
                    bar.update(1)
            except BaseException:  # one failure (or Ctrl-C) stops the rest
                for future in futures:
                    future.cancel()
                raise
    failed = [u for u in utterances if "error" in u]
    utterances = [u for u in utterances if "error" not in u]
    if not utterances:
        raise CorpusError(f"every utterance failed, e.g. {failed[0]['error']}")
    manifest = {"format": 2, "sample_rate": SAMPLE_RATE,
                "speakers": [v.name for v in known],
                "held_out_speakers": [v.name for v in unseen],
                "voices": [{**asdict(v), "args": list(v.args)} for v in voices],
                "seed": seed, "sentences_per_speaker": sentences_per_speaker,
                "valid_fraction": valid_fraction,
                "total_seconds": sum(u["num_samples"] for u in utterances) / SAMPLE_RATE,
                "utterances": utterances, "failed": failed}
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
