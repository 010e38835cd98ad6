"""From a validated request to a runner Job: every check that needs the model.

Decoding (base64 .npy, base64 WAV -> log-mel) is CPU work: call `build_job` through
`asyncio.to_thread`. Every problem raises `ApiError` (422 unless said otherwise) naming
the field.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

import numpy as np

from server.errors import ApiError, invalid
from server.wire.mel_feed import MelFeed
from server.wire.schemas import SynthesisRequest
from wavenet_core.audio.mel import stretch_mel
from wavenet_core.audio.wav import AudioError, read_wav
from wavenet_core.generation.conditioning import (
    MelSource,
    WholeMel,
    check_mel,
    mel_from_audio,
    mel_num_samples,
)


@dataclass
class Job:
    """Everything the runner needs to open and feed one stream."""

    num_samples: int
    seed: int = 0
    temperature: float = 1.0
    speaker: int = 0
    mel: MelSource | None = None       # the stream's mel: whole, or streamed in (MelFeed)
    first_samples: int = 1             # what its encoder takes before its first bytes leave


def _b64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(field, "not valid base64") from None


def decode_npy(text: str) -> np.ndarray:
    """Base64 .npy -> array; never unpickles."""
    raw = _b64("mel", text)
    fmt = np.lib.format
    try:
        f = io.BytesIO(raw)
        version = fmt.read_magic(f)
        read_header = {(1, 0): fmt.read_array_header_1_0,
                       (2, 0): fmt.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = read_header(f)
        # the header's shape must match the data present, before anything is allocated
        if dtype.hasobject or int(np.prod(shape)) * dtype.itemsize != len(raw) - f.tell():
            raise ValueError("shape does not match the data")
        f.seek(0)
        array = fmt.read_array(f, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError... on bad files
        raise invalid("mel", f"not a readable .npy array ({type(exc).__name__})") from None
    if array.dtype.kind not in "fiu":
        raise invalid("mel", f"dtype {array.dtype} is not real-valued numeric")
    return array


def _checked_mel(raw: np.ndarray, cfg) -> np.ndarray:
    try:
        return check_mel(raw, cfg)
    except ValueError as exc:
        raise invalid("mel", str(exc)) from None


def features(field: str, audio: np.ndarray, cfg, rate: int | None = None) -> np.ndarray:
    """The model's features of `audio`; a recipe that cannot analyse it names why."""
    try:
        return mel_from_audio(audio, cfg, rate)
    except ValueError as exc:     # e.g. lws needs n_fft a multiple of the model's hop
        raise invalid(field, f"this model's features cannot be made from audio: {exc}; "
                             f"send `mel`") from None


def resolve_speaker(value, entry) -> int:
    n = entry.config.num_speakers
    if not n:
        if value is None:
            return 0
        raise invalid("speaker", f"model {entry.name!r} has no speakers")
    if value is None:
        return 0
    if isinstance(value, str):
        names = entry.speakers or []
        if value in names:
            return names.index(value)
        if value.isdecimal() and int(value) < n:     # isdigit() takes '²', int() does not
            return int(value)
        known = f"one of {names}" if names else f"an id 0..{n - 1}"
        raise invalid("speaker", f"unknown speaker {value!r}; use {known}")
    if not 0 <= value < n:
        raise invalid("speaker", f"speaker id must be in 0..{n - 1}, got {value}")
    return value


def text_voice(name: str | None):
    """The synthesizer voice for the text path (espeak-ng / flite / festival, if installed)."""
    from wavenet_core.text.voices import available_voices

    voices = available_voices()
    if not voices:
        raise ApiError(501, "text_unavailable", "text: no speech synthesizer is installed on "
                       "this server (pip install espeakng-loader, or apt-get install "
                       "espeak-ng)", field="text")
    if name is None:
        return voices[0]
    for voice in voices:
        if voice.name == name:
            return voice
    raise invalid("voice", f"unknown voice {name!r}; use one of {[v.name for v in voices]}")


