"""A flood on live daphne: one client floods, another carries on unharmed.

The steady client sends events at a pace under its limit and measures each
event→recommendations latency, first alone, then while a second user floods
the same server process with near-limit-size valid events as fast as the
socket takes them. The figures are printed; the assertions are generous so
the test is not timing-flaky.
"""

import contextlib
import json
import statistics
import threading
import time
from collections import Counter

import pytest
from websockets.exceptions import ConnectionClosed

from tests.security.conftest import (
    event_frame,
    login,
    make_catalog,
    make_user,
    private_prefix,
    recv_json,
)
from tests.support.sockets import RECS_PATH, open_socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
]

STEADY_EVENTS = 30
STEADY_PACE_SECS = 0.15  # under the default 10 events/s per socket
P99_BOUND_SECS = 1.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def steady_latencies(ws, items: list[int], tag: str) -> list[float]:
    """Send paced events; return each one's send→recommendations time in seconds."""
    latencies = []
    for n in range(STEADY_EVENTS):
        client_id = f"{tag}-{n}"
        started = time.perf_counter()
        ws.send(event_frame(items[n % len(items)], client_id))
        assert recv_json(ws) == {"type": "ack", "id": client_id}
        pushed = recv_json(ws)
        latencies.append(time.perf_counter() - started)
        assert pushed["type"] == "recommendations"
        time.sleep(STEADY_PACE_SECS)
    return latencies


# A flooder far over its rate limit but within what the server can answer gets
# ``rate_limited`` for every excess event; a firehose that sends faster than
# the server can read is cut off with 1008 once its unserved frames pile up.
FLOOD_PACES = [pytest.param(200, id="200-per-sec"), pytest.param(None, id="firehose")]


@pytest.mark.parametrize("pace_per_sec", FLOOD_PACES)
def test_flooder_is_rate_limited_and_others_keep_their_latency(
    live_servers, capsys, pace_per_sec
):
    cat = make_catalog()
    make_user("steady")
    make_user("flooder")
    server = live_servers(**private_prefix())
    # Both sockets are closed explicitly below, or with the stack on a failure.
    sockets = contextlib.ExitStack()

    def open_recs(username: str):
        session = login(server.http_url, username)
        ws = sockets.enter_context(open_socket(server, RECS_PATH, session))
        assert recv_json(ws)["type"] == "recommendations"
        return ws

    steady = open_recs("steady")
    baseline = steady_latencies(steady, cat.active, "calm")

    flooder = open_recs("flooder")
    stop = threading.Event()
    sent = Counter()
    answers: Counter[str] = Counter()
    # A valid event padded close to the 4 KiB limit: the costliest frame that
    # still passes validation.
    pad = "x" * 3800

    def flood() -> None:
        n = 0
        started = time.monotonic()
        try:
            while not stop.is_set():
                flooder.send(event_frame(cat.active[n % 20], f"f-{n}", group=pad))
                sent["frames"] += 1
                n += 1
                if pace_per_sec is not None:
                    ahead = started + n / pace_per_sec - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
        except ConnectionClosed:
            pass

    closed: dict[str, int | None] = {"code": None}
    last_answer = {"at": time.monotonic()}

    deadline = {"at": float("inf")}  # set once the flood stops

    def answered() -> int:
        return answers["ack"] + answers["rate_limited"]

    def drain() -> None:
        try:
            while time.monotonic() < deadline["at"]:
                if stop.is_set() and answered() >= sent["frames"]:
                    return
                try:
                    message = json.loads(flooder.recv(timeout=1))
                except TimeoutError:
                    continue
                answers[message.get("code") or message["type"]] += 1
                last_answer["at"] = time.monotonic()
        except ConnectionClosed as exc:
            closed["code"] = exc.rcvd.code if exc.rcvd else None

    flooding = threading.Thread(target=flood, daemon=True)
    draining = threading.Thread(target=drain, daemon=True)
    flooding.start()
    draining.start()
    time.sleep(0.5)  # let the flood build up
    flood_started = time.monotonic()
    try:
        under_flood = steady_latencies(steady, cat.active, "storm")
    finally:
        stop.set()
        flooding.join(timeout=10)
    flood_secs = time.monotonic() - flood_started + 0.5
    # A server that keeps up answers the backlog within seconds; one that
    # queued the flood without bound is still chewing on it.
    deadline["at"] = time.monotonic() + 20
    draining.join(timeout=30)
    backlog = closed["code"] is None and answered() < sent["frames"]
    sockets.close()

    figures = {
        "baseline_p50_ms": round(statistics.median(baseline) * 1000, 1),
        "baseline_p99_ms": round(percentile(baseline, 0.99) * 1000, 1),
        "flood_p50_ms": round(statistics.median(under_flood) * 1000, 1),
        "flood_p99_ms": round(percentile(under_flood, 0.99) * 1000, 1),
        "flood_frames_sent": sent["frames"],
        "flood_frames_per_sec": round(sent["frames"] / flood_secs),
        "flooder_answers": dict(answers),
        "flooder_closed": closed["code"],
        "unanswered_20s_after_flood": sent["frames"] - answered(),
    }
    with capsys.disabled():
        print(f"\nflood: {figures}")

    # Every frame of the flooder was answered (acked or explicitly refused), or
    # the flooder was cut off with 1008 for sending faster than it is served;
    # never a backlog the server keeps working through after the flood.
    assert not backlog, f"server still queued the flood 20 s after it ended: {figures}"
    if pace_per_sec is None:
        assert closed["code"] == 1008, figures
    else:
        assert closed["code"] is None, figures
        assert answers["rate_limited"] > 0, figures
        assert answers["ack"] + answers["rate_limited"] == sent["frames"], figures
        # Tokens accrue until the last frame is served: burst + rate x time.
        served_secs = last_answer["at"] - flood_started + 0.5
        assert answers["ack"] <= 20 + 10 * served_secs + 1, figures
    assert percentile(under_flood, 0.99) < P99_BOUND_SECS, figures
    assert server.process.poll() is None
