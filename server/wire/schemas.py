"""Request, response and event models of API v1 (README.md, "API (v1)"; request flow in
 docs/architecture.md).

These check what can be checked without the model (types, ranges, exclusive fields);
`server.engine.prepare` checks the rest against the chosen model (mel shape, speaker, duration).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

MAX_SEED = 2**32 - 1
MAX_TEMPERATURE = 2.0
MAX_TEXT_CHARS = 600
MAX_SPEECH_CHARS = 4096       # OpenAI's limit on /v1/audio/speech `input`
FORMAT_NAMES = "mp3, opus, aac, flac, wav, pcm or ulaw (server/wire/encoding.py)"


class SynthesisRequest(BaseModel):
    """POST /v1/synthesize body, and the fields of a WebSocket "start" message."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="model name (see /v1/models); optional when one model is loaded")
    seconds: float | None = Field(None, gt=0, description="length, for models without mel")
    num_samples: StrictInt | None = Field(None, ge=1, description="length in samples")
    seed: StrictInt = Field(0, ge=0, le=MAX_SEED)
    temperature: float | None = Field(
        None, ge=0, le=MAX_TEMPERATURE,
        description="0 is greedy; omitted: the model's default sampling (temperature 1, "
                    "voicing-shaped where the model sets it); given: that temperature for "
                    "every sample, unshaped")
    speaker: StrictInt | Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = Field(
        None, description="speaker id or name, for multi-speaker models")
    mel: list[list[float]] | StrictStr | None = Field(
        None, description="log-mel [frames][mel_channels] as nested lists or base64 .npy")
    audio: StrictStr | None = Field(
        None, description="base64 WAV to resynthesize through the model's mel frontend")
    text: Annotated[StrictStr, Field(min_length=1, max_length=MAX_TEXT_CHARS)] | None = Field(
        None, description="text to speak (mel models, where espeak-ng/flite are installed): the "
                          "synthesizer `voice` renders it, the vocoder resynthesizes its mel")
    voice: Annotated[StrictStr, Field(min_length=1, max_length=100)] | None = Field(
        None, description="synthesizer voice for `text` (see `voices` in /v1/models)")
    format: StrictStr = Field("wav", description=f"{FORMAT_NAMES}; another is a 400")
    sample_rate: StrictInt | None = Field(
        None, description="output rate, 8000-48000 Hz (mp3, aac and opus take their codec's "
                          "rates); default the model's, 8000 for ulaw")
    stream: bool = False
    speed: float = Field(1.0, ge=0.25, le=4.0, description="mel models: speech this many times "
                         "faster (the mel is stretched in time; the pitch stays)")
    mel_stream: bool = Field(
        False, description="WebSocket only: the mel follows the start message frame by frame "
                           "(binary float32 LE n x mel_channels, or {\"type\": \"mel\", "
                           "\"frames\": [...]}), then {\"type\": \"end\"}")
    text_stream: bool = Field(
        False, description="WebSocket only: text follows the start message in pieces "
                           "({\"type\": \"text\", \"text\": ...}, {\"type\": \"flush\"}), "
                           "then {\"type\": \"end\"}; spoken a sentence at a time, with "
                           "{\"type\": \"words\"} events (docs/text-streaming.md)")


class VoiceId(BaseModel):
    """OpenAI's custom-voice form, {"id": "..."}."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[StrictStr, Field(min_length=1, max_length=100)]


class SpeechRequest(BaseModel):
    """POST /v1/audio/speech body: the OpenAI speech API's fields. Fields it does not know
    (integrations add their own) are kept in `model_extra`, logged and ignored, as OpenAI
    ignores them."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="a mel model's name, or tts-1 / tts-1-hd for the default vocoder")
    input: Annotated[StrictStr, Field(min_length=1)] = Field(
        description="text; split into sentences, spoken as one continuous stream; longer "
                    f"than WAVENET_MAX_INPUT_CHARS ({MAX_SPEECH_CHARS}) is a 413")
    voice: Annotated[StrictStr, Field(min_length=1, max_length=100)] | VoiceId | None = Field(
        None, description="one of `voices` in /v1/models, or an OpenAI voice name (alloy, "
                          "echo, ...: mapped onto those voices in order)")
    response_format: StrictStr = Field("mp3", description=f"{FORMAT_NAMES}; pcm is s16le "
                                                          "mono at 24 kHz, as OpenAI's")
    sample_rate: StrictInt | None = Field(None, description="output rate (not OpenAI's): "
                                          "default 24000, 8000 for ulaw")
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: StrictStr = Field("audio", description="audio (chunked bytes) or sse "
                                     "(speech.audio.delta / speech.audio.done events; not "
                                     "for tts-1 / tts-1-hd)")
    instructions: StrictStr | None = Field(None, description="accepted and ignored (tts-1 "
                                                             "takes none either)")
    timestamps: bool = Field(False, description="not OpenAI's: JSON {audio (base64), format, "
                             "sample_rate, words: [{word, start, end}]} (seconds of the "
                             "audio); with sse, speech.words events before their audio")


class ModelInfo(BaseModel):
    name: str
    status: Literal["loading", "ready", "failed"]
    error: str | None = None
    sample_rate: int | None = None
    receptive_field: int | None = None
    conditioning: list[str] = []
    mel_channels: int = 0
    hop_length: int | None = None
    features: str | None = Field(None, description="a mel model's feature recipe (ours, "
                                 "nvidia, r9y9, r9y9-master): what `mel` must hold")
    num_speakers: int = 0
    speakers: list[str] | None = None
    voices: list[str] = Field(default_factory=list,
                              description="synthesizer voices for the `text` field")
    backend: str | None = None
    device: str | None = None
    precision: str | None = Field(None, description="the compiled CPU backend's weight "
                                  "format (what `auto` resolved to); null on other backends")
    max_streams: int | None = None
    aliases: list[str] = Field(default_factory=list,
                               description="other names /v1/audio/speech accepts for it")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelInfo]


class StartedEvent(BaseModel):
    type: Literal["started"] = "started"
    request_id: str
    model: str
    sample_rate: int = Field(description="the audio's rate (the request's `sample_rate`)")
    format: str = "pcm"
    encoding: str = "pcm_s16le"
    num_samples: int | None = Field(None, description="null for a mel streamed in: its "
                                                      "length is known at its end")


class DoneEvent(BaseModel):
    type: Literal["done"] = "done"
    status: str
    samples: int
    seconds: float
    time_to_first_audio_ms: float | None
    real_time_factor: float | None


class ErrorEvent(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str
    field: str | None = None
