"""sync in a project of its own: no recommender, no recsite.

``tests/sync/example_project`` is the smallest project that uses sync (its
settings, one model registered in ``notes/sync.py``, ``/ws/sync/`` routed in
its ``asgi.py``). This test migrates it, serves it with daphne in a
subprocess and follows ``/ws/sync/`` with a real WebSocket client: a save
arrives as a ``change``, and a client that was away resumes with exactly
what it missed. It needs no Redis or PostgreSQL (SQLite, in-memory layer).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.support.env import ROOT
from tests.support.servers import free_port

PROJECT = Path(__file__).resolve().parent / "example_project"

pytestmark = pytest.mark.timeout(240)


def project_env(tmp_path: Path) -> dict[str, str]:
    """Return the environment of the example project's processes.

    Only the repository root (for ``sync``) and the project are importable
    as apps; none of recsite's settings or environment leaks in.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "RECSITE_", "SYNC_"))
        and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        PYTHONPATH=f"{PROJECT}{os.pathsep}{ROOT}",
        DJANGO_SETTINGS_MODULE="example.settings",
        EXAMPLE_DATABASE=str(tmp_path / "example.sqlite3"),
    )
    return env


@pytest.fixture
def example_server(tmp_path):
    """Migrate the example project and serve it with daphne; yield its base URL."""
    env = project_env(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        cwd=tmp_path,
        env=env,
        check=True,
        timeout=180,
    )
    port = free_port()
    log = open(tmp_path / "daphne.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "example.asgi:application",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"http://{base}/notes/", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        (tmp_path / "daphne.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def receive(ws, kind: str) -> dict:
    """Return the next message of type ``kind`` (heartbeats are skipped)."""
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message["type"] == kind:
            return message
        assert message["type"] == "heartbeat", message


def test_a_save_reaches_the_socket_and_a_returning_client_resumes(example_server):
    http = httpx.Client(base_url=f"http://{example_server}", timeout=10)
    origin = f"http://{example_server}"
    with connect(f"ws://{example_server}/ws/sync/", origin=origin) as ws:
        hello = receive(ws, "hello")
        assert hello["seq"] == http.get("/notes/").json()["seq"]
        note_id = http.post("/notes/", json={"text": "first"}).json()["id"]
        change = receive(ws, "change")
    assert change == {
        "type": "change",
        "seq": hello["seq"] + 1,
        "model": "note",
        "op": "upsert",
        "id": note_id,
        "data": {"id": note_id, "text": "first"},
    }

    # Away: one edit and one delete happen meanwhile.
    http.put(f"/notes/{note_id}/", json={"text": "edited"})
    second = http.post("/notes/", json={"text": "second"}).json()["id"]
    http.delete(f"/notes/{note_id}/")

    with connect(f"ws://{example_server}/ws/sync/", origin=origin) as ws:
        assert receive(ws, "hello")["seq"] == change["seq"] + 3
        ws.send(json.dumps({"type": "resume", "after": change["seq"]}))
        missed = [receive(ws, "change") for _ in range(3)]
        resumed = receive(ws, "resumed")
    assert [(m["seq"], m["op"], m["id"]) for m in missed] == [
        (change["seq"] + 1, "upsert", note_id),
        (change["seq"] + 2, "upsert", second),
        (change["seq"] + 3, "delete", note_id),
    ]
    assert missed[0]["data"]["text"] == "edited"
    assert resumed == {"type": "resumed", "seq": change["seq"] + 3}
    snapshot = http.get("/notes/").json()
    assert snapshot == {
        "seq": change["seq"] + 3,
        "items": [{"id": second, "text": "second"}],
    }
