"""The bound: a minimal asyncio ``websockets`` server doing recsite's socket jobs.

- ``/ws/recommendations/``: sends a ``recommendations`` message on connect; for
  each ``event`` frame it answers ``ack`` and a new ``recommendations`` message
  of the same shape and size as recsite's (10 items with reasons), encoded per
  reply, sent straight to the socket that asked. No database, no engine.
- ``/ws/sync/``: sends ``hello``; every broadcast goes to all these sockets.
- ``/ws/control/``: a frame ``{"type":"broadcast","title":T}`` makes one
  ``change`` message (encoded once) and broadcasts it to every sync socket.

Run: ``python bench/bare_server.py --port P [--compression]``.
"""

import argparse
import asyncio
import json
import os
import resource
import signal

from websockets.asyncio.server import broadcast, serve

SYNC: set = set()
SEQ = 0


def encode(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


def recommendations(version: int, seed: int) -> str:
    items = [
        {
            "id": (seed * 31 + k * 97) % 10_000 + 1,
            "title": f"Item {(seed * 31 + k * 97) % 10_000 + 1} deluxe edition",
            "score": round(1.0 / (k + 1.5), 4),
            "reasons": ["similar to what you viewed", "popular in Books"],
        }
        for k in range(10)
    ]
    return encode(
        {
            "type": "recommendations",
            "version": version,
            "items": items,
            "computed_ms": 0.0,
        }
    )


async def recs(ws) -> None:
    version = 1
    await ws.send(recommendations(version, 0))
    async for frame in ws:
        try:
            msg = json.loads(frame)
        except ValueError:
            continue
        if msg.get("type") != "event":
            continue
        await ws.send(encode({"type": "ack", "id": msg.get("id")}))
        version += 1
        await ws.send(recommendations(version, int(msg.get("item") or 0)))


async def sync(ws) -> None:
    await ws.send(encode({"type": "hello", "seq": SEQ}))
    SYNC.add(ws)
    try:
        await ws.wait_closed()
    finally:
        SYNC.discard(ws)


async def control(ws) -> None:
    global SEQ
    async for frame in ws:
        msg = json.loads(frame)
        SEQ += 1
        text = encode(
            {
                "type": "change",
                "seq": SEQ,
                "model": "item",
                "op": "upsert",
                "id": SEQ % 500 + 1,
                "data": {
                    "id": SEQ % 500 + 1,
                    "title": msg["title"],
                    "description": "A bench item",
                    "category": 3,
                    "tags": "wireless, compact",
                    "price": "19.99",
                    "rating": 4.2,
                    "year": 2020,
                    "active": True,
                },
            }
        )
        broadcast(SYNC, text)


ROUTES = {"/ws/recommendations/": recs, "/ws/sync/": sync, "/ws/control/": control}


async def handler(ws) -> None:
    route = ROUTES.get(ws.request.path)
    if route is None:
        await ws.close(code=4404)
        return
    await route(ws)


async def main(port: int, compression: bool) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression="deflate" if compression else None,
        ping_interval=20,
        ping_timeout=30,
        max_size=65536,
        backlog=4096,
    ):
        print(f"bare server on 127.0.0.1:{port} pid {os.getpid()}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--compression", action="store_true")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(args.port, args.compression))
