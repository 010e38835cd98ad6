"""Where a load may go: loopback targets only, the HTTP and WebSocket forms of a base URL,
and the RSS of a local server process.

Only loopback targets are accepted (127.0.0.0/8, ::1, localhost): this is a load
generator, not something to point at other people's machines.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit


def check_loopback(url: str) -> str:
    """The URL if its host is loopback (127.0.0.0/8, ::1 or `localhost`); ValueError otherwise.

    Names other than `localhost` are refused rather than resolved."""
    host = urlsplit(url).hostname
    if host is None:
        raise ValueError(f"{url!r}: no host")
    if host.lower() == "localhost":
        return url
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{url!r}: only loopback targets are allowed (127.0.0.0/8, ::1, "
                         f"localhost), not the name {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"{url!r}: {host} is not a loopback address; only 127.0.0.0/8, ::1 "
                         "and localhost are allowed")
    return url


def http_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("ws"):
        base = "http" + base[2:]
    return base.removesuffix("/v1/stream")


def ws_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[4:]
    return base if base.endswith("/v1/stream") else base + "/v1/stream"


def process_rss_bytes(pid: int) -> int | None:
    """VmRSS of a local process from /proc/<pid>/status, or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
