"""The grid's socket follows the shape the page shows, in headless Chromium.

The page subscribes to its category and search, the ids of the pages it
holds, and the items its other panels show (recommendations, activity, the
open dialog). Edits outside that never reach the browser; edits inside it,
and edits of a recommended item from another category, are shown at once.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import run_db
from tests.e2e.test_dashboard import CATALOG, RECS, admin_edit, card, wait_ready

pytestmark = pytest.mark.django_db(transaction=True)

PANEL_ITEMS = "[data-item-id], [data-because-item], [data-activity-item]"


def _more_shelves() -> None:
    """Add a category of items that the page neither filters to nor recommends."""
    from recommender.models import Category, Item

    garden = Category.objects.create(name="Garden")
    for n in range(24):
        Item.objects.create(
            title=f"Terracotta Planter {n}", category=garden, tags="garden", price=9
        )


def _sync_frames(page: Any) -> tuple[list[dict], list[dict]]:
    """Collect the JSON frames of the page's /ws/sync/ socket: (received, sent)."""
    received: list[dict] = []
    sent: list[dict] = []

    def on_socket(ws: Any) -> None:
        if "/ws/sync/" not in ws.url:
            return
        ws.on("framereceived", lambda payload: received.append(json.loads(payload)))
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return received, sent


def _shown_ids(page: Any) -> set[int]:
    """Return every item id the page shows anywhere (grid, panels, dialog)."""
    return set(
        page.evaluate(
            """sel => [...document.querySelectorAll(sel)].map(
                 el => Number(el.dataset.itemId ?? el.dataset.becauseItem
                              ?? el.dataset.activityItem))""",
            PANEL_ITEMS,
        )
    )


def _changes_of(frames: list[dict], item_id: int) -> list[dict]:
    return [f for f in frames if f.get("type") == "change" and f["id"] == item_id]


def test_the_grid_receives_its_shape_and_the_panels_items_only(new_tab, catalog):
    run_db(_more_shelves)
    shopper = new_tab()
    received, sent = _sync_frames(shopper.page)
    shopper.login("shopper")
    wait_ready(shopper)
    page = shopper.page
    audio = catalog.items["Quiet Storm Headphones"]
    page.select_option("#catalog-category", "Audio")
    expect(page.locator(f"{CATALOG} [data-item-id]")).to_have_count(3)

    # A recommended item from another category, and one shown nowhere.
    recommended = [
        int(i)
        for i in page.locator(f"{RECS} [data-item-id]").evaluate_all(
            "els => els.map(el => el.dataset.itemId)"
        )
    ]
    audio_ids = {
        int(i)
        for i in page.locator(f"{CATALOG} [data-item-id]").evaluate_all(
            "els => els.map(el => el.dataset.itemId)"
        )
    }
    rec = next(i for i in recommended if i not in audio_ids)
    page.wait_for_function(
        """rec => window.recsite.catalog.stream.subscribed
                  && (window.recsite.catalog.stream.shape.also_ids || []).includes(rec)""",
        arg=rec,
    )
    from recommender.models import Item

    everything = set(run_db(lambda: list(Item.objects.values_list("id", flat=True))))
    outside = min(everything - _shown_ids(page))
    subscribes = [f for f in sent if f.get("type") == "subscribe"]
    assert subscribes and subscribes[-1]["shape"]["category"] > 0
    assert rec in subscribes[-1]["shape"]["also_ids"]
    assert outside not in subscribes[-1]["shape"]["also_ids"]

    staff = new_tab()
    staff.expect_admin()
    staff.login("staff", next_path="/admin/")
    admin_edit(staff, outside, title="Renamed Where Nobody Looks")
    admin_edit(staff, audio, title="Quiet Storm Headphones II")
    admin_edit(staff, rec, title="Recommended And Renamed")

    # Inside the grid's shape: shown.
    expect(card(page, audio).locator("[data-field='title']")).to_have_text(
        "Quiet Storm Headphones II"
    )
    # A recommended item outside the grid's category: its new title shows.
    expect(page.locator(f"{RECS} [data-item-id='{rec}']")).to_contain_text(
        "Recommended And Renamed"
    )
    # Changes come in seq order: the outside edit, saved first, would have
    # arrived before these two.
    assert _changes_of(received, audio) and _changes_of(received, rec)
    assert _changes_of(received, outside) == []
    assert "Renamed Where Nobody Looks" not in page.content()
    shopper.screenshot("shape-grid-and-panels")


def _kitchen_shelf() -> None:
    """Fill the Kitchen category past what a recommendation list can hold."""
    from recommender.models import Category, Item

    kitchen = Category.objects.get(name="Kitchen")
    for n in range(15):
        Item.objects.create(title=f"Tea Towel {n}", category=kitchen, price=5)


def test_an_item_leaving_the_grids_shape_goes_and_one_entering_comes(new_tab, catalog):
    run_db(_kitchen_shelf)
    shopper = new_tab()
    received, _ = _sync_frames(shopper.page)
    shopper.goto("/")
    wait_ready(shopper)  # an anonymous visitor's recommendations too
    page = shopper.page
    page.select_option("#catalog-category", "Kitchen")
    expect(page.locator(f"{CATALOG} [data-item-id]")).to_have_count(18)
    # Settled: the shape lists every item the panels show.
    page.wait_for_function(
        """sel => {
             const stream = window.recsite.catalog.stream;
             const grid = document.querySelector("[data-testid='catalog']");
             const shown = new Set([...document.querySelectorAll(sel)]
               .filter(el => !grid.contains(el) && !el.closest("dialog"))
               .map(el => Number(el.dataset.itemId ?? el.dataset.becauseItem
                                 ?? el.dataset.activityItem)));
             const followed = new Set(stream.shape.also_ids || []);
             return stream.subscribed && stream.shape.category > 0
               && shown.size === followed.size && [...shown].every(i => followed.has(i));
           }""",
        arg=PANEL_ITEMS,
    )
    followed = set(
        page.evaluate("() => window.recsite.catalog.stream.shape.also_ids || []")
    )
    in_grid = [
        int(i)
        for i in page.locator(f"{CATALOG} [data-item-id]").evaluate_all(
            "els => els.map(el => el.dataset.itemId)"
        )
    ]
    leaving = next(i for i in in_grid if i not in followed)
    tent = catalog.items["Featherlight Tent"]

    def move() -> None:
        from recommender.models import Category, Item

        item = Item.objects.get(pk=leaving)
        item.category = Category.objects.get(name="Outdoor")
        item.save()
        item = Item.objects.get(pk=tent)
        item.category = Category.objects.get(name="Kitchen")
        item.save()

    run_db(move)
    expect(card(page, leaving)).to_have_count(0)
    expect(card(page, tent)).to_have_count(1)
    ops = [(f["op"], f["id"]) for f in received if f.get("type") == "change"]
    assert ("leave", leaving) in ops and ("upsert", tent) in ops
