"""The page of `rnnkit explain` in a real headless browser (Chromium through Selenium), opened from a file:// URL.

The model runs in the page: `rnnkitModel.run(text)` equals PyTorch's forward pass (final hidden state of every
layer, next-token probabilities) for every registered cell, at character and word level; typing into the
Type tab recolours the text; `sample` with a seed is reproducible; the page makes no network request; selecting a
span of the text ranks the units as `rnnkit.viz.units_by_example` does. The static page (a model the page cannot
run) still loads, colours the text and shows the predictions on hover.

Needs Debian's chromium and chromium-driver (`apt-get install -y chromium chromium-driver`) and the selenium
package (`pip install selenium`); without them the tests skip and say so.
"""

import json
import re
import time

import numpy as np
import pytest
import torch

from rnnkit.data.text import CharVocab, WordVocab
from rnnkit.models import LanguageModel
from rnnkit.nn import cell_names
from rnnkit.viz.live_model import unsupported_reason
from rnnkit.viz import (browser_model, collect_activations, final_outputs, rank_units, text_features,
                        units_by_example, varying, write_page)
from headless_browser import headless_chromium

CODE = "".join(f"def f{i}(x):\n    s = '</script> & <b>'\n    return [x, (s, {i % 7})]  # done\n\n" for i in range(20))
PROSE = "".join(f"ROMEO:\nShe said \"the {w} is here\" and left, {i} times.\n\nJULIET:\nO {w}, {w}!\n\n"
                for i, w in enumerate(["moon", "sun", "night", "day", "rose", "name"] * 3))
PROBE = "def f(x):\n    s = '</script> & <b>'\n    return [x, (s, 3)]  # é\n"
UNKNOWN = PROBE.index("é")
CELLS = cell_names()  # every registered cell: the page runs each one's step traced from its own equations
PARITY = 1e-4
PAGE_LIMIT = 8e6  # bytes: a 2 x 256 character model's page
LATENCY_LIMIT = 50  # ms from a keystroke to the recoloured text, for a 2 x 256 LSTM


@pytest.fixture(scope="module")
def browser():
    with headless_chromium(width=1400) as driver:
        yield driver


def tiny_model(cell: str, vocab, layers: int = 2, hidden: int = 8, embedding: int = 0, seed: int = 0, **options):
    """A language model of ``cell`` with every parameter moved off its initial value (layer-norm gains and biases
    too), so that a parameter read in the wrong place shows."""
    torch.manual_seed(seed)
    model = LanguageModel(len(vocab), cell=cell, hidden_size=hidden, num_layers=layers, embedding_dim=embedding,
                          **options)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
            if "weight_hh" in name:
                parameter.mul_(0.5)  # a contracting recurrence: a ReLU RNN must not blow up over 1,000 steps
    return model.eval()


def make_page(path, model, vocab, text: str, live: bool = True):
    activations = collect_activations(model, vocab, text)
    features, constant = varying(text_features(text, activations.last_read), activations.fed)
    ranking = rank_units(activations.states, features, top=3, mask=activations.fed)
    write_page(path, activations, ranking, {"layer": 0, "state": "hidden", "unit": 0}, title="test",
               model=browser_model(model, vocab) if live else None,
               static_reason=None if live else "the test asks for the static page", constant=constant)
    return path, activations


def open_page(driver, path):
    driver.get_log("browser")  # drop what earlier pages left
    driver.get_log("performance")
    driver.get(path.as_uri())
    for _ in range(200):
        if driver.execute_script("return window.rnnkitPage && window.rnnkitPage.ready"):
            return driver
        time.sleep(0.05)
    raise AssertionError(f"the page never got ready: {driver.get_log('browser')}")


def colours(driver, selector="#text .p") -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => getComputedStyle(e).backgroundColor)",
        selector)


def severe(driver) -> list:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def page_data(page) -> dict:
    match = re.search(r'<script type="application/json" id="rnnkit-data">(.*?)</script>', page.read_text(), re.S)
    return json.loads(match.group(1))


