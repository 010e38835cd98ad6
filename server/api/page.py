"""GET / : the streaming playground, a static page (server/static, no build step).

Only the files listed in `FILES` are served, each with an explicit media type (module
scripts and AudioWorklet processors must be served as JavaScript). The page is public;
the API it calls (/v1/models, WS /v1/stream) keeps its own API-key check.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from server.errors import ApiError

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"
JS = "text/javascript; charset=utf-8"
FILES = {"index.html": "text/html; charset=utf-8", "app.js": JS, "pcm-player.js": JS,
         "wav.js": JS, "waveform.js": JS, "live-text.js": JS,
         "style.css": "text/css; charset=utf-8"}
# everything the page loads is served from here; audio and the socket are same-origin
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; media-src 'self' blob:; object-src 'none'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer"}


def _file(name: str) -> FileResponse:
    media_type = FILES.get(name)
    if media_type is None or not (STATIC / name).is_file():
        raise ApiError(404, "not_found", f"no static file {name!r}")
    return FileResponse(STATIC / name, media_type=media_type, headers=HEADERS)


@router.api_route("/", methods=["GET", "HEAD"])
async def index() -> FileResponse:
    return _file("index.html")


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
async def static(name: str) -> FileResponse:
    return _file(name)
