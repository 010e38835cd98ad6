"""One vocabulary for how a stream ends: every transport maps every `StreamEnd` exactly once."""

from __future__ import annotations

import re
from pathlib import Path

from server.api.stream import CLOSE_CODES, WS_END
from server.engine.engine import StreamEnd
from server.wire.audio_response import HTTP_END

APP_JS = Path(__file__).resolve().parents[3] / "server" / "static" / "app.js"


def page_close_reasons() -> set[int]:
    table = re.search(r"const CLOSE_REASONS = \{(.*?)\};", APP_JS.read_text(), re.S)
    assert table, "app.js has no CLOSE_REASONS table"
    return {int(code) for code in re.findall(r"^\s*(\d{4}):", table[1], re.M)}


def test_every_end_has_an_http_status_and_a_close_code():
    assert set(HTTP_END) == set(StreamEnd) - {StreamEnd.DONE}
    assert set(WS_END) == set(StreamEnd)
    assert all(400 <= status < 600 for status, _, _ in HTTP_END.values())


def test_every_close_code_the_server_sends_is_documented_and_explained_on_the_page():
    sent = {code for code, _, _ in WS_END.values()} - {1006}    # 1006: nothing is sent
    assert sent <= set(CLOSE_CODES)
    shown = page_close_reasons()
    assert set(CLOSE_CODES) - {1000} <= shown, set(CLOSE_CODES) - {1000} - shown


def test_statuses_are_the_wire_words():
    assert [e.value for e in StreamEnd] == ["done", "cancelled", "disconnected",
                                            "slow_consumer", "shutdown", "protocol_error",
                                            "shed", "error"]
    assert str(StreamEnd.SLOW_CONSUMER) == "slow_consumer"
