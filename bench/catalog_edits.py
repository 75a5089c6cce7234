"""A staff edit at a million items: what it costs the process that serves events.

    .venv/bin/python bench/catalog_edits.py                # the catalog bench's DB
    .venv/bin/python bench/catalog_edits.py --edits 50 --db recsite_catalog

Runs in one process against the database ``bench/catalog.py`` seeds (seeded
here, 1,000,000 items, when missing or smaller than ``--items``). With a
merchandising rule active, it builds the process's engine once, then makes
``--edits`` catalog edits the way staff do (a price change, a new item, an item
deactivated, in turn; each a model save, so the change log records it) and
times what the next scored event pays for each: the engine brought to the new
catalog version (``live.engine.current()``) and the rules compiled over it.

The bound, measured in the same run: what each edit cost before edits were
applied in place, a full build (read every item, build the engine, build the
rule view). Then the lists of ``--users`` sampled histories from the edited
engine against a full build of the same catalog: how many are identical (edited
rows use the feature scales fitted at the last full build).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.catalog import catalog_size, seed
from bench.database import BenchDB
from bench.figures import print_table, ratio, summarize_ms, write_json
from bench.servers import recsite_env


def _timed(fn: Any) -> tuple[Any, float, float]:
    """Return fn(), its wall time and its CPU time (ms)."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="recsite_catalog")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--full-builds", type=int, default=3)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    db = BenchDB(args.db)
    if catalog_size(db) < args.items:
        print(f"seeding {args.items:,} items into {db.name}…", flush=True)
        seed(db, items=args.items, users=200)
    os.environ.update(recsite_env(db))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
    import django

    django.setup()
    run(args)


def run(args: argparse.Namespace) -> None:
    import numpy as np

    from recommender.engine import History
    from recommender.models import Category, Item, Rule
    from recommender.services.catalog import catalog_load
    from recommender.services.live import live
    from recommender.services.rules import merchandising, rule_catalog_of
    from sync.selectors import seq_latest

    rule = Rule.objects.create(
        name="bench: no first category",
        kind="exclude",
        target="category",
        category=Category.objects.order_by("id").first(),
        placement="for_you",
    )
    try:
        live.reset()
        merchandising.reset()

        def caught_up() -> Any:
            live.engine.note_seq(seq_latest())
            state = live.engine.current()
            engine = state.engine
            merchandising.invalidate()
            merchandising.compiled(
                catalog=engine.catalog,
                placement="for_you",
                variant_id=None,
                now=time.time(),
                edited_from=engine.edited_from,
            )
            return state

        state, first_wall, first_cpu = _timed(caught_up)
        n_items = state.engine.n_items
        print(f"{n_items:,} items; first build {first_wall / 1000:.1f} s", flush=True)
        rng = np.random.default_rng(7)
        pks = state.engine.ids
        rows: list[dict[str, Any]] = []
        kinds = ("price", "new item", "deactivate")
        walls: dict[str, list[float]] = {k: [] for k in kinds}
        cpus: dict[str, list[float]] = {k: [] for k in kinds}
        for i in range(args.edits):
            kind = kinds[i % 3]
            item = Item.objects.get(pk=int(pks[rng.integers(pks.shape[0])]))
            if kind == "price":
                item.price = round(float(item.price) * 1.1 + 1, 2)
                item.save()
            elif kind == "new item":
                Item.objects.create(
                    title=f"Bench arrival {i}",
                    category=item.category,
                    tags=item.tags,
                    price=item.price,
                    rating=item.rating,
                )
            else:
                item.active = False
                item.save()
            _, wall, cpu = _timed(caught_up)
            walls[kind].append(wall)
            cpus[kind].append(cpu)
        for kind in kinds:
            rows.append(
                {
                    "path": f"in place: {kind}",
                    **_ms(walls[kind], cpus[kind]),
                }
            )
        everything = [w for k in kinds for w in walls[k]]
        all_cpu = [c for k in kinds for c in cpus[k]]
        rows.append({"path": "in place: every edit", **_ms(everything, all_cpu)})

        engine = live.engine.current().engine
        full_walls, full_cpus = [], []
        for _ in range(args.full_builds):

            def full_build() -> Any:
                built = engine.with_catalog(catalog_load())
                rule_catalog_of(built.catalog)
                return built

            rebuilt, wall, cpu = _timed(full_build)
            full_walls.append(wall)
            full_cpus.append(cpu)
        rows.append({"path": "full build (the bound)", **_ms(full_walls, full_cpus)})
        for row in rows:
            # How many times the in-place path is cheaper than the bound.
            row["full_build_x"] = ratio(rows[-1]["p50_ms"], row["p50_ms"])

        same, total = _lists_agree(engine, rebuilt, rng, args.users, History)
    finally:
        rule.delete()
        Item.objects.filter(title__startswith="Bench arrival").delete()
    print_table(
        f"catalog edit → next event's engine and rules, {n_items:,} items, one rule",
        rows,
        ["path", "count", "p50_ms", "p99_ms", "max_ms", "cpu_p50_ms", "full_build_x"],
    )
    print(
        f"\nlists identical to a full build's: {same}/{total} sampled users "
        f"(top 10, {engine.rows_patched} rows edited in place)"
    )
    write_json(
        "catalog_edits",
        {
            "items": n_items,
            "first_build_ms": round(first_wall, 1),
            "first_build_cpu_ms": round(first_cpu, 1),
            "rows": rows,
            "lists_identical": same,
            "lists_sampled": total,
        },
    )


def _ms(walls: list[float], cpus: list[float]) -> dict[str, Any]:
    wall = summarize_ms(walls)
    return {
        "count": wall["count"],
        "p50_ms": wall["p50"],
        "p99_ms": wall["p99"],
        "max_ms": wall["max"],
        "cpu_p50_ms": summarize_ms(cpus)["p50"],
    }


def _lists_agree(edited: Any, rebuilt: Any, rng: Any, users: int, history: Any):
    """Return how many sampled histories get the same top 10 from both engines."""
    import numpy as np

    now = time.time()
    active = edited.ids[edited.catalog.active]
    same = 0
    for _ in range(users):
        ids = rng.choice(active, size=8).astype(np.int64)
        h = history(
            item_ids=ids,
            actions=["view"] * 8,
            weights=np.ones(8, np.float32),
            timestamps=now - np.arange(8, 0, -1, dtype=np.float64),
        )
        a = [r.item_id for r in edited.recommend(h, k=10, now=now, with_reasons=False)]
        b = [r.item_id for r in rebuilt.recommend(h, k=10, now=now, with_reasons=False)]
        same += a == b
    return same, users


if __name__ == "__main__":
    main()
