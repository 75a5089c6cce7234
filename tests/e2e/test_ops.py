"""The operator view in headless Chromium, live while a shopper browses."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def metric_value(page, key: str) -> float:
    value = page.locator(f"[data-metric='{key}']").get_attribute("data-value")
    return float(value) if value is not None else float("nan")


def test_operator_view_counts_a_shoppers_events(new_tab, catalog) -> None:
    """Counters and sparklines move while another context sends events."""
    ops = new_tab()
    ops.login("staff", next_path="/ops/")
    page = ops.page
    expect(page.locator("[data-testid='connection']")).to_have_attribute(
        "data-state", "live"
    )
    page.wait_for_function(
        "() => Number(document.getElementById('ops').dataset.updates) >= 1"
    )
    updates_before = int(page.locator("#ops").get_attribute("data-updates"))
    connections_before = metric_value(page, "connections")

    shopper = new_tab()
    shopper.login("shopper")
    shopper_page = shopper.page
    expect(shopper_page.locator("[data-testid='connection']")).to_have_attribute(
        "data-state", "live"
    )
    for title in ["Quiet Storm Headphones", "Featherlight Tent", "Cooking for Two"]:
        shopper_page.click(
            f"[data-testid='catalog'] [data-item-id='{catalog.items[title]}']"
        )
        expect(shopper_page.locator("dialog#detail")).to_be_visible()
        shopper_page.keyboard.press("Escape")
    expect(
        shopper_page.locator("[data-region='activity'] li[data-state='saved']")
    ).to_have_count(3)

    # The shopper's two sockets show up, events per second rises, and the
    # latency figures are those of real pushes.
    page.wait_for_function(
        "n => Number(document.querySelector(\"[data-metric='connections']\").dataset.value) >= n + 2",
        arg=connections_before,
    )
    page.wait_for_function(
        "() => Number(document.querySelector(\"[data-metric='events_per_sec']\").dataset.value) > 0"
    )
    page.wait_for_function(
        "() => Number(document.querySelector(\"[data-metric='push_p50_ms']\").dataset.value) > 0"
    )
    assert int(page.locator("#ops").get_attribute("data-updates")) > updates_before
    # Each chart drew a line from the samples it has seen.
    points = page.locator("[data-metric='events_per_sec'] polyline").get_attribute(
        "points"
    )
    assert points and len(points.split()) >= 2
    ops.screenshot("06-operator-view")
