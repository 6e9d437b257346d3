"""report.html opened in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium):
the tables are there, every plot loaded, the console has no errors, the timeline is drawn for a sample
and its clip is playable. `make test` installs the browser and sets AMUSE_REQUIRE_BROWSER=1, so there
the test cannot skip."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        msg = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; `make test` does)"
        if os.environ.get("AMUSE_REQUIRE_BROWSER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--allow-file-access-from-files", "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def test_report_html_renders_in_chromium(browser, evaluated_run):
    from selenium.webdriver.common.by import By

    path = evaluated_run["html report"]
    browser.get("file://" + path)
    deadline = time.time() + 10  # images and media metadata load asynchronously
    while time.time() < deadline and not browser.execute_script(
            "return document.readyState === 'complete' && [...document.images].every(i => i.complete)"
            " && document.getElementById('clip-media').readyState >= 1"):
        time.sleep(0.1)

    # tables: per model a task x mode table and a details table, plus the published reference
    models = {r["model"] for r in evaluated_run["rows"]}
    tables = browser.find_elements(By.CSS_SELECTOR, "#tables table")
    assert len(tables) == 2 * len(models)
    text = browser.find_element(By.ID, "tables").text
    for task in {r["task"] for r in evaluated_run["rows"]}:
        assert task in text
    # every plot decoded into a real image
    sizes = browser.execute_script("return [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(sizes) >= 6 and all(w > 0 for _, w in sizes), sizes
    # the timeline: reference and predicted turns drawn, and the clip's media loaded beside it
    rects = browser.execute_script(
        "return [...document.querySelectorAll('#timeline-svg rect.turn')].map(r => [r.classList[1], r.getBBox().width])")
    kinds = {k for k, w in rects if w > 0}
    assert kinds == {"reference", "predicted"}, rects
    media = browser.execute_script("var m = document.getElementById('clip-media'); "
                                   "return [m.tagName, m.readyState, m.duration, m.error && m.error.code]")
    assert media[0] == "AUDIO" and media[1] >= 1 and media[2] > 0 and media[3] is None, media
    # clicking a turn seeks the clip there (the page's own script, so a broken script shows up here)
    first = browser.find_element(By.CSS_SELECTOR, "#timeline-svg rect.turn")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", first)
    assert abs(browser.execute_script("return document.getElementById('clip-media').currentTime")
               - float(first.get_attribute("data-start"))) < 0.5
    # one trace per agentic answer, with the plan, the tool calls' arguments and results, and the answer
    agentic = [r for r in evaluated_run["rows"] if r["mode"] == "agentic"]
    traces = browser.find_elements(By.CSS_SELECTOR, "#traces details.trace")
    assert len(traces) == len(agentic)
    with_calls = next(r for r in agentic if json.loads(r["trace"])["act"])
    call = json.loads(with_calls["trace"])["act"][0]
    html = browser.find_element(By.ID, "traces").get_attribute("innerHTML")
    assert json.loads(with_calls["trace"])["plan"] in html and call["tool"] in html
    assert browser.find_elements(By.CSS_SELECTOR, "#traces .call pre")
    # no console errors (SEVERE: script errors, failed loads)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
