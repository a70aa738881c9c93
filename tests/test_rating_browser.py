"""The rating page in a real browser (Debian's chromium, driven by Selenium through its chromedriver).

One rater rates every item with the keyboard, the server is killed (SIGKILL) half way and restarted, the
rater continues where they stopped; a second rater uses the mouse. Then the `rating` stage's output from
the page's answers must equal its output from the same answers written as filled sheets. On the way:
nothing the browser sends or receives names a model, hostile replies render as text, and the hidden
repeats give the self-agreement the rater actually showed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from rating_project import FORMULA, HOSTILE, MIXED, MODEL_WORDS, chromium, hiwar, make_project, run_stage, serve

if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium and chromium-driver (.ci/run installs them)")
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CRITERIA = ["fluency", "relevance", "helpfulness"]


def huda_scores(reply: str, change: bool = False) -> list[int]:
    """Huda's answers follow the reply's length; on the first hidden repeat she meets she changes her
    fluency score by one, so her self-agreement is known in advance."""
    base = [1 + len(reply) % 5, 1 + (len(reply) // 5) % 5, 5 if len(reply) > 40 else 4]
    if change:
        base[0] = base[0] + 1 if base[0] < 5 else 4
    return base


def omar_scores(reply: str) -> list[int]:
    return [4 if len(reply) > 30 else 5, 5, 4 + len(reply) % 2]


class Traffic:
    """Every request and response of the browser, read from chromium's performance log (DevTools events)."""

    def __init__(self, driver):
        self.driver, self.seen, self.texts, self.bodies, self.missed, self.methods = driver, set(), [], 0, 0, {}

    def drain(self):
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                request = params["request"]
                self.methods[params["requestId"]] = request["method"]
                self.texts.append(request["url"] + json.dumps(request.get("headers", {})) + request.get("postData", ""))
            elif message["method"] == "Network.responseReceived" and params["requestId"] not in self.seen:
                self.seen.add(params["requestId"])
                response = params["response"]
                self.texts.append(response["url"] + json.dumps(response.get("headers", {})))
                if not response["url"].startswith("http://127.0.0.1") or 300 <= response["status"] < 400:
                    continue  # chromium's own pages, or a redirect (no body; its Location header is checked above)
                try:
                    body = self.driver.execute_cdp_cmd("Network.getResponseBody", {"requestId": params["requestId"]})
                    self.texts.append(body["body"])
                except WebDriverException:
                    # chromium already dropped it (the page moved on): a GET is fetched again, as the browser did
                    if self.methods.get(params["requestId"]) != "GET":
                        self.missed += 1
                        continue
                    with urllib.request.urlopen(response["url"]) as again:
                        self.texts.append(again.read().decode("utf-8"))
                self.bodies += 1

    def leaks(self) -> list[str]:
        return [w for w in MODEL_WORDS for t in self.texts if w.lower() in t.lower()]


def wait_for(driver, condition, timeout=60):  # generous: CI machines are shared
    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def on_page(driver, n):
    wait_for(driver, lambda d: d.find_elements(By.ID, "position")
             and d.find_element(By.ID, "position").text.startswith(f"{n} "))


def rate_with_keyboard(driver, traffic, answered_replies, stop_after=None):
    """Rate from the current page on: three digits, then Enter. Returns the last position rated."""
    while True:
        if driver.find_elements(By.ID, "finished"):
            traffic.drain()
            return None
        n = int(driver.find_element(By.ID, "position").text.split()[0])
        reply = driver.find_element(By.CSS_SELECTOR, ".replies .text").text
        before = driver.find_element(By.ID, "answered").text
        first_repeat = reply in answered_replies and all(len(v) == 1 for v in answered_replies.values())
        scores = huda_scores(reply, change=first_repeat)
        body = driver.find_element(By.TAG_NAME, "body")
        for score in scores:
            body.send_keys(str(score))
        wait_for(driver, lambda d: d.find_element(By.ID, "status").text == "حُفظ"
                 and d.find_element(By.ID, "answered").text != before
                 and len(d.find_elements(By.CSS_SELECTOR, "input:checked")) == 3)
        traffic.drain()
        answered_replies.setdefault(reply, []).append(scores)
        if n == stop_after:
            return n
        body.send_keys("\n")
        wait_for(driver, lambda d: d.find_elements(By.ID, "finished")
                 or d.find_element(By.ID, "position").text.split()[0] != str(n))


