"""Property-based fuzz of the socket protocol: every frame gets exactly its answer.

The in-process run drives ``recsite.asgi.application`` (origin check, session
auth, routing, both consumers) with ``WebsocketCommunicator`` and at least
10,000 hypothesis-generated frames, valid and hostile mixed, text and binary.
The rate limiter's clock is replaced by a fake one that the test advances, so a
token-bucket model predicts exactly which events are ``rate_limited``. A second
user's socket sends an event after every example and must be served and must
never see the fuzzed user's pushes. A short run against a live daphne checks
the same answers through a real WebSocket stack.
"""

import contextlib
import json
import types
from collections import Counter, deque
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import recommender.limits
from recommender.models import BrowsingEvent
from recsite.asgi import application
from sync.selectors import seq_latest
from tests.security.conftest import (
    event_frame,
    make_catalog,
    make_user,
    private_prefix,
    recv_json,
    session_cookie,
    ws_headers,
)
from tests.security.frames import Case, Frames
from tests.support.sockets import RECS_PATH
from tests.support.sockets import open_socket as open_live_socket

MIN_FRAMES = 10_000
EXAMPLES = int(__import__("os").environ.get("FUZZ_EXAMPLES", 200))
FRAMES_PER_EXAMPLE = (50, 60)

# The sockets and the bucket model carry state from one example to the next, so
# a failing example cannot be replayed or shrunk: report the first one as is.
HYPOTHESIS = {
    "phases": [Phase.generate],
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


class FakeClock:
    """A monotonic clock that only moves when told (exact binary fractions)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BucketModel:
    """An independent model of one token bucket on the fake clock."""

    def __init__(self, clock: FakeClock, rate_per_sec: float, burst: int) -> None:
        self.clock = clock
        self.rate = rate_per_sec
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = clock()

    def wait(self) -> float:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


def check_error(answer: dict, code: str, client_id: Any) -> None:
    assert answer["type"] == "error", answer
    assert answer["code"] == code, answer
    assert answer["id"] == client_id, answer
    assert isinstance(answer["message"], str) and answer["message"], answer
    extra = {"retry_after"} if code == "rate_limited" else set()
    assert set(answer) == {"type", "code", "message", "id", *extra}, answer


async def send_frame(comm: WebsocketCommunicator, case: Case) -> None:
    # The communicator refuses empty frames; a real client can send them.
    if case.text is not None:
        await comm.send_input({"type": "websocket.receive", "text": case.text})
    else:
        await comm.send_input({"type": "websocket.receive", "bytes": case.data})


async def disconnect_quietly(comm: WebsocketCommunicator) -> None:
    """Close ``comm``; a consumer that already crashed has reported it."""
    with contextlib.suppress(Exception):
        await comm.disconnect(timeout=10)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fuzzed_frames_each_get_their_answer_and_nothing_crashes(
    settings, monkeypatch, loop_thread, capsys, private_layer
):
    # Every frame of the run is answered; none may close the socket.
    settings.WS_MAX_INVALID_FRAMES = 10**9
    settings.SYNC_HEARTBEAT_SECS = 3600
    clock = FakeClock()
    monkeypatch.setattr(
        recommender.limits, "time", types.SimpleNamespace(monotonic=clock)
    )

    cat = make_catalog()
    fuzzed, bystander, victim = (
        make_user("fuzzer"),
        make_user("bystander"),
        make_user("victim"),
    )
    frames = Frames(
        active=cat.active,
        unknown=[cat.inactive, cat.missing, 2**63 - 1],
        victim=victim.pk,
        seq=seq_latest(),
        max_bytes=django_settings.WS_MAX_FRAME_BYTES,
    )
    conn = BucketModel(clock, settings.WS_EVENT_RATE_PER_SEC, settings.WS_EVENT_BURST)
    per_user = BucketModel(
        clock, settings.WS_USER_EVENT_RATE_PER_SEC, settings.WS_USER_EVENT_BURST
    )

    async def open_socket(
        path: str, session: str | None
    ) -> tuple[WebsocketCommunicator, dict]:
        comm = WebsocketCommunicator(application, path, headers=ws_headers(session))
        connected, _ = await comm.connect(timeout=10)
        assert connected
        return comm, await comm.receive_json_from(timeout=10)

    recs, first = loop_thread.run(
        open_socket("/ws/recommendations/", session_cookie(fuzzed))
    )
    other, other_first = loop_thread.run(
        open_socket("/ws/recommendations/", session_cookie(bystander))
    )
    sync, hello = loop_thread.run(open_socket("/ws/sync/", None))
    assert first["type"] == other_first["type"] == "recommendations"
    assert hello == {"type": "hello", "seq": frames.seq}

    answers: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    acked: set[str] = set()
    state = {
        "frames": 0,
        "version": first["version"],
        "other_version": other_first["version"],
        "bystander_events": 0,
    }

    recent: deque[str] = deque(maxlen=6)

    async def next_answer(comm: WebsocketCommunicator) -> dict:
        # A sync socket gets heartbeats every SYNC_HEARTBEAT_SECS whatever the
        # client sends; they answer no frame.
        while True:
            answer = await comm.receive_json_from(timeout=10)
            if answer.get("type") != "heartbeat":
                return answer

    async def nothing_but_heartbeats(comm: WebsocketCommunicator) -> bool:
        while not await comm.receive_nothing(timeout=0.001):
            if (await comm.receive_json_from(timeout=1)).get("type") != "heartbeat":
                return False
        return True

    async def expect(comm: WebsocketCommunicator, case: Case) -> None:
        answer = await next_answer(comm)
        recent.append(f"{case.kind}/{case.expect} -> {answer!r:.160}")
        if case.expect == "event":
            wait = max(conn.wait(), per_user.wait())
            if wait > 0:
                check_error(answer, "rate_limited", case.client_id)
                assert answer["retry_after"] == pytest.approx(wait, abs=2e-3)
                answers["rate_limited"] += 1
                return
            conn.tokens -= 1
            per_user.tokens -= 1
            if not case.known:
                check_error(answer, "unknown_item", case.client_id)
                answers["unknown_item"] += 1
                return
            assert answer == {"type": "ack", "id": case.client_id}
            pushed = await comm.receive_json_from(timeout=10)
            recent.append(f"  then {pushed!r:.100}")
            assert pushed["type"] == "recommendations", pushed
            assert pushed["version"] > state["version"]
            state["version"] = pushed["version"]
            acked.add(case.client_id)
            answers["ack"] += 1
        elif case.expect in ("resumed", "reset"):
            assert answer == {"type": case.expect, "seq": frames.seq}
            answers[case.expect] += 1
        else:
            check_error(answer, case.expect, case.client_id)
            answers[case.expect] += 1

    async def run_example(cases: list[Case], pace: list[float]) -> None:
        for case, step in zip(cases, pace, strict=True):
            clock.now += step
            comm = recs if case.target == "recs" else sync
            await send_frame(comm, case)
            try:
                await expect(comm, case)
            except AssertionError as exc:
                raise AssertionError(
                    f"{exc}\nframe: {case!r:.2000}\nrecent: " + "\n".join(recent)
                ) from None
            kinds[case.kind] += 1
            state["frames"] += 1
        # Nothing more than the expected answers, and the other user is served
        # throughout and never sees the fuzzed user's pushes.
        assert await recs.receive_nothing(timeout=0.005)
        assert await nothing_but_heartbeats(sync)
        clock.now += 1.0
        state["bystander_events"] += 1
        client_id = f"bystander-{state['bystander_events']}"
        await other.send_to(text_data=event_frame(cat.active[0], client_id))
        answer = await other.receive_json_from(timeout=10)
        assert answer == {"type": "ack", "id": client_id}, (
            f"bystander expected its ack, got {answer!r:.300} (its last version "
            f"{state['other_version']}, fuzzed user's {state['version']})"
        )
        pushed = await other.receive_json_from(timeout=10)
        assert pushed["type"] == "recommendations"
        assert pushed["version"] > state["other_version"]
        state["other_version"] = pushed["version"]
        assert await other.receive_nothing(timeout=0.001)

    steps = st.sampled_from([0.0625, 0.25, 4.0])
    steady = st.lists(steps, min_size=60, max_size=60)  # buckets refill
    burst = st.lists(st.just(0.0), min_size=60, max_size=60)  # buckets drain
    paces = st.one_of(steady, burst, burst)
    mixed = st.one_of(
        frames.recs_frames(),
        frames.recs_frames(),
        frames.recs_frames(),
        frames.sync_frames(),
    )

    @hsettings(max_examples=EXAMPLES, **HYPOTHESIS)
    @given(
        cases=st.lists(
            mixed, min_size=FRAMES_PER_EXAMPLE[0], max_size=FRAMES_PER_EXAMPLE[1]
        ),
        pace=paces,
    )
    def fuzz(cases: list[Case], pace: list[float]) -> None:
        loop_thread.run(run_example(cases, pace[: len(cases)]), timeout=120)

    try:
        fuzz()
        # No exception escaped a consumer: every application task is still running.
        for comm in (recs, other, sync):
            assert not comm.future.done()
    finally:
        for comm in (recs, other, sync):
            loop_thread.run(disconnect_quietly(comm))

    # The user field of a frame is ignored: the fuzzed user's events are exactly
    # the acked client ids, and no event landed on the victim or the bystander.
    assert (
        set(
            BrowsingEvent.objects.filter(user=fuzzed).values_list(
                "client_id", flat=True
            )
        )
        == acked
    )
    assert not BrowsingEvent.objects.filter(user=victim).exists()
    assert (
        BrowsingEvent.objects.filter(user=bystander).count()
        == state["bystander_events"]
    )

    total = state["frames"]
    with capsys.disabled():
        print(
            f"\nfuzz: {total} frames, crashes 0, answers by code: {dict(sorted(answers.items()))}"
        )
        print(f"fuzz: frames by kind: {dict(sorted(kinds.items()))}")
    assert total >= MIN_FRAMES
    assert sum(answers.values()) == total
    for code in (
        "ack",
        "rate_limited",
        "unknown_item",
        "bad_json",
        "bad_message",
        "too_large",
    ):
        assert answers[code] > 0, f"the run never produced {code}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_hostile_frames_on_live_daphne_get_their_answers(live_servers):
    """Real WebSocket frames through daphne: same answers, other clients served."""
    cat = make_catalog()
    make_user("fuzzer")
    make_user("bystander")
    server = live_servers(WS_MAX_INVALID_FRAMES="100000", **private_prefix())
    from tests.security.conftest import login

    fuzz_session = login(server.http_url, "fuzzer")
    other_session = login(server.http_url, "bystander")
    frames = Frames(
        active=cat.active,
        unknown=[cat.missing],
        victim=1,
        seq=seq_latest(),
        max_bytes=django_settings.WS_MAX_FRAME_BYTES,
        real_limit=True,
    )
    counts: Counter[str] = Counter()

    @contextlib.contextmanager
    def open_recs(session: str):
        with open_live_socket(server, RECS_PATH, session, max_size=2**20) as ws:
            assert recv_json(ws)["type"] == "recommendations"
            yield ws

    with open_recs(fuzz_session) as ws, open_recs(other_session) as other:

        @hsettings(max_examples=12, **HYPOTHESIS)
        @given(cases=st.lists(frames.hostile_frames(), min_size=40, max_size=50))
        def fuzz(cases: list[Case]) -> None:
            for case in cases:
                ws.send(case.text if case.text is not None else case.data)
                answer = recv_json(ws)
                check_error(answer, case.expect, case.client_id)
                counts[case.expect] += 1
            client_id = f"bystander-{sum(counts.values())}"
            other.send(event_frame(cat.active[1], client_id))
            assert recv_json(other) == {"type": "ack", "id": client_id}
            assert recv_json(other)["type"] == "recommendations"

        fuzz()
    print(f"live fuzz: {sum(counts.values())} frames, answers {dict(counts)}")
    assert sum(counts.values()) >= 400
    assert server.process.poll() is None
    assert json.dumps(counts)
