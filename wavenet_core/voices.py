"""Every speech-synthesizer voice the Debian packages offer, and which are held out.

Why: a vocoder meets mels of voices it never heard, so the corpus reads with as many
distinct voices as the machine has, and some whole voices never reach training (they
measure generalisation). The list is fixed here, not discovered, so speaker ids and the
held-out set are the same on every machine; voices a machine lacks are dropped.

Packages: espeak-ng (its English accents x its voice variants, ``espeak-ng-data/voices/!v``),
flite (slt, rms, awb, kal16, kal; awb_time is limited-domain and skipped), festival with
festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts, festvox-italp16k, festvox-itapc16k,
festvox-suopuhe-lj, festvox-suopuhe-mv, festvox-czech-{dita,krb,machac,ph},
festvox-ca-ona-hts. Non-English festival voices read our English sentences with their own
letter-to-sound rules: foreign-sounding, but real voices, which is what a vocoder needs.
Left out: festvox-ru (its rules reject Latin text), festvox-{hi,mr,te}-nsk (need their
language's script), and MBROLA (not in Debian main).
"""

from __future__ import annotations

import functools
import glob
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Voice:
    """One speaker: a synthesizer (`engine`), its voice id and extra arguments."""

    name: str
    engine: str  # "espeak-ng" | "flite" | "festival"
    voice: str
    args: tuple[str, ...] = ()

    def command(self, wav_path: str, text: str) -> tuple[list[str], str | None]:
        """(argv, stdin text) that renders `text` into `wav_path`."""
        if self.engine == "espeak-ng":
            return ["espeak-ng", "-v", self.voice, *self.args, "-w", wav_path, "--stdin"], text
        if self.engine == "flite":
            return ["flite", "-voice", self.voice, *self.args, "-t", text, "-o", wav_path], None
        if self.engine == "festival":
            return ["text2wave", "-eval", f"(voice_{self.voice})", "-o", wav_path], text
        raise ValueError(f"unknown engine {self.engine!r}")


# The first 14 are the voices the bundled models were trained with (ids 0-11 where present).
_FIRST = (
    Voice("espeak-us-m3", "espeak-ng", "en-us+m3", ("-s", "165")),
    Voice("espeak-us-f2", "espeak-ng", "en-us+f2", ("-s", "160", "-p", "60")),
    Voice("espeak-rp-m1", "espeak-ng", "en-gb-x-rp+m1", ("-s", "155", "-p", "40")),
    Voice("espeak-klatt", "espeak-ng", "en+klatt", ("-s", "170")),
    Voice("espeak-scot-f4", "espeak-ng", "en-gb-scotland+f4", ("-s", "160", "-p", "65")),
    Voice("espeak-029-m7", "espeak-ng", "en-029+m7", ("-s", "150", "-p", "35")),
    Voice("espeak-us-klatt4", "espeak-ng", "en-us+klatt4", ("-s", "175", "-p", "55")),
    Voice("flite-slt", "flite", "slt"),
    Voice("flite-rms", "flite", "rms"),
    Voice("flite-awb", "flite", "awb"),
    Voice("flite-kal16", "flite", "kal16"),
    Voice("festival-kal", "festival", "kal_diphone"),
    Voice("festival-ked", "festival", "ked_diphone"),
    Voice("festival-rab", "festival", "rab_diphone"),
)

# espeak-ng 1.51's variants (those with a space in the name cannot be passed), less the
# seven used above; each reads with an English accent chosen in turn from _ACCENTS.
_ESPEAK_VARIANTS = (
    "Alex Alicia Andrea Andy Annie AnxiousAndy Demonic Denis Diogo Gene Gene2 Henrique Hugo "
    "Jacky Lee Marco Mario Michael Mike Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm "
    "Tweaky UniRobot adam anika anikaRobot announcer antonio aunty belinda benjamin boris "
    "caleb croak david ed edward edward2 f1 f3 f5 fast grandma grandpa gustave iven iven2 "
    "iven3 iven4 john kaukovalta klatt2 klatt3 klatt5 klatt6 linda m2 m4 m5 m6 m8 marcelo "
    "max michel miguel norbert pablo paul pedro quincy rob robert robosoft robosoft2 "
    "robosoft3 robosoft4 robosoft5 robosoft6 robosoft7 robosoft8 sandro shelby steph steph2 "
    "steph3 travis victor whisper whisperf zac"
).split()
_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan",
            "en-gb-x-gbcwmd", "en-gb-x-rp")

_FESTIVAL = (
    ("festival-slt-hts", "cmu_us_slt_arctic_hts"), ("festival-ca-ona", "upc_ca_ona_hts"),
    ("festival-cs-dita", "czech_dita"), ("festival-cs-krb", "czech_krb"),
    ("festival-cs-machac", "czech_machac"), ("festival-cs-ph", "czech_ph"),
    ("festival-fi-mv", "hy_fi_mv_diphone"), ("festival-fi-lj", "suo_fi_lj_diphone"),
    ("festival-it-lp", "lp_diphone"), ("festival-it-pc", "pc_diphone"),
)

# Fixed order: speaker ids follow it (after dropping voices this machine lacks).
VOICES: tuple[Voice, ...] = _FIRST + tuple(
    Voice(f"espeak-{v}", "espeak-ng", f"{_ACCENTS[i % len(_ACCENTS)]}+{v}")
    for i, v in enumerate(_ESPEAK_VARIANTS)
) + tuple(Voice(name, "festival", voice) for name, voice in _FESTIVAL)

# Whole voices that never reach training: 12 espeak-ng variants (every 8th of the list
# above, from the first) and 3 festival voices of three kinds (an English HTS voice, a
# Finnish and an Italian diphone voice). None of them trained the bundled models either.
HELD_OUT: frozenset[str] = frozenset(
    [f"espeak-{v}" for v in _ESPEAK_VARIANTS[::8]]
    + ["festival-slt-hts", "festival-fi-lj", "festival-it-pc"])

_BINARY = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}


@functools.cache
def _flite_voices() -> frozenset[str]:
    out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=30).stdout
    return frozenset(out.split(":", 1)[-1].split())


@functools.cache
def _espeak_data() -> Path | None:
    info = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    data = re.search(r"Data at:\s*(\S+)", info)
    return Path(data.group(1)) if data else None


@functools.cache
def _espeak_language(base: str) -> bool:
    probe = subprocess.run(["espeak-ng", "-v", base, "-q", "a"], capture_output=True, timeout=30)
    return probe.returncode == 0


@functools.cache
def usable(voice: Voice) -> bool:
    """Whether this machine can render `voice` (a missing espeak variant would fall back
    silently to the default voice, so its file is checked)."""
    if shutil.which(_BINARY[voice.engine]) is None:
        return False
    if voice.engine == "flite":
        return voice.voice in _flite_voices()
    if voice.engine == "festival":
        return bool(glob.glob(f"/usr/share/festival/voices/*/{voice.voice}"))
    base, _, variant = voice.voice.partition("+")
    if not _espeak_language(base):
        return False
    data = _espeak_data()
    return not variant or data is None or Path(data, "voices", "!v", variant).exists()


def available_voices() -> list[Voice]:
    """The voices of `VOICES` this machine can render, in `VOICES` order."""
    return [v for v in VOICES if usable(v)]
