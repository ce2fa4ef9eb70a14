"""rnnkit.viz.features and rnnkit.viz.units: string literals (tokenize and the fallback scanner agree), brackets,
indentation, line position, and the ranking of units by correlation."""

import sysconfig
from pathlib import Path

import numpy as np
import pytest

from rnnkit.viz.features import (FEATURES, is_speaker_line, literal_masks, prose_quotes, scan_literals, speeches,
                                 text_features, tokenize_literals, varying)
from rnnkit.viz.units import correlations, rank_units, units_by_example


def marked(text: str, mask: np.ndarray) -> str:
    """The characters of ``text`` under ``mask``, joined: easy to read in an assertion."""
    return "".join(c for c, m in zip(text, mask) if m)


def strings_of(text: str) -> str:
    return marked(text, text_features(text)["in_string"] > 0)


# ------------------------------------------------------------------------------------------- strings


@pytest.mark.parametrize("text, inside", [
    ("x = 'ab' + \"cd\"\n", "'ab\"cd"),                         # opening quote in, closing quote out
    ("s = '''a\n'b'\n'''\n", "'''a\n'b'\n''"),                 # triple quotes span lines and hold single quotes
    ('s = "say \\"hi\\""\n', '"say \\"hi\\"'),                 # escaped quotes do not close the string
    ("s = r'\\d+' + b'x' + f'{y}'\n", "'\\d+'x'{y}"),           # prefixes are outside, the quote is inside
    ("# it's a comment\nx = 1\n", ""),                          # a quote in a comment opens nothing
    ("s = '#not a comment'  # but 'this' is\n", "'#not a comment"),
    ("s = ''\n", "'"),                                          # the empty string: its opening quote
])
def test_string_literals(text, inside):
    assert strings_of(text) == inside
    assert marked(text, scan_literals(text)[0]) == inside  # the fallback scanner agrees


def test_text_cut_inside_a_string_or_a_bracket_is_still_read_by_tokenize():
    text = 'def f(x):\n    """Doc with \'quote\'\n    still the doc'
    strings, _ = tokenize_literals(text)
    assert marked(text, strings) == '"""Doc with \'quote\'\n    still the doc'
    text = "y = f('a',\n      'b'"
    assert marked(text, tokenize_literals(text)[0]) == "'a'b"


def test_text_tokenize_refuses_falls_back_to_the_scanner():
    text = "        x = 1\n    y = 'a'\n"  # dedent to a level never opened: tokenize raises IndentationError
    with pytest.raises(SyntaxError):
        tokenize_literals(text)
    assert marked(text, literal_masks(text)[0]) == "'a"


def test_an_unclosed_quote_closes_at_its_line_end_on_every_python():
    # Python 3.11's tokenize reads on after an unclosed ' as if it were code, 3.12 raises: both go to the scanner.
    assert strings_of('x = "abc') == '"abc'
    assert strings_of("it's prose\nx = (1)\n") == "'s prose"
    assert text_features("it's prose\nx = (1)\n")["bracket_depth"].tolist()[-3:] == [1, 0, 0]


