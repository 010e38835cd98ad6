"""POST /v1/audio/speech: the OpenAI speech API as OpenAI behaves, so the `openai` client and
the tools built on it work unmodified (base_url at this server, api_key = WAVENET_API_KEY).

- `response_format` defaults to mp3; mp3, opus (Ogg), aac (ADTS), flac, wav, pcm (s16le
  mono) and ulaw (G.711, headerless); another is a 400 naming these.
- The audio is 24 kHz, as OpenAI's (ulaw 8 kHz), resampled from the model's rate; our own
  `sample_rate` field picks another.
- `input` (up to 4,096 characters) is split into sentences and spoken as one continuous
  stream (`server.engine.spoken_text`), sent chunked as it is made.
- Fields OpenAI does not define are logged and ignored, as OpenAI ignores them; our own:
  `sample_rate`, and `timestamps: true`: JSON with the audio (base64) and each word's
  start and end in seconds, or with SSE `speech.words` events before the audio they describe.
- `input` longer than `WAVENET_MAX_INPUT_CHARS` (4,096, OpenAI's limit) is a 413.
- `stream_format: "sse"` sends `speech.audio.delta` events and a final `speech.audio.done`
  with `usage` (input characters; output 20 ms audio frames), for our model names; the
  tts-1 aliases refuse it, as OpenAI does.

`model` is one of ours or tts-1 / tts-1-hd (the default vocoder: the first mel model loaded).
`voice` is one of `voices` in /v1/models, or an OpenAI voice name, mapped onto ours in order.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from server.deps import ServiceDep
from server.engine.service import OPENAI_ALIASES
from server.engine.spoken_text import SpokenText
from server.errors import ApiError, invalid
from server.wire.audio_response import audio_response
from server.wire.encoding import FORMATS, resolve_output
from server.wire.schemas import SpeechRequest, VoiceId
from wavenet_core.text.sentences import control_character, split_sentences

router = APIRouter(prefix="/v1", tags=["openai"])
log = logging.getLogger("wavenet.speech")

OPENAI_RATE = 24000
STREAM_FORMATS = ("audio", "sse")
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar")
# our field names in errors -> the OpenAI request's
FIELDS = {"text": "input", "format": "response_format"}
RESPONSES = {200: {"content": {**{f.media_type: {} for f in FORMATS.values()},
                               "text/event-stream": {}},
                   "description": "the audio in `response_format`, chunked as it is made"},
             400: {"description": "unsupported response_format, sample_rate or "
                                  "stream_format"},
             413: {"description": "input longer than WAVENET_MAX_INPUT_CHARS"},
             404: {"description": "unknown model"}, 422: {"description": "invalid field"}}


def our_voice(voice: str | VoiceId | None) -> str | None:
    """An OpenAI voice name -> one of this server's text voices (in order); ours as they are."""
    from wavenet_core.text.voices import available_voices

    name = voice.id if isinstance(voice, VoiceId) else voice
    ours = [v.name for v in available_voices()]
    if name in OPENAI_VOICES and name not in ours and ours:
        return ours[OPENAI_VOICES.index(name) % len(ours)]
    return name


def _renamed(exc: ApiError) -> ApiError:
    field = FIELDS.get(exc.field)
    if field is None:
        return exc
    return ApiError(exc.status, exc.code, field + exc.message.removeprefix(exc.field),
                    field=field, headers=exc.headers)


@router.post("/audio/speech", responses=RESPONSES, response_class=Response)
async def speech(req: SpeechRequest, request: Request, service: ServiceDep) -> Response:
    if req.model_extra:
        log.info("request %s: ignoring fields OpenAI's API does not define: %s",
                 request.state.request_id, ", ".join(sorted(req.model_extra)))
        request.state.log["ignored_fields"] = sorted(req.model_extra)
    if req.stream_format not in STREAM_FORMATS:
        raise ApiError(400, "unsupported_format", f"stream_format: {req.stream_format!r} is "
                       f"not supported; use one of {', '.join(STREAM_FORMATS)}",
                       field="stream_format")
    sse = req.stream_format == "sse"
    if sse and req.model in OPENAI_ALIASES and req.model not in service.models:
        raise ApiError(400, "unsupported_format", f"stream_format: 'sse' is not supported "
                       f"for {req.model}; use 'audio', or name one of our models",
                       field="stream_format")
    limit = service.settings.max_input_chars
    if len(req.input) > limit:
        raise ApiError(413, "input_too_long", f"input: {len(req.input)} characters; at most "
                       f"{limit} (WAVENET_MAX_INPUT_CHARS)", field="input")
    at = control_character(req.input)
    if at is not None:
        raise invalid("input", f"control character U+{ord(req.input[at]):04X} at {at}; send "
                               "plain text (line breaks and tabs are allowed)")
    sentences = split_sentences(req.input)
    if not sentences:
        raise invalid("input", "has no words to speak")
    try:
        spoken = await SpokenText.start(
            service, sentences[0], model=service.resolve(req.model),
            voice=our_voice(req.voice), speed=req.speed, format=req.response_format,
            sample_rate=req.sample_rate, preferred_rate=OPENAI_RATE,
            request_id=request.state.request_id,
            client=request.state.client, max_seconds=service.settings.max_speech_seconds)
    except ApiError as exc:
        raise _renamed(exc) from None
    for sentence in sentences[1:]:
        spoken.add(sentence)
    spoken.end()
    entry, handle = spoken.entry, spoken.handle
    output = resolve_output(req.response_format, req.sample_rate, entry.config.sample_rate,
                            preferred=OPENAI_RATE)      # the rate SpokenText asked for
    return await audio_response(request, entry, handle, output, True,
                                service.settings.slow_client_seconds,
                                sse_input=req.input if sse else None,
                                words=spoken.take_words if req.timestamps else None)
