"""Browser fixtures: Debian's Chromium driven by Playwright's Python package, against real
`wavenet serve` processes (tests/helpers/server.py's `Server`, the root conftest's tiny
checkpoints).

Skips, with the reason, when Playwright does not import or /usr/bin/chromium is missing
(.ci/run installs it with apt). Playwright never downloads a browser here.
"""

from __future__ import annotations

import pytest

from tests.helpers.browser import API_KEY, CHROMIUM, CHROMIUM_ARGS, MAX_SECONDS, SKIP_REASON
from tests.helpers.server import BACKEND, Server


@pytest.fixture(scope="module")
def servers(checkpoints, tmp_path_factory):  # noqa: F811
    """(open, keyed): one slot and no queue on the open server (so a second stream is
    "busy"), the API key on the other. Both start at once."""
    logs = tmp_path_factory.mktemp("page-logs")
    common = {"WAVENET_BACKEND": BACKEND, "WAVENET_MAX_SECONDS": str(MAX_SECONDS)}
    open_server = Server(checkpoints, {**common, "WAVENET_MAX_STREAMS": "1",
                                       "WAVENET_MAX_WAITING": "0"}, logs / "open.log")
    keyed = Server(checkpoints, {**common, "WAVENET_API_KEY": API_KEY}, logs / "keyed.log")
    try:
        open_server.wait_ready()
        keyed.wait_ready()
        yield open_server, keyed
    finally:
        open_server.stop()
        keyed.stop()


@pytest.fixture(scope="module")
def browser():
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    """A fresh page (CSP enforced, downloads allowed); fails the test on any uncaught
    JavaScript exception."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1000, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(20_000)
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"
