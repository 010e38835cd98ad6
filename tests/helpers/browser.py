"""The browser the page tests drive: Debian's Chromium through Playwright, or why it is skipped."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("WAVENET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # the page's AudioContext starts without a real click; with no sound card, Chromium
    # renders audio to its fake output device, in real time
    "--autoplay-policy=no-user-gesture-required",
]
API_KEY = "playground-test-key"
MAX_SECONDS = 600


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not importable ({exc}); pip install playwright"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)"
    return None


SKIP_REASON = _skip_reason()
