"""POST /v1/synthesize: the whole file, or a chunked stream as the audio is made
(`server.wire.audio_response` says how, and which headers go with it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from server.deps import ServiceDep
from server.errors import invalid
from server.wire.audio_response import audio_response
from server.wire.encoding import resolve_output
from server.wire.schemas import SynthesisRequest

router = APIRouter(prefix="/v1", tags=["synthesis"])

AUDIO_RESPONSES = {200: {"content": {t: {} for t in ("audio/mpeg", "audio/ogg", "audio/aac",
                                                     "audio/flac", "audio/wav", "audio/basic",
                                                     "application/octet-stream")},
                         "description": "the audio in `format` (raw PCM s16le mono for pcm)"},
                   400: {"description": "unsupported format or sample_rate"},
                   404: {"description": "unknown model"}, 413: {"description": "body too large"},
                   422: {"description": "invalid field"}, 503: {"description": "overloaded"}}


@router.post("/synthesize", responses=AUDIO_RESPONSES, response_class=Response)
async def synthesize(req: SynthesisRequest, request: Request, service: ServiceDep) -> Response:
    if req.mel_stream:
        raise invalid("mel_stream", "a mel can be streamed in over WS /v1/stream only; "
                                    "here send the whole `mel`")
    entry, handle = await service.submit(req, request.state.request_id,
                                         request.state.client)
    output = resolve_output(req.format, req.sample_rate, entry.config.sample_rate)
    return await audio_response(request, entry, handle, output, req.stream,
                                service.settings.slow_client_seconds)
