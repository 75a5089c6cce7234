"""Take the README's screenshots from a running demo (``make demo``).

Logs in as the demo's shopper, opens a few items so the recommendations show
reasons and change badges, and captures the dashboard; captures the operator
view as staff; and the dashboard at phone width as an anonymous visitor.
Writes docs/screenshot-dashboard.png, docs/screenshot-ops.png and
docs/screenshot-phone.png.

Usage: ``.venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8000]``
(needs the dev requirements: playwright and Chromium, as for ``make test``).
"""

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The accounts `seed_demo --accounts` creates (README, "Two commands").
SHOPPER = ("shopper", "recsite-shopper")
STAFF = ("staff", "recsite-staff")
# As the end-to-end tests run Debian's chromium (as root, in containers too).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def login(page: Page, url: str, account: tuple[str, str], next_path: str) -> None:
    """Log in through the site's login form."""
    page.goto(f"{url}/accounts/login/?next={next_path}")
    page.fill("#id_username", account[0])
    page.fill("#id_password", account[1])
    with page.expect_navigation():
        page.click("form button[type=submit]")


def wait_live(page: Page) -> None:
    """Wait for the grid, a live connection and a first list of recommendations."""
    expect(page.locator("[data-testid='catalog'] [data-item-id]").first).to_be_visible()
    expect(page.locator("[data-testid='connection']")).to_have_attribute(
        "data-state", "live", timeout=15000
    )


def dashboard(page: Page, url: str) -> None:
    """The shopper's dashboard after three opened items, the last one open."""
    login(page, url, SHOPPER, "/")
    wait_live(page)
    cards = page.locator("[data-testid='catalog'] [data-item-id]")
    recs = page.locator("[data-testid='recommendations']")
    for index in (0, 1, 4):
        version = recs.get_attribute("data-version") or "-1"
        cards.nth(index).click()
        page.wait_for_function(
            "([v]) => Number(document.querySelector(\"[data-testid='recommendations']\")"
            ".dataset.version) > Number(v)",
            arg=[version],
            timeout=15000,
        )
        if index != 4:
            page.keyboard.press("Escape")
    page.wait_for_timeout(1200)  # past the panel's animations
    page.screenshot(path=str(DOCS / "screenshot-dashboard.png"))


def operations_open(page: Page, url: str) -> None:
    """Open the operator view as staff and wait for its first figures."""
    login(page, url, STAFF, "/ops/")
    page.wait_for_function(
        "() => Number(document.getElementById('ops').dataset.updates) >= 1",
        timeout=30000,
    )


def operations_capture(page: Page) -> None:
    """Capture the operator view once it has seen the shopper's events."""
    page.wait_for_timeout(2500)
    page.screenshot(path=str(DOCS / "screenshot-ops.png"), full_page=True)


def phone(page: Page, url: str) -> None:
    """The dashboard at phone width for an anonymous visitor."""
    page.goto(f"{url}/")
    wait_live(page)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(DOCS / "screenshot-phone.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    url = parser.parse_args().url.rstrip("/")
    chromium = shutil.which("chromium")
    with sync_playwright() as p:
        browser = (
            p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            if chromium
            else p.chromium.launch(args=CHROMIUM_ARGS)
        )
        desktop = {"viewport": {"width": 1280, "height": 860}, "device_scale_factor": 1}
        # The operator view watches while the shopper browses.
        ops = browser.new_context(**desktop).new_page()
        operations_open(ops, url)
        dashboard(browser.new_context(**desktop).new_page(), url)
        operations_capture(ops)
        mobile = {
            "viewport": {"width": 390, "height": 844},
            "device_scale_factor": 2,
            "is_mobile": True,
            "has_touch": True,
        }
        phone(browser.new_context(**mobile).new_page(), url)
        browser.close()
    for name in ("dashboard", "ops", "phone"):
        print(DOCS / f"screenshot-{name}.png")


if __name__ == "__main__":
    main()