def max_difference(browser_outputs: dict, python_outputs: dict) -> float:
    hidden = max(np.abs(np.array(a) - np.array(b)).max() for a, b in zip(browser_outputs["hidden"], python_outputs["hidden"]))
    return max(hidden, np.abs(np.array(browser_outputs["next"]) - np.array(python_outputs["next"])).max())


# ------------------------------------------------------------------------------------------- the model in the page


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("level", ["char", "word"])
def test_run_in_the_page_equals_the_python_forward_pass(browser, tmp_path, cell, level):
    text = CODE if level == "char" else PROSE
    vocab = CharVocab.build(text) if level == "char" else WordVocab.build(text)
    model = tiny_model(cell, vocab, embedding=0 if level == "char" else 6)
    assert unsupported_reason(model) is None
    page, _ = make_page(tmp_path / "page.html", model, vocab, PROBE if level == "char" else PROSE[:200])
    driver = open_page(browser, page)
    assert severe(driver) == []
    assert driver.execute_script("return window.rnnkitModel.vocab") == list(vocab.symbols)
    probes = [text[:1000], text[:1000] + "é\U0001F600 zebra\n", ""]  # unknown characters skipped, unknown words <unk>
    assert len(probes[0]) == 1000
    for probe in probes:
        got = driver.execute_script("return window.rnnkitModel.run(arguments[0])", probe)
        expected = final_outputs(model, vocab, probe)
        assert len(got["hidden"]) == 2 and len(got["hidden"][0]) == 8 and len(got["next"]) == len(vocab)
        assert max_difference(got, expected) <= PARITY, (cell, level, probe[:20])


@pytest.mark.parametrize("options", [
    {"zoneout": 0.3},  # in evaluation h_t = p h_{t-1} + (1 - p) h~_t: the page must do it too
    {"recurrent_dropout": 0.2, "weight_drop": 0.3, "embedding_dropout": 0.1, "locked_dropout": True, "dropout": 0.2,
     "forget_bias": 1.0},  # identities in evaluation
])
def test_regularised_models_run_in_the_page(browser, tmp_path, options):
    vocab = CharVocab.build(CODE)
    model = tiny_model("layernorm_lstm", vocab, embedding=5, **options)
    page, _ = make_page(tmp_path / "page.html", model, vocab, PROBE)
    driver = open_page(browser, page)
    got = driver.execute_script("return window.rnnkitModel.run(arguments[0])", CODE[:300])
    assert max_difference(got, final_outputs(model, vocab, CODE[:300])) <= PARITY


@pytest.fixture(scope="module")
def lstm_page(tmp_path_factory):
    vocab = CharVocab.build(CODE + PROBE.replace("é", ""))
    model = tiny_model("lstm", vocab)
    page, activations = make_page(tmp_path_factory.mktemp("lstm") / "page.html", model, vocab, PROBE)
    return page, model, vocab, activations


@pytest.fixture
def loaded(browser, lstm_page):
    return open_page(browser, lstm_page[0])


def test_shown_text_is_computed_in_the_page_as_in_python(loaded, lstm_page):
    _, _, _, activations = lstm_page
    assert "activations" not in page_data(lstm_page[0])  # a live page holds weights, not activations
    for (layer, state), values in activations.states.items():
        shown = loaded.execute_script("return Array.from(shown.values[arguments[0]])", f"{layer}/{state}")
        shown = np.array(shown).reshape(values.shape)
        fed = activations.fed
        np.testing.assert_allclose(shown[fed], values[fed], atol=PARITY)


def test_sample_with_a_seed_is_reproducible(loaded, lstm_page):
    _, _, vocab, _ = lstm_page
    sample = lambda *args: loaded.execute_script("return window.rnnkitModel.sample(...arguments)", *args)  # noqa: E731
    first = sample("def ", 60, 0.8, 7)
    assert sample("def ", 60, 0.8, 7) == first and len(first) == 60
    assert set(first) <= set(vocab.symbols)
    assert sample("def ", 60, 0.8, 8) != first
    assert sample("", 5, 1.0, 0) == sample("", 5, 1.0, 0)  # an empty prime starts after a line break
    cold = [sample("def ", 20, 0.01, seed) for seed in range(3)]
    assert len(set(cold)) == 1  # near-greedy: the seed no longer matters
    error = loaded.execute_script(
        "try { window.rnnkitModel.sample('x', 5, 0, 1); return null } catch (e) { return e.message }")
    assert "temperature must be a positive number" in error


