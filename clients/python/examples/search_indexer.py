"""Keep a search index in step with a recsite catalog (here: a word index in memory).

    python examples/search_indexer.py http://127.0.0.1:8000 [--query WORD]

Loads the snapshot, then applies every change as it happens; every few
seconds prints how many items are indexed and what ``--query`` finds. A real
indexer writes to Elasticsearch, Meilisearch or a database table instead;
the loop stays the same. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import time
from collections import defaultdict

from recsite_client import CatalogStream, Delete, Leave, Reloaded, Upsert

WORD = re.compile(r"\w+")


class WordIndex:
    """Item id -> item, and word -> item ids, from title, description and tags."""

    def __init__(self) -> None:
        self.items: dict[int, dict] = {}
        self.words: dict[str, set[int]] = defaultdict(set)

    def replace(self, items: dict[int, dict]) -> None:
        self.items, self.words = {}, defaultdict(set)
        for item_id, item in items.items():
            self.put(item_id, item)

    def put(self, item_id: int, item: dict) -> None:
        self.remove(item_id)
        self.items[item_id] = item
        text = " ".join([item["title"], item["description"], *item["tags"]])
        for word in WORD.findall(text.lower()):
            self.words[word].add(item_id)

    def remove(self, item_id: int) -> None:
        if self.items.pop(item_id, None) is not None:
            for ids in self.words.values():
                ids.discard(item_id)

    def search(self, word: str) -> list[str]:
        ids = sorted(self.words.get(word.lower(), ()))
        return [self.items[item_id]["title"] for item_id in ids[:5]]


async def main(base_url: str, query: str | None) -> None:
    index = WordIndex()
    stream = CatalogStream(base_url)
    shown = 0.0
    async for event in stream:
        match event:
            case Reloaded(seq=seq, items=items, reason=reason):
                index.replace(items)
                print(f"{reason} snapshot at seq {seq}: {len(items)} items")
            case Upsert(id=item_id, data=data):
                index.put(item_id, data)
                print(f"seq {event.seq}: indexed {item_id} {data['title']!r}")
            case Leave(id=item_id) | Delete(id=item_id):
                index.remove(item_id)
                print(f"seq {event.seq}: removed {item_id}")
        if time.monotonic() - shown > 5:
            shown = time.monotonic()
            found = f", {query!r}: {index.search(query)}" if query else ""
            print(f"{len(index.items)} items indexed at seq {stream.applied}{found}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", help="the shop, e.g. http://127.0.0.1:8000")
    parser.add_argument("--query", help="a word to look up after each change")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.base_url, args.query))
