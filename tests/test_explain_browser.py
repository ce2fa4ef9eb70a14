"""The page of `rnnkit explain` in a real headless browser (Chromium through Selenium): it loads without console
errors, shows the text exactly (a `</script>` in it included), the unit picker and the ranking panel recolour
the text, and hovering a character shows the model's top-5 predictions.

Needs Debian's chromium and chromium-driver (`apt-get install -y chromium chromium-driver`) and the selenium
package (`pip install selenium`); without them the tests skip and say so.
"""

import json
import re
import shutil

import pytest

from rnnkit.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

CHROMIUM = next((path for path in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if path), None)
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL = "install it with: apt-get install -y chromium chromium-driver (Debian) and pip install selenium"

TRAIN_TEXT = "".join(f"def f{i}(x):\n    s = '</script> & <b>'\n    return [x, (s, {i % 7})]\n\n" for i in range(30))
PROBE = "def f(x):\n    s = '</script> & <b>'\n    return [x, (s, 3)]  # é\n"
UNKNOWN = PROBE.index("é")


@pytest.fixture(scope="module")
def browser():
    selenium = pytest.importorskip("selenium", reason=f"the selenium package is not installed; {INSTALL}")
    del selenium
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(f"no headless browser: chromium or chromedriver is not installed; {INSTALL}")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    (root / "train.txt").write_text(TRAIN_TEXT)
    (root / "probe.py").write_text(PROBE)
    for argv in (["train", "lm", "--data", str(root / "train.txt"), "--layers", "2", "--hidden", "8", "--seq-len", "10",
                  "--batch-size", "4", "--max-steps", "5", "--seed", "0", "--quiet", "--out", str(root / "run")],
                 ["explain", str(root / "run"), "--text", str(root / "probe.py"), "--out", str(root / "page.html"),
                  "--layer", "0", "--state", "hidden", "--unit", "0"]):
        try:
            main(argv)
        except SystemExit as exit:
            assert exit.code in (0, None)
    return root / "page.html"


@pytest.fixture
def loaded(browser, page):
    browser.get_log("browser")  # drop what earlier tests left
    browser.get(page.as_uri())
    return browser


def colours(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#text .p')).map(e => getComputedStyle(e).backgroundColor)")


def page_data(page) -> dict:
    match = re.search(r'<script type="application/json" id="rnnkit-data">(.*?)</script>', page.read_text(), re.S)
    return json.loads(match.group(1))


def test_page_loads_without_console_errors_and_shows_the_text(loaded):
    errors = [entry for entry in loaded.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    assert loaded.execute_script("return document.getElementById('text').textContent") == PROBE
    spans = loaded.find_elements("css selector", "#text .p")
    assert len(spans) == len(PROBE)
    assert "not-fed" in spans[UNKNOWN].get_attribute("class")  # é is outside the vocabulary: greyed
    assert len(set(colours(loaded))) > 3  # the characters are coloured by the unit, not all alike


def test_unit_picker_recolours_the_text(loaded):
    from selenium.webdriver.support.ui import Select

    before = colours(loaded)
    loaded.find_element("id", "next").click()
    assert loaded.find_element("id", "unit").get_attribute("value") == "1"
    after_next = colours(loaded)
    assert after_next != before
    Select(loaded.find_element("id", "state")).select_by_value("cell")
    after_state = colours(loaded)
    assert after_state != after_next
    Select(loaded.find_element("id", "layer")).select_by_value("1")
    assert colours(loaded) != after_state
    unit = loaded.find_element("id", "unit")
    unit.clear()
    unit.send_keys("0")
    loaded.find_element("id", "layer").click()  # move focus away
    Select(loaded.find_element("id", "layer")).select_by_value("0")
    Select(loaded.find_element("id", "state")).select_by_value("hidden")
    assert colours(loaded) == before  # back at layer 0 hidden unit 0
    assert colours(loaded)[UNKNOWN] == before[UNKNOWN]  # the greyed character is never coloured by a unit
    assert [e for e in loaded.get_log("browser") if e["level"] == "SEVERE"] == []


def test_ranking_panel_selects_a_unit(loaded, page):
    ranking = page_data(page)["ranking"]
    match = next(m for matches in ranking.values() for m in matches if (m["layer"], m["state"], m["unit"]) != (0, "hidden", 0))
    button = next(b for b in loaded.find_elements("css selector", "#ranking button")
                  if (b.get_attribute("data-layer"), b.get_attribute("data-state"), b.get_attribute("data-unit"))
                  == (str(match["layer"]), match["state"], str(match["unit"])))
    before = colours(loaded)
    button.click()
    assert loaded.find_element("id", "unit").get_attribute("value") == str(match["unit"])
    assert loaded.find_element("id", "state").get_attribute("value") == match["state"]
    assert "current" in button.get_attribute("class")
    assert colours(loaded) != before


def test_hover_shows_the_top_5_predictions(loaded, page):
    from selenium.webdriver.common.action_chains import ActionChains

    data = page_data(page)
    position = PROBE.index("return")
    tip = loaded.find_element("id", "tip")
    assert not tip.is_displayed()
    ActionChains(loaded).move_to_element(loaded.find_elements("css selector", "#text .p")[position]).perform()
    assert tip.is_displayed()
    assert "after \u201cr\u201d" in tip.text
    rows = [[cell.text for cell in row.find_elements("tag name", "td")]
            for row in tip.find_elements("css selector", "table.predictions tr")]
    symbols = data["top"]["symbols"]
    expected = [[symbols[i], f"{100 * p:.1f}%"] for i, p in zip(data["top"]["ids"][position], data["top"]["probs"][position])]
    visible = {"\n": "\u23ce", " ": "\u2423", "\t": "\u21e5"}
    assert rows == [[visible.get(s, s), p] for s, p in expected] and len(rows) == 5

    ActionChains(loaded).move_to_element(loaded.find_elements("css selector", "#text .p")[UNKNOWN]).perform()
    assert "outside the vocabulary" in tip.text