def test_typing_recolours_the_text_and_updates_the_next_token(loaded):
    loaded.find_element("css selector", '#tabs button[data-tab="live"]').click()
    box = loaded.find_element("id", "live-input")
    box.send_keys("def f(x):\n    return")
    typed = "def f(x):\n    return"
    spans = loaded.find_elements("css selector", "#live-colour .p")
    assert "".join(s.text for s in spans).replace("\n", "") == typed.replace("\n", "")
    before = colours(loaded, "#live-colour .p")
    assert len(set(before)) > 2  # coloured by the unit, not all alike
    title = loaded.find_element("id", "live-next-title").text
    rows = loaded.find_elements("css selector", "#live-next-table tr")
    assert "after \u201cn\u201d" in title and len(rows) == 10
    box.send_keys(" x")
    after = colours(loaded, "#live-colour .p")
    assert after[: len(before)] == before and len(after) == len(before) + 2  # the new characters are coloured too
    loaded.find_element("id", "next").click()  # another unit recolours the typed text
    assert colours(loaded, "#live-colour .p") != after
    latencies = loaded.execute_script("return window.rnnkitPage.latencies")
    assert len(latencies) >= len(typed) and all(entry["tokens"] <= 2 for entry in latencies[1:])
    assert severe(loaded) == []


def test_generate_appends_a_sample(loaded):
    loaded.find_element("css selector", '#tabs button[data-tab="live"]').click()
    box = loaded.find_element("id", "live-input")
    box.send_keys("def ")
    for name, value in (("gen-length", "25"), ("gen-seed", "3")):
        field = loaded.find_element("id", name)
        field.clear()
        field.send_keys(value)
    loaded.find_element("id", "generate").click()
    expected = loaded.execute_script("return window.rnnkitModel.sample('def ', 25, 0.8, 3)")
    assert box.get_attribute("value") == "def " + expected
    assert len(loaded.find_elements("css selector", "#live-colour .p")) == 4 + 25


