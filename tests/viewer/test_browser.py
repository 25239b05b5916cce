"""The viewer of the embedded sample in a real headless browser (Debian's chromium + chromedriver,
driven by selenium; installed by scripts/setup.sh). The tests start and stop the browser themselves.

Cost: `uvd dataset` on the sample, viewer included, runs once per session (sample_viewer fixture,
~1 min on 2 cores, or reused from $UVD_SAMPLE_DATASET); the browser checks take ~8 s more. The
overview's screenshot is written to $UVD_TEST_ARTIFACTS (default out/test-artifacts/) as
viewer-overview.png.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.viewer.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # the first test pays the sample build
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the uvd[test] extra)"
    if not CHROMIUM or not CHROMEDRIVER:
        return "chromium and chromium-driver are not installed (scripts/apt-packages.txt)"
    return None


@pytest.fixture(scope="module")
def browser():
    why = _missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"{why}: CI must run the browser tests; run scripts/setup.sh")
        pytest.skip(f"{why}; run scripts/setup.sh")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(driver, site: Path, page: str) -> None:
    driver.get((site / page).as_uri())


def _errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def test_every_page_loads_without_console_errors(browser, sample_viewer):
    site = sample_viewer["site"]
    pages = ["index.html", "failures.html"] + sorted(p.name for p in site.glob("source-*.html"))
    assert len(pages) > 10
    for page in pages:
        _open(browser, site, page)
        assert browser.find_element("css selector", "main h1").text
        assert _errors(browser) == [], page


def test_overview_shows_every_source_and_is_screenshotted(browser, sample_viewer):
    site = sample_viewer["site"]
    _open(browser, site, "index.html")
    expected = {r["source"] for r in sample_viewer["summary"]["totals"]["by_source"]}
    cards = browser.find_elements("css selector", '[data-testid="sources"] a.src')
    assert {c.get_attribute("data-source") for c in cards} == expected
    for c in cards:  # every source shows its first decoded sentences
        assert c.find_elements("css selector", "img"), c.get_attribute("data-source")
    thumbs = browser.find_elements("css selector", '[data-testid="sources"] img')
    assert all(
        browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", t) for t in thumbs
    )
    for chart in ("chart-sentences", "chart-tokens", "chart-lengths", "chart-codes"):
        assert browser.find_element("css selector", f'[data-testid="{chart}"] svg, [data-testid="{chart}"] p')
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(height, 1900))
    out = Path(os.environ.get("UVD_TEST_ARTIFACTS", ROOT / "out" / "test-artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(out / "viewer-overview.png"))
    assert (out / "viewer-overview.png").stat().st_size > 50_000
    browser.set_window_size(1400, 1000)


def test_a_source_page_pages_through_its_sentences(browser, sample_viewer):
    site = sample_viewer["site"]
    _open(browser, site, "source-laion.html")  # 20 laion sentences, 10 decoded (the manifest's viewer), 8 a page

    def shown() -> list[str]:
        return [li.get_attribute("data-id") for li in browser.find_elements("css selector", "li.sentence")]

    label = browser.find_element("css selector", '[data-testid="page-label"]')
    prev, nxt = browser.find_elements("css selector", '[data-testid="pager"] button')
    first = shown()
    assert label.text == "page 1 of 2" and len(first) == 8 and not prev.is_enabled()
    nxt.click()
    second = shown()
    assert label.text == "page 2 of 2" and len(second) == 2 and not nxt.is_enabled()
    assert not set(first) & set(second)
    imgs = browser.find_elements("css selector", "li.sentence img.strip")
    assert len(imgs) == 2 and all(browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in imgs)
    prev.click()
    assert shown() == first


def test_failures_filter_narrows_rows_to_the_chosen_reason(browser, sample_viewer):
    from selenium.webdriver.support.ui import Select, WebDriverWait

    site = sample_viewer["site"]
    counts = {}
    for c in sample_viewer["summary"]["failures"]:
        counts[c["reason"]] = counts.get(c["reason"], 0) + c["count"]
    _open(browser, site, "failures.html")
    wait = WebDriverWait(browser, 10)

    def rows():
        return browser.find_elements("css selector", '[data-testid="failures"] tbody tr')

    wait.until(lambda d: len(rows()) == min(sum(counts.values()), 50))
    assert len({r.get_attribute("data-reason") for r in rows()}) > 3
    Select(browser.find_element("css selector", '[data-testid="filter-reason"]')).select_by_value("class_too_small")
    wait.until(lambda d: {r.get_attribute("data-reason") for r in rows()} == {"class_too_small"})
    assert len(rows()) == counts["class_too_small"]
    assert browser.find_element("css selector", '[data-testid="failure-count"]').text.startswith(
        f"{counts['class_too_small']} rows"
    )
    inputs = browser.find_elements("css selector", '[data-testid="failures"] td.input img')
    # Rows whose record id resolves to a file on disk show it (ids became relative paths in issue 15;
    # resolving them against the stage's input root is an open follow-up).
    assert len(inputs) <= counts["class_too_small"]
    assert all(browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in inputs)
    assert "reason=class_too_small" in browser.current_url
    browser.find_element("css selector", '[data-act="clear"]').click()
    wait.until(lambda d: len({r.get_attribute("data-reason") for r in rows()}) > 3)
    assert _errors(browser) == []