def test_only_newlines_end_lines():
    # A form feed (common between sections of source files) or a lone "\r" is inside a line, for tokenize too.
    text = 'x = 1\x0c\ny = "ab"\n'
    assert strings_of(text) == '"ab'
    assert text_features("a\x0cb\n  c\n")["line_position"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert text_features("a\rb\n  c\n")["indent"].tolist() == [0, 0, 0, 0, 1, 2, 2, 2]


@pytest.mark.parametrize("name", ["textwrap.py", "json/decoder.py", "tokenize.py", "shlex.py"])
def test_scanner_agrees_with_tokenize_on_stdlib_source(name):
    text = (Path(sysconfig.get_paths()["stdlib"]) / name).read_text(encoding="utf-8")
    by_tokenize, by_scanner = tokenize_literals(text), scan_literals(text)
    assert by_tokenize[0].sum() > 1000  # real code with many strings: the comparison means something
    np.testing.assert_array_equal(by_tokenize[0], by_scanner[0])
    np.testing.assert_array_equal(by_tokenize[1], by_scanner[1])


# ------------------------------------------------------------------------------------------- brackets, lines


def test_bracket_depth_ignores_strings_and_comments():
    text = "f(a[1], '(', {2}) # (\n"
    depth = text_features(text)["bracket_depth"]
    assert depth.tolist() == [0, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0]
    assert (text_features(text)["in_brackets"] == (depth > 0)).all()
    # the comment "# (" (not its newline) is a comment, and its bracket counts nothing
    assert marked(text, text_features(text)["in_comment"] > 0) == "# ("


def test_unmatched_closer_does_not_go_negative():
    text = "x)\n(y"
    assert text_features(text)["bracket_depth"].tolist() == [0, 0, 0, 1, 1]


def test_indent_and_line_position():
    text = "a\n    bc\n\tx\n"
    features = text_features(text)
    assert features["indent"].tolist() == [0, 0, 1, 2, 3, 4, 4, 4, 4, 8, 8, 8]  # as far as read
    assert features["line_position"].tolist() == [0, 1, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2]


def test_offsets_pick_the_features_of_positions():
    text = "def f(x):\n    return 'y'\n"
    full = text_features(text)
    at = [0, 4, 14, 21]
    picked = text_features(text, at)
    assert set(picked) == set(FEATURES)
    for name in FEATURES:
        assert picked[name].tolist() == full[name][at].tolist()
    assert picked["in_string"].tolist() == [0, 0, 0, 1]


def test_empty_text_gives_empty_features():
    assert all(len(values) == 0 for values in text_features("").values())


# ------------------------------------------------------------------------------------------- prose


@pytest.mark.parametrize("text, inside", [
    ('He said "come here" and went.\n', '"come here'),                  # opening quote in, closing quote out
    ("She said \u201cno\u201d twice.\n", "\u201cno"),                    # curly double quotes
    ("'Tis said 'go away' to o'er the hills, don't.\n", "'go away"),    # apostrophes open nothing
    ("It's the boys' toys.\n", ""),                                     # a possessive is not a closing quote
    ("Cry \u2018havoc!\u2019 and let slip\n", "\u2018havoc!"),
    ('"a long\nspeech\n\nnext paragraph\n', '"a long\nspeech\n'),      # open at a blank line: runs to it
    ("'open but never closed\nnext line\n", ""),                       # a single quote must close on its line
    ('say "it\'s fine" now\n', '"it\'s fine'),                           # an apostrophe inside double quotes
])
def test_quotes_in_prose(text, inside):
    assert marked(text, prose_quotes(text)) == inside
    assert marked(text, text_features(text)["in_quotes"] > 0) == inside


def test_line_length_and_word_position():
    text = "To be, or not\nI don't_know 42\n\n"
    features = text_features(text)
    assert features["line_length"].tolist() == [13] * 14 + [15] * 16 + [0]
    assert features["word_position"].tolist()[:14] == [1, 2, 0, 1, 2, 0, 0, 1, 2, 0, 1, 2, 3, 0]
    assert features["word_position"].tolist()[14:30] == [1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 0]  # don't_know


@pytest.mark.parametrize("line, speaker", [
    ("ROMEO:", True), ("KING HENRY VI:", True), ("LADY CAPULET:  ", True), ("First Citizen:", False),
    ("ROMEO: speaks", False), ("I:", False), ("O:", False), ("X = 1:", False), ("DEF F(X):", False),
])
def test_speaker_lines(line, speaker):
    assert is_speaker_line(line) == speaker


def test_speeches_follow_a_speaker_line_until_a_blank_line():
    text = "ROMEO:\nBut soft!\nWhat light?\n\nJULIET:\nAy me.\nNURSE:\nAnon!\n\nEnter all.\n"
    inside = speeches(text)
    assert marked(text, inside) == "\nBut soft!\nWhat light?\n\nAy me.\n\nAnon!\n"
    assert not inside[: len("ROMEO:")].any()  # the name itself is not the speech
    assert (text_features(text)["after_speaker"] == inside).all()
    assert not speeches("def f(x):\n    return x\n").any()


def test_varying_keeps_only_the_features_that_change_over_the_text():
    text = "x = (1)\n"
    kept, constant = varying(text_features(text))
    assert "bracket_depth" in kept and "line_position" in kept
    assert {"in_string", "in_comment", "in_quotes", "after_speaker", "indent"} <= set(constant)
    assert set(kept) | set(constant) == set(FEATURES)
    mask = np.array([True, False, False, False, False, False, False, False])  # one position: nothing varies
    assert varying(text_features(text), mask)[0] == {}


# ------------------------------------------------------------------------------------------- ranking


def test_units_by_example_finds_the_unit_on_inside_and_off_outside():
    rng = np.random.default_rng(2)
    P, H = 300, 5
    inside = np.zeros(P, dtype=bool)
    inside[100:120] = True
    hidden = 0.05 * rng.normal(size=(P, H))
    hidden[:, 3] += np.where(inside, 0.8, 0.0)   # on inside only
    hidden[:, 1] += 0.9                           # on everywhere: not a match
    cell = 0.1 * rng.normal(size=(P, H))
    cell[:, 2] -= np.where(inside, 4.0, 0.0)      # strongly negative inside (scaled by max |c|)
    found = units_by_example({(0, "hidden"): hidden, (1, "cell"): cell}, inside, top=3)
    assert {(m.layer, m.state, m.unit) for m in found[:2]} == {(0, "hidden", 3), (1, "cell", 2)}
    by_unit = {(m.layer, m.state, m.unit): m for m in found}
    assert by_unit[(1, "cell", 2)].score < -0.9 and by_unit[(0, "hidden", 3)].score > 0.7
    assert np.abs(hidden[:, 3]).max() < 1
    expected = hidden[inside, 3].mean() - hidden[~inside, 3].mean()  # h's scale is 1 while |h| <= 1
    assert by_unit[(0, "hidden", 3)].score == pytest.approx(expected)
    assert len(found) == 3 and abs(found[0].score) >= abs(found[1].score) >= abs(found[2].score)
    assert units_by_example({(0, "hidden"): hidden}, np.ones(P, dtype=bool)) == []  # nothing outside


def test_correlations_match_numpy_and_constant_columns_have_none():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 4))
    values[:, 2] = 0.3  # a constant unit
    feature = rng.normal(size=50)
    r = correlations(values, feature)
    for j in (0, 1, 3):
        assert r[j] == pytest.approx(np.corrcoef(values[:, j], feature)[0, 1])
    assert np.isnan(r[2])
    assert np.isnan(correlations(values, np.ones(50))).all()