def speak_text(voice, text: str, max_seconds: float, timed: bool = False):
    """`text` in `voice` -> audio at 16 kHz; `timed`: (audio, its words)."""
    from wavenet_core.text.speech import SpeechError, speak, speak_timed

    try:
        # rendering stops past the limit (plus the silence trimmed after): the length
        # check below then refuses it, without the whole render's cost
        if timed:
            return speak_timed(voice, text, max_seconds=max_seconds + 2.0)
        return speak(voice, text, max_seconds=max_seconds + 2.0)
    except SpeechError as exc:
        raise invalid("text", f"the synthesizer could not render it ({exc})") from None


def build_job(req: SynthesisRequest, entry, max_seconds: float) -> Job:
    """The request's conditioning and length, checked against the model."""
    _check_exclusive(req)
    cfg = entry.config
    if req.mel_stream:
        return _mel_stream_job(req, entry, max_seconds)
    voice = _text_voice_for(req, entry)
    speaker_value = req.speaker
    if speaker_value is None and voice is not None and voice.name in (entry.speakers or []):
        speaker_value = voice.name     # the vocoder's own speaker of that voice, if it has one
    speaker = resolve_speaker(speaker_value, entry)
    if cfg.mel_channels:
        mel = mel_conditioning(req, entry, voice, max_seconds)
        if req.speed != 1.0:
            mel = _stretched(mel, req.speed, entry, max_seconds)
        num_samples = mel_num_samples(len(mel), cfg)
    else:
        if req.speed != 1.0:
            raise invalid("speed", f"model {entry.name!r} takes no mel: its speed is fixed")
        mel = None
        num_samples = requested_length(req, entry, max_seconds)
    return Job(num_samples=num_samples, seed=req.seed, temperature=req.temperature,
               speaker=speaker, mel=None if mel is None else WholeMel(mel, cfg))


def _mel_stream_job(req: SynthesisRequest, entry, max_seconds: float) -> Job:
    """A job whose mel comes later, frame by frame: its length is known at the end only."""
    cfg = entry.config
    if not cfg.mel_channels:
        raise invalid("mel_stream", f"model {entry.name!r} takes no mel conditioning")
    for field in ("mel", "audio", "text", "seconds", "num_samples"):
        if getattr(req, field) is not None:
            raise invalid(field, "with `mel_stream` the frames streamed in set the audio "
                                 "(and its length)")
    if req.speed != 1.0:
        raise invalid("speed", "a streamed mel plays at the pace it is sent")
    max_frames = int(max_seconds * cfg.sample_rate) // cfg.mel.hop_length
    feed = MelFeed(cfg, max_frames)
    return Job(num_samples=feed.max_samples, seed=req.seed, temperature=req.temperature,
               speaker=resolve_speaker(req.speaker, entry), mel=feed)


def _stretched(mel: np.ndarray, speed: float, entry, max_seconds: float) -> np.ndarray:
    """The mel played `speed` times faster, still within the length limit."""
    cfg = entry.config
    mel = stretch_mel(mel, speed)
    num_samples = mel_num_samples(len(mel), cfg)
    if num_samples > int(max_seconds * cfg.sample_rate):
        raise invalid("speed", f"at speed {speed:g} the audio is "
                               f"{num_samples / cfg.sample_rate:.2f} s, longer than the "
                               f"{max_seconds:g} s limit")
    return mel


def _check_exclusive(req: SynthesisRequest) -> None:
    if req.seconds is not None and req.num_samples is not None:
        raise invalid("num_samples", "give either seconds or num_samples, not both")
    sources = [f for f in ("mel", "audio", "text") if getattr(req, f) is not None]
    if len(sources) > 1:
        raise invalid(sources[1], f"give only one of mel, audio, text (got {sources})")
    if req.voice is not None and req.text is None:
        raise invalid("voice", "`voice` only applies to `text`")