def test_the_page_makes_no_network_request(browser, lstm_page):
    driver = open_page(browser, lstm_page[0])
    driver.find_element("css selector", '#tabs button[data-tab="live"]').click()
    driver.find_element("id", "live-input").send_keys("def g():")
    driver.find_element("id", "generate").click()
    requests = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    urls = [m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"]
    assert urls and all(url == lstm_page[0].as_uri() or url.startswith("data:") for url in urls), urls


def test_selecting_a_span_ranks_units_by_example(loaded, lstm_page):
    _, _, _, activations = lstm_page
    start, end = PROBE.index("'</script>"), PROBE.index("<b>'") + 3  # the string literal
    loaded.execute_script("""
        const box = document.getElementById('text');
        const spans = box.querySelectorAll('.p');
        const range = document.createRange();
        range.setStart(spans[arguments[0]].firstChild, 0);
        range.setEnd(spans[arguments[1] - 1].firstChild, 1);
        window.getSelection().removeAllRanges();
        window.getSelection().addRange(range);
        box.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));""", start, end)
    panel = loaded.find_element("id", "matches")
    assert panel.is_displayed()
    buttons = panel.find_elements("css selector", "#matches-list button")
    assert len(buttons) == 10
    inside = np.zeros(len(activations.fed), dtype=bool)
    inside[start:end] = True
    expected = units_by_example(activations.states, inside, top=40, mask=activations.fed)
    score = {(m.layer, m.state, m.unit): m.score for m in expected}
    shown = [(int(b.get_attribute("data-layer")), b.get_attribute("data-state"), int(b.get_attribute("data-unit")))
             for b in buttons]
    # the page's order is Python's (ties aside): each unit shown scores as Python's unit at that rank
    for rank, unit in enumerate(shown):
        assert abs(score[unit]) == pytest.approx(abs(expected[rank].score), abs=1e-4)
    assert loaded.find_element("id", "unit").get_attribute("value") == str(shown[0][2])  # the best is shown
    chosen = loaded.find_elements("css selector", "#text .chosen")
    assert len(chosen) == end - start
    assert "also fire at" in loaded.find_element("id", "matches-summary").text
    loaded.find_element("id", "clear-selection").click()
    assert not panel.is_displayed() and not loaded.find_elements("css selector", "#text .chosen")


# ------------------------------------------------------------------------------------------- what the page shows


def test_page_loads_without_console_errors_and_shows_the_text(loaded):
    assert severe(loaded) == []
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
    Select(loaded.find_element("id", "layer")).select_by_value("0")
    Select(loaded.find_element("id", "state")).select_by_value("hidden")
    assert colours(loaded) == before  # back at layer 0 hidden unit 0
    assert colours(loaded)[UNKNOWN] == before[UNKNOWN]  # the greyed character is never coloured by a unit


def test_hover_shows_the_top_5_predictions(loaded, lstm_page):
    from selenium.webdriver.common.action_chains import ActionChains

    _, _, _, activations = lstm_page
    position = PROBE.index("return")
    tip = loaded.find_element("id", "tip")
    assert not tip.is_displayed()
    ActionChains(loaded).move_to_element(loaded.find_elements("css selector", "#text .p")[position]).perform()
    assert tip.is_displayed() and "after \u201cr\u201d" in tip.text
    rows = [[cell.text for cell in row.find_elements("tag name", "td")]
            for row in tip.find_elements("css selector", "table.predictions tr")]
    visible = {"\n": "\u23ce", " ": "\u2423", "\t": "\u21e5"}
    expected = [[visible.get(s, s), f"{100 * p:.1f}%"] for s, p in activations.predictions(position)]
    assert rows == expected and len(rows) == 5
    ActionChains(loaded).move_to_element(loaded.find_elements("css selector", "#text .p")[UNKNOWN]).perform()
    assert "outside the vocabulary" in tip.text


def test_static_page_for_a_model_the_browser_cannot_run(browser, tmp_path, lstm_page):
    _, model, vocab, activations = lstm_page
    page, _ = make_page(tmp_path / "static.html", model, vocab, PROBE, live=False)
    driver = open_page(browser, page)
    assert severe(driver) == []
    assert driver.execute_script("return typeof window.rnnkitModel") == "undefined"
    assert "cannot run the model (the test asks for the static page)" in driver.find_element("id", "model").text
    assert not driver.find_element("css selector", '#tabs button[data-tab="live"]').is_displayed()
    assert len(set(colours(driver))) > 3
    shown = np.array(driver.execute_script("return Array.from(shown.values['1/cell'])")).reshape(-1, 8)
    fed = activations.fed
    scale = np.abs(activations.states[(1, "cell")][fed]).max(axis=0)
    np.testing.assert_allclose(shown[fed], activations.states[(1, "cell")][fed], atol=scale.max() / 127 + 1e-3)


def test_a_2x256_lstm_page_is_small_and_quick_to_type_in(browser, tmp_path, capsys):
    from rnnkit.data.corpus import default_corpus

    text = default_corpus()[0]
    vocab = CharVocab.build(text)
    torch.manual_seed(0)
    model = LanguageModel(len(vocab), cell="lstm", hidden_size=256, num_layers=2, embedding_dim=64).eval()
    big, _ = make_page(tmp_path / "big.html", model, vocab, text[:5000])  # rnnkit explain's default --max-chars
    size = big.stat().st_size
    assert size <= PAGE_LIMIT
    page, _ = make_page(tmp_path / "page.html", model, vocab, text[:300])
    driver = open_page(browser, page)
    driver.find_element("css selector", '#tabs button[data-tab="live"]').click()
    box = driver.find_element("id", "live-input")
    box.send_keys(text[5000:5200])
    for char in "def main(argv):\n    return 0\n":
        box.send_keys(char)
    typed = driver.execute_script("return window.rnnkitPage.latencies")[-30:]
    frame = sorted(entry["frame"] for entry in typed)[len(typed) // 2]
    update = sorted(entry["update"] for entry in typed)[len(typed) // 2]
    parity = max_difference(driver.execute_script("return window.rnnkitModel.run(arguments[0])", text[:1000]),
                            final_outputs(model, vocab, text[:1000]))
    with capsys.disabled():
        print(f"\n2x256 LSTM page: {size / 1e6:.2f} MB for 5,000 characters; keystroke to recoloured frame: median "
              f"{frame:.1f} ms (handler {update:.1f} ms) over {len(typed)} keystrokes; parity on 1,000 characters "
              f"{parity:.1e}")
    assert frame <= LATENCY_LIMIT and parity <= PARITY


def test_typing_words_into_a_word_model_page(browser, tmp_path):
    vocab = WordVocab.build(PROSE)
    model = tiny_model("gru", vocab, embedding=6)
    page, _ = make_page(tmp_path / "page.html", model, vocab, PROSE[:120])
    driver = open_page(browser, page)
    driver.find_element("css selector", '#tabs button[data-tab="live"]').click()
    driver.find_element("id", "live-input").send_keys("JULIET:\nO zebra moon")
    words = [span.text for span in driver.find_elements("css selector", "#live-colour .p")]
    assert words == ["JULIET:", "", "O", "zebra", "moon"]  # the newline is <eos>; zebra is read as <unk>
    assert "unknown" in driver.find_elements("css selector", "#live-colour .p")[3].get_attribute("class")
    assert "after \u201cmoon\u201d" in driver.find_element("id", "live-next-title").text
    assert severe(driver) == []


def test_the_page_of_rnnkit_explain_shows_the_gradient_through_time(browser, tmp_path, capsys):
    from dataclasses import asdict

    from cli_helpers import run_cli
    from rnnkit.tasks.lm import LMDataConfig
    from rnnkit.train import RunDirectory

    vocab = CharVocab.build(CODE)
    model = tiny_model("layernorm_lstm", vocab)
    meta = {"task": "lm", "configs": {"data": asdict(LMDataConfig(data="code.txt")), "model": model.config.to_dict()},
            "vocab": vocab.to_dict()}
    RunDirectory.create(tmp_path / "run").save(model, tensors={}, meta=meta)
    (tmp_path / "code.py").write_text(CODE[:400])
    code, _, stderr = run_cli(capsys, "explain", tmp_path / "run", "--text", tmp_path / "code.py",
                              "--out", tmp_path / "page.html")
    assert code == 0, stderr
    driver = open_page(browser, tmp_path / "page.html")
    driver.find_element("css selector", '#tabs button[data-tab="gradient"]').click()
    assert driver.find_element("id", "gradient-chart").is_displayed()
    assert len(driver.find_elements("css selector", "#gradient-chart path.curve")) == 2  # one per layer
    assert "depends on its state after reading position t" in driver.find_element("id", "gradient-caption").text
    shades = colours(driver, "#gradient-text .g")
    assert len(shades) == 400 and len(set(shades)) > 10  # the text coloured by the gradient's size
    title = driver.find_elements("css selector", "#gradient-text .g")[10].get_attribute("title")
    assert title.startswith("\u2016\u2202L/\u2202h_t\u2016 = ")
    assert severe(driver) == []


def test_a_long_paste_is_read_in_slices_to_the_same_state(loaded):
    loaded.find_element("css selector", '#tabs button[data-tab="live"]').click()
    text = CODE * 2  # 2,760 characters: seven slices
    first = loaded.execute_script("""
        const box = document.getElementById('live-input');
        box.value = arguments[0];
        box.dispatchEvent(new Event('input'));
        return live.states.length;""", text)
    assert first == 400  # one slice, then the page answers events again before the next
    for _ in range(200):
        if loaded.execute_script("return live.states.length") == len(text):
            break
        time.sleep(0.05)
    last = loaded.execute_script("return Array.from(live.states[live.states.length - 1][1].h)")
    expected = loaded.execute_script("return window.rnnkitModel.run(arguments[0]).hidden[1]", text)
    np.testing.assert_allclose(last, expected, atol=1e-12)
    assert len(set(colours(loaded, "#live-colour .p")[-100:])) > 2 and severe(loaded) == []
