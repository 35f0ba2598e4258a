"""The status page in a real browser: what people see, at phone and desk widths, light and dark."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_site import CHROMIUM, HOSTILE_TITLE, HOSTILE_UPDATE, OUT, Site
from playwright.sync_api import Browser, Page, sync_playwright

VIEWS = [(width, scheme) for width in (360, 1280) for scheme in ("light", "dark")]
SERIOUS = ("critical", "serious")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking"])
        yield launched
        launched.close()


class Visit:
    """One page load, with everything the browser complained about or tried to fetch."""

    def __init__(self, browser: Browser, site: Site, width: int, scheme: str) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900},
                                           color_scheme=scheme)  # type: ignore[arg-type]
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(site.url + "/", wait_until="load")

    def close(self) -> None:
        self.context.close()


@pytest.mark.parametrize(("width", "scheme"), VIEWS, ids=[f"{w}px-{s}" for w, s in VIEWS])
def test_the_page_shows_agreements_bars_and_the_incident(browser: Browser, site: Site,
                                                        width: int, scheme: str) -> None:
    visit = Visit(browser, site, width, scheme)
    page = visit.page
    try:
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT / f"status-{width}-{scheme}.png"), full_page=True)
        agreements = page.locator("article.agreement")
        assert agreements.count() == 3  # shop, search, playground; never the ledger
        for index in range(agreements.count()):
            assert agreements.nth(index).locator(".bars .bar").count() == 90
        assert "ledger" not in page.content().lower()
        assert page.get_by_role("heading", level=1).inner_text().endswith("Service outage")
        assert page.locator(".tag", has_text="sandbox").is_visible()
        outage = page.locator("#history .incident", has_text="Demo Shop is down")
        assert outage.is_visible()
        assert outage.locator(".updates li").first.is_visible()

        # A person's markup shows as text and does not run.
        assert page.get_by_text(HOSTILE_TITLE, exact=True).first.is_visible()
        assert page.get_by_text(HOSTILE_UPDATE, exact=True).first.is_visible()
        assert page.evaluate("window.pwned") is None
        assert page.locator("main img, main script").count() == 0
        assert visit.dialogs == []

        assert visit.errors == []
        outside = [u for u in visit.requests if urlsplit(u).hostname != "127.0.0.1"]
        assert outside == []
        # Nothing wider than the screen: long and non-Latin names wrap.
        assert page.evaluate("document.documentElement.scrollWidth") <= width

        results = Axe().run(page)
        serious = [f"{v['id']} ({v['impact']}): {v['help']}" for v in results.response["violations"]
                   if v["impact"] in SERIOUS]
        assert serious == []
    finally:
        visit.close()


def test_the_page_reads_without_javascript(browser: Browser, site: Site) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(site.url + "/")
        assert page.locator(".bars .bar").count() == 270
        assert page.locator("#history .incident").count() >= 2
    finally:
        context.close()
