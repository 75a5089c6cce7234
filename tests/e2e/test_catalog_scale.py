"""The catalog grid at scale in headless Chromium: one page first, bounded DOM."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import run_db

pytestmark = pytest.mark.django_db(transaction=True)

CATALOG = "[data-testid='catalog']"
CARDS = f"{CATALOG} [data-item-id]"
FIRST_PAGE = 48
MAX_CARDS = 240


def _shop(n: int) -> dict[str, int]:
    from recommender.models import Category, Item

    shelves = [Category.objects.create(name=name) for name in ("Garden", "Music")]
    Item.objects.bulk_create(
        Item(
            title=f"Planter No. {i}" if i % 2 else f"Songbook No. {i}",
            category=shelves[i % 2 == 0],
            tags="terracotta" if i % 2 else "acoustic",
            price=10 + i % 50,
        )
        for i in range(n)
    )
    last = Item.objects.create(
        title="Quokka Lantern", category=shelves[0], tags="solar", price=30
    )
    return {"last": last.pk, "garden": shelves[0].pk}


def card_count(page: Any) -> int:
    return page.locator(CARDS).count()


def test_a_large_catalog_paints_one_page_and_scrolls_within_a_bounded_dom(new_tab):
    shop = run_db(lambda: _shop(700))
    tab = new_tab(viewport={"width": 390, "height": 844}, is_mobile=True)
    tab.goto("/")
    page = tab.page
    expect(page.locator(CARDS)).to_have_count(FIRST_PAGE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    more = page.locator("[data-action='more']")

    # Scroll to the end of the catalog: pages keep coming, the DOM stays bounded.
    seen_max = 0
    for _ in range(20):
        if more.is_hidden():
            break
        before = page.locator(CARDS).last.get_attribute("data-item-id")
        more.scroll_into_view_if_needed()
        more.click()
        page.wait_for_function(
            """([sel, id]) => {
                 const all = document.querySelectorAll(sel);
                 return all.length > 0 && all[all.length - 1].dataset.itemId !== id;
               }""",
            arg=[CARDS, before],
        )
        seen_max = max(seen_max, card_count(page))
    assert more.is_hidden(), "the last page was reached"
    assert seen_max <= MAX_CARDS
    assert card_count(page) <= MAX_CARDS
    expect(page.locator(f"{CATALOG} [data-item-id='{shop['last']}']")).to_have_count(1)
    earlier = page.locator("button.earlier")
    expect(earlier).to_be_visible()
    earlier.click()
    expect(page.locator(CARDS)).to_have_count(MAX_CARDS)

    # The search runs on the server: it finds the last item from the first page.
    page.fill("#catalog-search", "quokka")
    expect(page.locator(CARDS)).to_have_count(1)
    expect(page.locator(CARDS).first.locator("[data-field='title']")).to_have_text(
        "Quokka Lantern"
    )
    page.fill("#catalog-search", "")
    page.select_option("#catalog-category", "Garden")
    expect(page.locator(CARDS)).to_have_count(FIRST_PAGE)
    titles = page.locator(f"{CARDS} [data-field='title']").all_text_contents()
    assert all(t.startswith("Planter") for t in titles)