def _text_voice_for(req: SynthesisRequest, entry):
    if req.text is None:
        return None
    if not entry.config.mel_channels:
        raise invalid("text", f"model {entry.name!r} is not a vocoder (no mel conditioning)")
    return text_voice(req.voice)


def mel_conditioning(req: SynthesisRequest, entry, voice, max_seconds: float) -> np.ndarray:
    """A mel model's [frames, mel_channels] log-mel, from `mel`, `audio` or `text`."""
    cfg = entry.config
    rate = cfg.sample_rate
    max_samples = int(max_seconds * rate)
    for field in ("seconds", "num_samples"):
        if getattr(req, field) is not None:
            raise invalid(field, f"model {entry.name!r} is mel-conditioned: the length of "
                                 "`mel` or `audio` sets the duration")
    if req.audio is not None:
        try:
            # rate range and duration come from the header, before any resampling
            audio, _ = read_wav(_b64("audio", req.audio), sample_rate=rate,
                                max_seconds=max_seconds)
        except AudioError as exc:
            raise invalid("audio", str(exc).replace("<bytes>: ", "")) from None
        if len(audio) == 0:
            raise invalid("audio", "contains no samples")
        if len(audio) > max_samples:
            raise invalid("audio", f"{len(audio) / rate:.2f} s is longer than the "
                                   f"{max_seconds:g} s limit")
        # the model's feature recipe, as `wavenet generate --audio` and training
        return features("audio", audio, cfg)
    if voice is not None:
        from wavenet_core.text.speech import SAMPLE_RATE

        audio = speak_text(voice, req.text, max_seconds)
        if len(audio) > max_seconds * SAMPLE_RATE:
            raise invalid("text", f"renders to {len(audio) / SAMPLE_RATE:.2f} s, longer than "
                                  f"the {max_seconds:g} s limit")
        return features("text", audio, cfg, SAMPLE_RATE)  # resampled to the model's rate
    if req.mel is not None:
        raw = decode_npy(req.mel) if isinstance(req.mel, str) else _nested(req.mel)
        mel = _checked_mel(raw, cfg)
        num_samples = mel_num_samples(len(mel), cfg)
        if num_samples > max_samples:
            raise invalid("mel", f"{len(mel)} frames make {num_samples / rate:.2f} s, "
                                 f"longer than the {max_seconds:g} s limit")
        return mel
    raise invalid("mel", f"model {entry.name!r} is mel-conditioned: give `mel` "
                         "(or `audio` to resynthesize, or `text`)")


def requested_length(req: SynthesisRequest, entry, max_seconds: float) -> int:
    """An unconditioned model's length in samples, from `num_samples` or `seconds`."""
    for field in ("mel", "audio", "text"):
        if getattr(req, field) is not None:
            raise invalid(field, f"model {entry.name!r} takes no mel conditioning")
    rate = entry.config.sample_rate
    if req.num_samples is not None:
        num_samples, field = req.num_samples, "num_samples"
    elif req.seconds is not None:
        if req.seconds > max_seconds:      # before the product, which 1e308 overflows
            raise invalid("seconds", f"{req.seconds:g} s is longer than the {max_seconds:g} s "
                                     f"limit")
        num_samples, field = max(1, round(req.seconds * rate)), "seconds"
    else:
        raise invalid("seconds", "give the length as `seconds` or `num_samples`")
    max_samples = int(max_seconds * rate)
    if num_samples > max_samples:
        raise invalid(field, f"{num_samples / rate:.2f} s is longer than the "
                             f"{max_seconds:g} s limit ({max_samples} samples)")
    return num_samples


def _nested(rows: list[list[float]]) -> np.ndarray:
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise invalid("mel", f"rows have different lengths {sorted(widths)[:5]}")
    try:
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), widths.pop() if rows else 0)
    except (ValueError, OverflowError):
        raise invalid("mel", "values must be finite float32 numbers") from None
