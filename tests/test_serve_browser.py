"""The playground of `rnnkit serve` in a real headless browser (Chromium through Selenium), against uvicorn on an
ephemeral port of 127.0.0.1.

Typing a prime and pressing Generate streams the text into the page token by token (the page changes once per
token) and ends with exactly the server's JSON answer for the same seed; a sentence gets its class (the best bar is
the server's label) or its tags under its tokens; a series gets its forecast table; a bad prime shows the server's
one-line error. The API page renders every endpoint from /openapi.json. Neither page requests anything from
another host, and the browser logs no error.

Needs Debian's chromium and chromium-driver (`apt-get install -y chromium chromium-driver`) and the selenium
package (`pip install selenium`); without them the tests skip and say so.
"""

import json
import time

import httpx
import pytest

from rnnkit.serve import Limits, create_app
from headless_browser import headless_chromium
from test_serve import LiveServer, series, train_tiny_runs


@pytest.fixture(scope="module")
def browser():
    with headless_chromium(width=1200) as driver:
        yield driver


@pytest.fixture(scope="module")
def served(tmp_path_factory, browser):
    runs = train_tiny_runs(tmp_path_factory.mktemp("playground-runs"), ("lm", "classify", "tag", "forecast"))
    app = create_app([runs[task] for task in ("lm", "classify", "tag", "forecast")],
                     limits=Limits(max_tokens=500, max_concurrent=2, threads=1))
    with LiveServer(app) as url:
        yield url, runs


def wait(driver, script: str, seconds: float = 20):
    """The value of ``script`` once it is truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {seconds} s for: {script}; browser log: {driver.get_log('browser')}")


def open_page(driver, url: str, ready: str):
    driver.get_log("browser")  # drop what earlier pages left
    driver.get_log("performance")
    driver.get(url)
    wait(driver, f"return window.{ready} === true")


def card(driver, task: str):
    return driver.find_element("css selector", f'section[data-task="{task}"]')


def fill(section, name: str, text: str) -> None:
    field = section.find_element("css selector", f'[name="{name}"]')
    field.clear()
    field.send_keys(text)


def run_card(driver, section) -> str:
    section.find_element("css selector", "button.run").click()
    task = section.get_attribute("data-task")
    return wait(driver, f'const s = document.querySelector(\'section[data-task="{task}"]\').dataset.state; '
                        'return s === "done" || s === "error" ? s : null')


def requested_hosts(driver) -> set[str]:
    """The hosts of every request the page made (Chromium's performance log)."""
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            hosts.add(url.split("/")[2] if "://" in url else url.split(":")[0])
    return hosts


def severe(driver) -> list:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_typing_a_prime_streams_the_text_token_by_token(browser, served):
    url, _ = served
    open_page(browser, url + "/", "playgroundReady")
    section = card(browser, "lm")
    fill(section, "prime", "def")
    fill(section, "length", "120")
    fill(section, "seed", "7")
    fill(section, "temperature", "0.9")
    # Count the page's changes to the generated text: a stream changes it once per token, a single answer once.
    browser.execute_script("""
        window.changes = 0;
        new MutationObserver(() => window.changes++).observe(
            document.querySelector('section[data-task="lm"] .output'), {subtree: true, childList: true,
                                                                        characterData: true});""")
    assert run_card(browser, section) == "done"
    shown = browser.execute_script("return arguments[0].textContent",
                                   section.find_element("css selector", ".generated"))
    expected = httpx.post(url + "/generate", json={"prime": "def", "length": 120, "seed": 7, "temperature": 0.9})
    assert shown == expected.json()["text"] and len(shown) == 120
    assert section.find_element("css selector", ".prime").text == "def"
    assert browser.execute_script("return window.changes") >= 60
    assert requested_hosts(browser) == {url.split("/")[2]}
    assert severe(browser) == []


def test_a_sentence_gets_its_class_and_its_tags(browser, served):
    url, _ = served
    open_page(browser, url + "/", "playgroundReady")
    section = card(browser, "classify")
    fill(section, "text", "the film was great")
    assert run_card(browser, section) == "done"
    best = section.find_element("css selector", ".bar.best").get_attribute("data-label")
    answer = httpx.post(url + "/classify", json={"text": "the film was great"}).json()["predictions"][0]
    assert best == answer["label"]
    assert len(section.find_elements("css selector", ".bar")) == len(answer["probabilities"])

    section = card(browser, "tag")
    fill(section, "sentence", "the cat sees a dog .")
    assert run_card(browser, section) == "done"
    pairs = [(token.find_element("css selector", ".word").text, token.find_element("css selector", ".tag").text)
             for token in section.find_elements("css selector", ".token")]
    answer = httpx.post(url + "/tag", json={"sentence": "the cat sees a dog ."}).json()["predictions"][0]
    assert pairs == list(zip(answer["tokens"], answer["tags"]))
    assert severe(browser) == []


def test_a_series_gets_its_forecast_and_a_bad_prime_its_error(browser, served):
    url, runs = served
    open_page(browser, url + "/", "playgroundReady")
    columns, dates, _ = series(runs)
    section = card(browser, "forecast")
    fill(section, "series.value", ", ".join(map(str, columns["value"])))
    fill(section, "dates", " ".join(dates))
    assert run_card(browser, section) == "done"
    rows = section.find_elements("css selector", "table.forecast tr")
    answer = httpx.post(url + "/forecast", json={"series": columns, "dates": dates}).json()["forecast"]
    assert [row.text.split()[0] for row in rows[1:]] == [item["date"] for item in answer]

    section = card(browser, "lm")
    fill(section, "prime", "∑ is not in the vocabulary")
    assert run_card(browser, section) == "error"
    error = section.find_element("css selector", ".error").text
    assert error.startswith("400: ") and "not in the vocabulary" in error and "\n" not in error


def test_the_api_page_renders_every_endpoint_offline(browser, served):
    url, _ = served
    open_page(browser, url + "/docs", "apiReady")
    paths = browser.execute_script(
        "return Array.from(document.querySelectorAll('section[data-path]')).map(s => s.dataset.path)")
    assert {"/generate", "/classify", "/tag", "/forecast", "/models", "/health"} <= set(paths)
    generate = browser.find_element("css selector", 'section[data-path="/generate"]').text
    assert "prime" in generate and "temperature" in generate and "stream" in generate
    assert requested_hosts(browser) == {url.split("/")[2]}
    assert severe(browser) == []
