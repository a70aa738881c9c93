"""reports/compare/index.html opened from disk in Debian's headless Chromium (never a downloaded browser):
no console errors, no network request, the Arabic laid out right to left. .ci/run installs chromium and
chromium-driver when they are missing."""

import json
import shutil
from pathlib import Path

import pytest

from hiwar.compare import write_comparison

from test_compare import PATTERNS, no_files, replies_of

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def requests(driver) -> list[str]:
    """URLs of every request the page made, from the DevTools performance log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_the_page_opens_from_a_file_with_no_errors_no_network_and_arabic_right_to_left(browser, tmp_path, root):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    exp_show = json.loads((root / "tests/fixtures/exp_show.json").read_text(encoding="utf-8"))
    write_comparison(exp_show, tmp_path / "out", PATTERNS, reader=replies_of, read_file=no_files)
    page = tmp_path / "out/index.html"
    requests(browser)  # drain what the browser itself loaded before the page (its new-tab page)
    browser.get(page.as_uri())
    WebDriverWait(browser, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")

    assert browser.title == "hiwar: experiments compared"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    fetched = [u for u in requests(browser) if not u.startswith(("file:", "data:"))]
    assert fetched == []

    table = browser.find_element(By.ID, "compare-table")
    assert [th.text for th in table.find_elements(By.TAG_NAME, "th")][:4] == \
        ["experiment", "kind", "train.lr", "train.layers"]
    chart = browser.find_element(By.CSS_SELECTOR, "img.chart")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", chart) > 300

    turns = browser.find_elements(By.CSS_SELECTOR, "section.turn")
    assert len(turns) == 4
    for element in turns + browser.find_elements(By.CSS_SELECTOR, "section.turn .reply p"):
        assert browser.execute_script("return getComputedStyle(arguments[0]).direction", element) == "rtl"
    reference, first = turns[0].find_elements(By.CSS_SELECTOR, ".reply")[:2]
    assert reference.location["x"] > first.location["x"]  # the reference on the right, replies to its left
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 10_000
