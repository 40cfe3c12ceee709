"""The status page in a real headless browser: Debian's chromium driven by Selenium through
Debian's chromedriver (both given by path, so Selenium Manager never runs or downloads a browser;
CI installs the chromium and chromium-driver packages)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.statuspage import FEED_TOKEN, HOSTILE_REASON, served

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_a_person_reads_the_status_and_settles_a_conflict_in_a_browser(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    with served(tmp_path / "syncd") as page:
        browser.get(page.url)
        assert browser.title == "syncd status"
        # the facts, as a person sees them
        ada = browser.find_element(By.ID, "source-ada").text
        assert "ok" in ada and re.search(r"Did \d+ create", ada) and f"Open conflicts {page.conflict}" in ada
        grace = browser.find_element(By.ID, "source-grace").text
        assert "failing items 1 item(s) failed" in grace and HOSTILE_REASON in grace  # shown as text
        assert browser.find_element(By.ID, "kizen").text.startswith("State ok")
        feed = browser.find_element(By.CSS_SELECTOR, "#feed-team a")
        assert feed.get_attribute("href") == f"{page.base}/feeds/{FEED_TOKEN}.ics"
        # settle the conflict with its button: the page comes back saying so, without it
        row = browser.find_element(By.ID, f"conflict-{page.conflict}")
        assert "2026-12-01T09:00:00Z" in row.text and "2026-12-02T09:00:00Z" in row.text
        row.find_element(By.CSS_SELECTOR, 'button[value="calendar"]').click()
        notice = WebDriverWait(browser, 10).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".notice"))
        )
        assert notice.text == f"Conflict {page.conflict} settled: the calendar value is kept at the next sync."
        assert not browser.find_elements(By.ID, f"conflict-{page.conflict}")
        assert "Open conflicts (0)" in browser.find_element(By.ID, "conflicts").text
        assert page.keep_of(page.conflict) == ("resolved", "calendar")