def test_rate_kill_resume_and_stage_matches_sheets(tmp_path):
    project = make_project(tmp_path / "project", sample=4, repeat_share=0.2)
    assert hiwar(project, "rate", "export").returncode == 0
    items = {json.loads(line)["reply"]: json.loads(line)["item"]
             for line in (project / "ratings/items.jsonl").read_text(encoding="utf-8").splitlines()}
    server, addresses = serve(project, "huda", "omar")
    driver = chromium(tmp_path / "browser")
    traffic = Traffic(driver)
    huda = {}
    try:
        driver.get(addresses["huda"])
        on_page(driver, 1)
        total = int(driver.find_element(By.ID, "position").text.split()[-1])
        assert total == 16 + 3  # 4 turns x 4 replies, and 20% of them again
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("dir") == "rtl"
        half = rate_with_keyboard(driver, traffic, huda, stop_after=total // 2)

        server.send_signal(signal.SIGKILL)  # no chance to flush anything
        server.wait()
        server, again = serve(project, "huda", "omar")
        path = lambda url: url.split("/", 3)[3]  # noqa: E731 (a fresh port, the same /r/<token>/)
        assert {k: path(v) for k, v in again.items()} == {k: path(v) for k, v in addresses.items()}
        addresses = again
        driver.get(addresses["huda"])  # the address without a position: continue where she stopped
        on_page(driver, half + 1)
        assert driver.find_element(By.ID, "answered").text == str(half)
        rate_with_keyboard(driver, traffic, huda)
        assert "19 من 19" in driver.find_element(By.ID, "finished").text

        # Omar, in the same browser, with the mouse; he sees none of Huda's answers.
        driver.get(addresses["omar"])
        on_page(driver, 1)
        assert driver.find_elements(By.CSS_SELECTOR, "input:checked") == []
        omar = {}
        for n in range(1, total + 1):
            on_page(driver, n)
            reply = driver.find_element(By.CSS_SELECTOR, ".replies .text").text
            if reply == HOSTILE:
                # shown literally: the text is the markup itself, no element was made from it, nothing ran
                assert driver.find_elements(By.CSS_SELECTOR, ".replies b, .replies script") == []
                assert driver.title != "pwned"
            before = driver.find_element(By.ID, "answered").text
            for criterion, score in zip(CRITERIA, omar_scores(reply)):
                driver.find_element(By.CSS_SELECTOR, f"input[name={criterion}][value='{score}']").click()
            # all three stored (the count of finished items moves only with the last one)
            wait_for(driver, lambda d: d.find_element(By.ID, "status").text == "حُفظ"
                     and d.find_element(By.ID, "answered").text != before
                     and len(d.find_elements(By.CSS_SELECTOR, "input:checked")) == 3)
            traffic.drain()
            omar.setdefault(reply, []).append(omar_scores(reply))
            driver.find_element(By.ID, "next").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "finished"))
        traffic.drain()
    finally:
        driver.quit()
        server.kill()
        server.wait()

    assert {HOSTILE, FORMULA, MIXED} <= set(huda)  # the hostile replies were on the pages rated
    assert traffic.bodies > 3 * total and traffic.missed < traffic.bodies / 10, (traffic.bodies, traffic.missed)
    assert traffic.leaks() == []  # blinding: nothing the browser saw names a model
    assert run_stage(project).returncode == 0
    from_page = (project / "metrics/rating.json").read_text(encoding="utf-8")
    quality = json.loads((project / "metrics/rating_quality.json").read_text(encoding="utf-8"))
    repeats = sum(len(v) - 1 for v in huda.values())
    assert repeats == 3
    assert quality["raters"]["huda"]["source"] == "page"
    # 3 repeats x 3 criteria answered twice; one fluency answer changed by one point
    assert quality["raters"]["huda"]["self_agreement"] == {
        "pairs": 9, "identical_share": round(8 / 9, 4), "mean_abs_difference": round(1 / 9, 4)}
    assert quality["raters"]["omar"]["self_agreement"]["identical_share"] == 1.0

    # The same first answers, written as filled sheets, give the same stage output.
    shutil.move(project / "ratings/answers.sqlite", tmp_path / "answers.sqlite")
    sheet = pd.read_csv(project / "ratings/sheet.csv", dtype=str, keep_default_na=False)
    for rater, answers in (("huda", huda), ("omar", omar)):
        first = {items[reply]: scores[0] for reply, scores in answers.items()}
        filled = sheet.copy()
        for i, criterion in enumerate(CRITERIA):
            filled[criterion] = [str(first[item][i]) for item in filled["item"]]
        (project / "ratings/filled").mkdir(exist_ok=True)
        filled.to_csv(project / f"ratings/filled/{rater}.csv", index=False)
    assert run_stage(project).returncode == 0
    assert (project / "metrics/rating.json").read_text(encoding="utf-8") == from_page
    assert json.loads(from_page)["status"] == "rated"


def test_screenshot_shows_rtl_with_a_latin_brand(tmp_path):
    """The page in the browser: right to left, the Latin brand name kept in one left-to-right run."""
    project = make_project(tmp_path / "project", sample=4, repeat_share=0.0)
    assert hiwar(project, "rate", "export").returncode == 0
    server, addresses = serve(project, "huda")
    driver = chromium(tmp_path / "browser")
    try:
        for n in range(1, 17):
            driver.get(addresses["huda"] + str(n))
            on_page(driver, n)
            if driver.find_element(By.CSS_SELECTOR, ".replies .text").text == MIXED:
                break
        reply = driver.find_element(By.CSS_SELECTOR, ".replies .text")
        assert reply.get_attribute("dir") == "auto"
        # computed direction of the reply is rtl (it starts with Arabic); the page is rtl
        assert driver.execute_script("return getComputedStyle(arguments[0]).direction", reply) == "rtl"
        # The brand name's words sit left to right on screen, in reading order: "Samsung" left of "Galaxy".
        boxes = driver.execute_script("""
            const node = arguments[0].firstChild, text = node.textContent, range = document.createRange();
            return ["Samsung", "Galaxy", "S24", "أنصحك"].map(word => {
                const at = text.indexOf(word); range.setStart(node, at); range.setEnd(node, at + word.length);
                return range.getBoundingClientRect().left; });""", reply)
        assert boxes[0] < boxes[1] < boxes[2] < boxes[3]  # Latin run LTR inside, Arabic opening at the right
        shot = tmp_path / "rating-page.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        driver.quit()
        server.kill()
        server.wait()
