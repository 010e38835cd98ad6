"""The app on a real local Ray Serve cluster with two replicas (tests/ray/conftest.py).

Through Serve's proxy, HTTP streaming and WebSockets (cancel included) give the same
bytes as the single-process server for the same seed; requests spread over both
replicas; engine metrics of every replica reach Ray's metrics; overflow is a 503; a
replica killed mid-stream ends only its own streams, each with an error, while the
others finish and new requests succeed; scaling down lets live streams finish first.
The tests share one cluster and run in file order (the last two change it).
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from tests.ray.conftest import STREAMS, http_stream, replica_actor, sync_ws, ws_stream

pytestmark = pytest.mark.timeout(600)

SHORT = {"num_samples": 6000, "seed": 7}
LONG_SECONDS = 30.0       # long enough to still be running when a replica goes
BYTES = 2                 # pcm s16le
TRIES = 3                 # the overflow test's runs when its premise did not hold


def single_http(cluster, body: dict) -> bytes:
    r = httpx.post(cluster.single.url + "/v1/synthesize",
                   json={**body, "stream": True, "format": "pcm"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.content


def test_requests_spread_over_both_replicas_with_the_single_server_bytes(cluster):
    expected = single_http(cluster, SHORT)
    assert len(expected) == SHORT["num_samples"] * BYTES

    async def burst():
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(http_stream(client, cluster.url, SHORT)
                                          for _ in range(2 * STREAMS)))

    seen = set()
    for _ in range(5):    # concurrent bursts: one replica alone cannot take them all
        for out in asyncio.run(burst()):
            assert out.status == 200 and out.error is None, out
            assert out.audio == expected, "another replica, other bytes"
            seen.add(out.replica)
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"every request went to {seen}"
    assert httpx.get(cluster.url + "/readyz").status_code == 200


def test_websocket_gives_the_single_server_bytes_and_cancels(cluster):
    through_proxy = sync_ws(cluster.ws_url, SHORT)
    direct = sync_ws(cluster.single.ws_url, SHORT)
    assert through_proxy.error is None and through_proxy.close_code == 1000
    assert through_proxy.done["status"] == "done"
    assert through_proxy.audio == direct.audio == single_http(cluster, SHORT)
    assert through_proxy.replica is not None

    cancelled = sync_ws(cluster.ws_url, {"seconds": LONG_SECONDS, "seed": 3},
                        cancel_after=4096)
    assert cancelled.done["status"] == "cancelled", cancelled
    assert cancelled.close_code == 1000
    assert len(cancelled.audio) < LONG_SECONDS * 16000 * BYTES


def _series(text: str, name: str) -> dict[str, float]:
    """replica label -> value of one Ray-exported metric, summed over other labels."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            replica = re.search(r'replica="([^"]+)"', line)
            if replica:
                out[replica.group(1)] = out.get(replica.group(1), 0.0) + float(
                    line.rsplit(" ", 1)[1])
    return out


def test_engine_metrics_of_every_replica_reach_ray_metrics(cluster):
    """The earlier tests ran requests on both replicas; Ray's metrics agent exports each
    replica's counters, tagged with its id, for Prometheus to scrape."""
    deadline = time.monotonic() + 60
    while True:
        text = httpx.get(cluster.metrics_url + "/metrics", timeout=10).text
        requests = _series(text, "ray_wavenet_requests_total")
        samples = _series(text, "ray_wavenet_samples_generated_total")
        ttfa = _series(text, "ray_wavenet_time_to_first_audio_seconds_count")
        if len(requests) >= 2 and len(samples) >= 2 and len(ttfa) >= 2:
            break
        assert time.monotonic() < deadline, f"replicas seen: {requests}, {samples}, {ttfa}"
        time.sleep(1)
    assert all(v > 0 for v in samples.values())
    assert 'le="0.05"' in text and "ray_wavenet_time_to_first_audio_seconds_bucket{" in text


async def _long_streams(cluster, n_http: int, n_ws: int, action) -> list:
    """Start n_http + n_ws long streams; once each has audio, run `action(replicas)` with
    the replicas serving them; return every stream's outcome."""
    async with httpx.AsyncClient(timeout=120) as client:
        live: list[str] = []
        tasks = [asyncio.create_task(http_stream(client, cluster.url,
                                                 {"seconds": LONG_SECONDS, "seed": i}, live))
                 for i in range(n_http)]
        tasks += [asyncio.create_task(ws_stream(cluster.ws_url,
                                                {"seconds": LONG_SECONDS, "seed": 100 + i},
                                                live)) for i in range(n_ws)]
        deadline = time.monotonic() + 60
        while len(live) < len(tasks):
            assert time.monotonic() < deadline, f"only {len(live)} streams started"
            await asyncio.sleep(0.02)
        await action(live)
        return await asyncio.gather(*tasks)


def test_overflow_beyond_the_queue_is_503(cluster):
    """With both replicas full (STREAMS ongoing each), the proxy queues up to
    max_queued_requests more and answers the rest 503 at once. The premise is checked,
    not assumed: only answers that came while every long stream still ran count, and
    the scenario runs again (at most TRIES times) when the tiny model's long streams
    ended before enough of the burst was answered."""
    from server.scaleout.options import QUEUE_STREAMS

    queue = QUEUE_STREAMS * STREAMS
    for _ in range(TRIES):
        short = []

        async def burst(_, short=short):
            async with httpx.AsyncClient(timeout=120) as client:
                short.extend(await asyncio.gather(*(http_stream(client, cluster.url, SHORT)
                                                    for _ in range(queue + 4))))

        long = asyncio.run(_long_streams(cluster, 2 * STREAMS, 0, burst))
        statuses = [o.status for o in short]
        assert set(statuses) <= {200, 503}, statuses
        for o in short + long:
            if o.status == 200:
                assert o.error is None and o.audio, o
        full_until = min(o.ended for o in long)
        while_full = [o.status for o in short if o.answered < full_until]
        assert 200 not in while_full, "a request was admitted while every slot was taken"
        if len(while_full) >= 4:
            break
    else:
        pytest.fail(f"the long streams never outlasted the burst in {TRIES} tries")
    # the queue took `queue` of them and only the 4 beyond it were refused
    assert statuses.count(503) == 4, statuses


def test_a_killed_replica_ends_only_its_own_streams(cluster):
    import ray

    full = int(LONG_SECONDS * 16000) * BYTES
    victim = {}

    async def kill(replicas):
        # 2 x STREAMS streams fill both replicas (max_ongoing_requests = STREAMS).
        victim["id"] = replicas[0]
        ray.kill(replica_actor(victim["id"]), no_restart=True)

    outcomes = asyncio.run(_long_streams(cluster, STREAMS + 1, STREAMS - 1, kill))
    mine = [o for o in outcomes if o.replica == victim["id"]]
    others = [o for o in outcomes if o.replica != victim["id"]]
    assert mine and others, [o.replica for o in outcomes]
    for o in mine:
        assert len(o.audio) < full, "a stream of the killed replica finished"
        if o.status is not None:      # HTTP: the chunked body never ends
            assert o.error and "incomplete chunked read" in o.error, o
        else:                         # WebSocket: the protocol's error event, 1011
            assert o.error_event and o.error_event["code"] == "replica_lost", o
            assert o.close_code == 1011, o
    for o in others:
        assert o.error is None and len(o.audio) == full, o
        assert o.status == 200 or (o.done["status"] == "done" and o.close_code == 1000), o

    for _ in range(4):   # new requests go to the survivor (or its replacement)
        r = httpx.post(cluster.url + "/v1/synthesize", json=SHORT, timeout=60)
        assert r.status_code == 200 and r.headers["x-served-by"] != victim["id"]
    cluster.wait_running(2)     # Serve replaces the dead replica


def serving_replicas(cluster, rounds: int = 20) -> set[str]:
    """The replicas the proxy routes to, from bursts of short requests (a replica Serve
    counts as running reaches the proxy's router a moment later)."""
    async def burst():
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(http_stream(client, cluster.url, SHORT)
                                          for _ in range(2 * STREAMS)))

    seen: set[str] = set()
    for _ in range(rounds):
        seen |= {out.replica for out in asyncio.run(burst()) if out.status == 200}
        if len(seen) >= cluster.replicas:
            break
        time.sleep(0.5)
    return seen


def test_scaling_down_lets_live_streams_finish(cluster):
    full = int(LONG_SECONDS * 16000) * BYTES
    assert len(serving_replicas(cluster)) == 2     # both reachable before the streams start

    async def scale_down(_):
        await asyncio.to_thread(cluster.redeploy, 1)

    outcomes = asyncio.run(_long_streams(cluster, 2 * STREAMS, 0, scale_down))
    served_by = {o.replica for o in outcomes}
    assert len(served_by) == 2, served_by
    for o in outcomes:
        assert o.status == 200 and o.error is None and len(o.audio) == full, o
    cluster.wait_running(1)
    deadline = time.monotonic() + 60
    while True:     # the stopped replica's actor goes a moment after Serve counts it out
        gone = []
        for replica in served_by:
            try:
                replica_actor(replica)
            except ValueError:
                gone.append(replica)
        if gone:
            break
        assert time.monotonic() < deadline, f"both replicas still there: {served_by}"
        time.sleep(0.25)
    assert len(gone) == 1, gone
    r = httpx.post(cluster.url + "/v1/synthesize", json=SHORT, timeout=60)
    assert r.status_code == 200 and r.headers["x-served-by"] not in gone