def test_rank_units_finds_a_planted_unit_with_its_sign():
    rng = np.random.default_rng(1)
    P, H = 400, 6
    feature = (rng.random(P) < 0.3).astype(float)
    states = {(0, "hidden"): rng.normal(size=(P, H)), (1, "hidden"): rng.normal(size=(P, H)),
              (1, "cell"): rng.normal(size=(P, H))}
    states[(1, "cell")][:, 4] = -2 * feature + 0.1 * rng.normal(size=P)  # strongly anti-correlated
    states[(0, "hidden")][:, 2] = feature + 1.0 * rng.normal(size=P)      # weakly correlated
    ranking = rank_units(states, {"in_string": feature, "indent": np.zeros(P)}, top=3)
    best = ranking["in_string"]
    assert len(best) == 3
    assert (best[0].layer, best[0].state, best[0].unit) == (1, "cell", 4) and best[0].correlation < -0.95
    assert (best[1].layer, best[1].state, best[1].unit) == (0, "hidden", 2) and 0.2 < best[1].correlation < 0.6
    assert abs(best[1].correlation) >= abs(best[2].correlation)
    assert ranking["indent"] == []  # a constant feature correlates with nothing
    assert best[0].to_dict() == {"layer": 1, "state": "cell", "unit": 4, "correlation": best[0].correlation}


def test_rank_units_leaves_out_positions_not_fed():
    feature = np.array([0.0, 1.0, 0.0, 1.0, 5.0])
    values = np.array([[0.0], [1.0], [0.0], [1.0], [np.nan]])  # position 4 was not read by the model
    ranking = rank_units({(0, "hidden"): values}, {"f": feature})
    assert ranking["f"][0].correlation == pytest.approx(1.0)
    masked = rank_units({(0, "hidden"): np.nan_to_num(values)}, {"f": feature},
                        mask=np.array([True, True, True, True, False]))
    assert masked["f"][0].correlation == pytest.approx(1.0)
