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

from wavenet_core.text.speech import VOICES as VOICES_OF_THE_BUNDLED_MODELS
from wavenet_core.text.speech import Voice, program_available

# The first 14 are the voices the bundled models were trained with (ids 0-11 where present).
_FIRST = VOICES_OF_THE_BUNDLED_MODELS

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

def usable(voice: Voice) -> bool:
    """Whether this machine can render `voice` with its synthesizer programs (the corpus
    renders through them)."""
    return program_available(voice)


def available_voices() -> list[Voice]:
    """The voices of `VOICES` this machine can render, in `VOICES` order."""
    return [v for v in VOICES if usable(v)]
