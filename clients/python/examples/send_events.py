"""Send browsing events for one user and print the recommendation lists they cause.

    python examples/send_events.py http://127.0.0.1:8000 USERNAME PASSWORD [ITEM ...]

Logs in through the site's login form (``--session`` uses a ``sessionid`` you
already hold instead), prints the current list, then for each item sends a
``view`` (``--action`` for another), waits for the ack and prints the new
list. Without items it likes the top recommendation three times over.
"""

from __future__ import annotations

import argparse
import asyncio

from recsite_client import ACTIONS, RecommendationList, RecommendationsClient


def show(lst: RecommendationList) -> None:
    print(f"list v{lst.version} ({lst.computed_ms} ms):")
    for entry in lst.items[:5]:
        reason = entry.reasons[0] if entry.reasons else ""
        print(f"  {entry.id:>6}  {entry.score:.2f}  {entry.title}  — {reason}")


async def main(args: argparse.Namespace) -> None:
    async with RecommendationsClient(
        args.base_url,
        session_id=args.session,
        username=args.username,
        password=args.password,
    ) as recs:
        lists = aiter(recs)
        latest = await anext(lists)
        show(latest)
        items = args.items or [None] * 3
        for item in items:
            target = item if item is not None else latest.items[0].id
            event_id = await recs.send_event(args.action, target)
            print(f"{args.action} {target}: acked ({event_id})")
            latest = await asyncio.wait_for(anext(lists), 10)
            show(latest)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("username", nargs="?")
    parser.add_argument("password", nargs="?")
    parser.add_argument("items", nargs="*", type=int)
    parser.add_argument("--session", help="an existing sessionid instead of a login")
    parser.add_argument("--action", choices=ACTIONS, default="view")
    args = parser.parse_args()
    if not args.session and not (args.username and args.password):
        parser.error("give USERNAME PASSWORD, or --session")
    asyncio.run(main(args))
