"""The compose `ray` profile's client: waits for the Serve endpoint, then synthesizes.

    python deploy/ray_client.py http://ray-head:8000 [requests]

Polls /readyz until 200 (the proxy answers once a replica runs), sends `requests`
streamed PCM requests (default 8) and prints, per replica (X-Served-By), how many it
answered and the bytes received. Exit status 1 when any request fails. Standard library
only, so it runs in any Python image.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter


def wait_ready(url: str, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} not ready after {timeout_s:.0f} s")
        time.sleep(2)


def synthesize(url: str, seed: int) -> tuple[str, int]:
    body = json.dumps({"seconds": 1.0, "seed": seed, "format": "pcm", "stream": True})
    request = urllib.request.Request(url + "/v1/synthesize", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as r:
        return r.headers.get("X-Served-By", "?"), len(r.read())


def main(argv: list[str]) -> int:
    url = (argv[1] if len(argv) > 1 else "http://127.0.0.1:8000").rstrip("/")
    count = int(argv[2]) if len(argv) > 2 else 8
    wait_ready(url)
    replicas: Counter[str] = Counter()
    failed = 0
    for seed in range(count):
        try:
            replica, size = synthesize(url, seed)
            replicas[replica] += 1
            print(f"request {seed}: {size} bytes from replica {replica}", flush=True)
        except (urllib.error.URLError, OSError) as exc:
            failed += 1
            print(f"request {seed}: failed: {exc}", flush=True)
    print(f"{count - failed}/{count} ok; per replica: {dict(replicas)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
