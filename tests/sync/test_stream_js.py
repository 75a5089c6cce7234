"""sync/static/sync/stream.js follows the shape rules of docs/protocol.md (run in Node)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "js" / "stream_shapes.mjs"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_js_stream_subscribes_resumes_on_loss_and_switches_shapes():
    out = subprocess.run(
        ["node", str(SCRIPT)], capture_output=True, text=True, timeout=30, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    books = {"model": "item", "category": "books"}
    assert result["sent"] == [
        # On open: subscribe after the snapshot's seq, not resume.
        {"type": "subscribe", "shape": books, "after": 10, "id": "s1"},
        # A replayed change arrived before "subscribed": dropped, so resume.
        {"type": "resume", "after": 10},
        # prev 21 > applied 20 (moved there by the heartbeat): a loss.
        {"type": "resume", "after": 20},
        # setShape: the new shape's snapshot, then subscribe after its seq.
        {
            "type": "subscribe",
            "shape": {"model": "item", "category": "games"},
            "after": 30,
            "id": "s2",
        },
        # setShape without a reload: subscribe after applied; a "subscribed"
        # that echoes an earlier id does not end the wait.
        {
            "type": "subscribe",
            "shape": {"model": "item", "category": "games", "also_ids": [7]},
            "after": 30,
            "id": "s3",
        },
        {"type": "resume", "after": 30},
    ]
    # Gaps in seq are normal; each change applied once, in order.
    assert result["applied"] == [
        [12, "upsert"],
        [17, "leave"],
        [23, "upsert"],
        [31, "upsert"],
    ]
    assert result["final"] == 31
