"""Runs the `espeakng-loader` wheel's libespeak-ng once, in its own process (see espeak_lib).

    python espeak_worker.py VOICE RATE PITCH [MAX] < text -> raw PCM s16le on stdout
                                                            (synthesis stops past MAX samples)
        and on stderr one line per word, "word SAMPLE POSITION LENGTH" (the sample it starts
        at, its 1-based character position and length in the text), and per clause end,
        "end SAMPLE": the library's own timing, for word timestamps
    python espeak_worker.py --wait < "VOICE RATE PITCH [MAX]\n" text -> as above, the
        arguments on stdin's first line: the library loads before they come (a spare
        started ahead of its call, espeak_lib)
    python espeak_worker.py --check VOICE                -> exit 0 when the voice exists

Standalone on purpose (the standard library and the wheel only, no package import), so it
starts in a few tens of milliseconds. Exit status 2: the wheel is missing or will not load;
3: no such voice; 4: synthesis failed.
"""

import ctypes
import sys
from pathlib import Path

AUDIO_OUTPUT_SYNCHRONOUS, INITIALIZE_DONT_EXIT = 2, 0x8000
CHARS_UTF8, POS_CHARACTER, RATE, PITCH = 1, 1, 1, 3
EVENT_WORD, EVENT_END = 1, 5


class Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h); the list a callback gets ends with type 0."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


def load():
    try:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = Path(espeakng_loader.get_data_path())
    except (ImportError, OSError, RuntimeError) as exc:
        sys.exit(f"espeak-ng (bundled): {exc}" if str(exc) else 2)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    if lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data.parent).encode(),
                             INITIALIZE_DONT_EXIT) <= 0:
        sys.exit(2)
    lib.espeak_ng_SetRandSeed(1)     # it seeds from the clock otherwise: same text, same audio
    return lib, data


def has_voice(lib, data, voice: str) -> bool:
    base, _, variant = voice.partition("+")
    if variant and not (data / "voices" / "!v" / variant).exists():
        return False           # espeak-ng would fall back to the plain voice silently
    return lib.espeak_SetVoiceByName(base.encode()) == 0


def main(argv: list[str]) -> int:
    lib, data = load()
    if argv[:1] == ["--check"]:
        return 0 if has_voice(lib, data, argv[1]) else 3
    if argv[:1] == ["--wait"]:
        argv = sys.stdin.buffer.readline().decode().split()
        if not argv:
            return 0                     # closed without a call: a spare not needed
    voice, rate, pitch = argv[0], int(argv[1]), int(argv[2])
    limit = int(argv[3]) if len(argv) > 3 else None
    made = [0]
    if not has_voice(lib, data, voice) or lib.espeak_SetVoiceByName(voice.encode()) != 0:
        return 3
    out, log = sys.stdout.buffer, sys.stderr

    @ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                      ctypes.POINTER(Event))
    def collect(wav, count, events):
        i = 0
        while events and events[i].type != 0:
            event = events[i]
            if event.type == EVENT_WORD:
                log.write(f"word {event.sample} {event.text_position} {event.length}\n")
            elif event.type == EVENT_END:
                log.write(f"end {event.sample}\n")
            i += 1
        if count > 0 and wav:
            out.write(ctypes.string_at(wav, 2 * count))
            made[0] += count
        return 1 if limit is not None and made[0] > limit else 0   # 1: stop synthesis

    lib.espeak_SetSynthCallback(collect)
    lib.espeak_SetParameter(RATE, rate, 0)
    lib.espeak_SetParameter(PITCH, pitch, 0)
    text = sys.stdin.buffer.read()
    status = lib.espeak_Synth(text, len(text) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    out.flush()
    log.flush()
    return 0 if status == 0 else 4


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
