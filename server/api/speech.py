"""POST /v1/audio/speech: the OpenAI speech API, so the `openai` client and the tools built on
it work unmodified (base_url at this server, api_key = WAVENET_API_KEY).

The text goes the text path of /v1/synthesize (a synthesizer voice speaks it, the vocoder
resynthesizes its mel, stretched in time by `speed`) and the audio is always sent chunked as
it is made. `model` is one of ours or tts-1 / tts-1-hd (the default vocoder: the first mel
model loaded). `voice` is one of `voices` in /v1/models, or an OpenAI voice name, mapped onto
ours in order. Formats: wav (a streaming header) and pcm (s16le mono at the model's rate;
OpenAI's is 24 kHz, ours 16 kHz bundled: see the X-Sample-Rate header). mp3, opus, aac and
flac need an encoder this server does not ship: they are a 400 naming the supported ones.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from server.deps import ServiceDep
from server.errors import ApiError
from server.wire.audio_response import audio_response
from server.wire.schemas import SpeechRequest, SynthesisRequest, VoiceId

router = APIRouter(prefix="/v1", tags=["openai"])

FORMATS = ("wav", "pcm")
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar")
RESPONSES = {200: {"content": {"audio/wav": {}, "application/octet-stream": {}},
                   "description": "WAV or raw PCM s16le mono, chunked as it is made"},
             400: {"description": "unsupported response_format or stream_format"},
             404: {"description": "unknown model"}, 422: {"description": "invalid field"}}


def our_voice(voice: str | VoiceId | None) -> str | None:
    """An OpenAI voice name -> one of this server's text voices (in order); ours as they are."""
    from wavenet_core.text.voices import available_voices

    name = voice.id if isinstance(voice, VoiceId) else voice
    ours = [v.name for v in available_voices()]
    if name in OPENAI_VOICES and name not in ours and ours:
        return ours[OPENAI_VOICES.index(name) % len(ours)]
    return name


@router.post("/audio/speech", responses=RESPONSES, response_class=Response)
async def speech(req: SpeechRequest, request: Request, service: ServiceDep) -> Response:
    if req.response_format not in FORMATS:
        raise ApiError(400, "unsupported_format", f"response_format: {req.response_format!r} "
                       f"is not supported here; use one of {', '.join(FORMATS)}",
                       field="response_format")
    if req.stream_format != "audio":
        raise ApiError(400, "unsupported_format", f"stream_format: {req.stream_format!r} is "
                       "not supported here; use 'audio'", field="stream_format")
    synthesis = SynthesisRequest(model=service.resolve(req.model), text=req.input,
                                 voice=our_voice(req.voice), speed=req.speed,
                                 format=req.response_format)
    try:
        entry, handle = await service.submit(synthesis, request.state.request_id,
                                             request.state.client)
    except ApiError as exc:        # our field names -> the OpenAI request's
        if exc.field == "text":
            raise ApiError(exc.status, exc.code, "input" + exc.message.removeprefix("text"),
                           field="input", headers=exc.headers) from None
        raise
    return await audio_response(request, entry, handle, req.response_format, True,
                                service.settings.slow_client_seconds)
