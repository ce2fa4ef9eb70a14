"""`rnnkit explain` on long texts (issue 26): the text streams through the model chunk by chunk, the ranking over
all of it equals rank_units over every state kept, the page shows its window (with the same states and
predictions), the gradient tab starts from the carried state, memory stays within the documented bound,
progress is reported, limits are one line, and `--json` labels `next` by token and writes no page unless asked."""

import json
import re
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit.tasks.explain_units as explain_task
import rnnkit.viz.activations as activations_module
import rnnkit.viz.streaming as streaming
from rnnkit.cli import main
from rnnkit.data.text import CharVocab
from rnnkit.diagnose.gradients import language_model_gradient_flow
from rnnkit.models import LanguageModel
from rnnkit.tasks.lm import from_run
from rnnkit.viz import collect_activations, rank_units, text_features, varying
from rnnkit.viz.streaming import memory_bound, stream_text
from cli_helpers import assert_one_line_error, run_cli

LINES = ["ROMEO:\n", 'But soft, what "light" through yonder window breaks?\n',
         "    def f(x): return [x, (x, {1})]  # c\n", "\n", "JULIET:\n", "It is the east, and 'Juliet' is the sun.\n"]
TEXT = "".join(LINES[i % len(LINES)] for i in range(60))  # 1,500 characters, every feature varying


def page_data(page: Path) -> dict:
    match = re.search(r'<script type="application/json" id="rnnkit-data">(.*?)</script>', page.read_text(), re.S)
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def lstm():
    torch.manual_seed(0)
    vocab = CharVocab.build(TEXT)
    return LanguageModel(len(vocab), hidden_size=6, num_layers=2).eval(), vocab


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    data = root / "train.txt"
    data.write_text(TEXT)
    code = main_code(["train", "lm", "--data", str(data), "--hidden", "8", "--layers", "2", "--seq-len", "10",
                      "--batch-size", "4", "--max-steps", "3", "--seed", "0", "--quiet", "--json",
                      "--out", str(root / "lstm")])
    assert code == 0
    return root / "lstm"


def main_code(argv) -> int:
    try:
        main(argv)
    except SystemExit as exit:
        return exit.code or 0
    return 0


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text(TEXT + "é")  # one character outside the vocabulary, at the very end
    return path


# ------------------------------------------------------------------------------------------- the library


def test_the_streamed_ranking_and_window_equal_what_keeping_every_state_gives(lstm, monkeypatch):
    model, vocab = lstm
    text = TEXT[:1500] + "é" + TEXT[1500:]  # a position not fed, inside the text
    whole = collect_activations(model, vocab, text)
    features, constant = varying(text_features(text, whole.last_read), whole.fed)
    expected = rank_units(whole.states, features, top=4, mask=whole.fed)

    monkeypatch.setattr(streaming, "CHUNK", 97)  # many chunks, none aligned with the window
    advanced = []
    explained = stream_text(model, vocab, text, window_chars=700, ranked=4,
                            progress=lambda total: (advanced.append(total), advanced.append)[1])
    assert explained.constant == constant and explained.positions == len(text) and explained.fed == len(text) - 1
    assert explained.ranking.keys() == expected.keys()
    for name in expected:
        assert [(m.layer, m.state, m.unit) for m in explained.ranking[name]] == \
               [(m.layer, m.state, m.unit) for m in expected[name]]
        np.testing.assert_allclose([m.correlation for m in explained.ranking[name]],
                                   [m.correlation for m in expected[name]], rtol=1e-9)
    assert advanced[0] == len(text) - 1 and sum(advanced[1:]) == len(text) - 1  # the total, then each chunk

    window = explained.window
    assert window.text == text[:700] and len(window.ids) == 700
    for key, values in window.states.items():
        np.testing.assert_allclose(values, whole.states[key][:700], atol=1e-6)
    np.testing.assert_array_equal(window.top_ids, whole.top_ids[:700])
    np.testing.assert_allclose(window.top_probs, whole.top_probs[:700], atol=1e-6)


def test_a_words_window_holds_the_words_that_end_inside_it(lstm):
    from rnnkit.data.text import WordVocab

    text = "one two three\nfour five\n" * 20
    vocab = WordVocab.build(text)
    model = LanguageModel(len(vocab), hidden_size=4, num_layers=1, embedding_dim=3).eval()
    explained = stream_text(model, vocab, text, window_chars=16)  # "one two three\nfo": 4 positions end inside
    assert [text[a:b] for a, b in explained.window.spans] == ["one", "two", "three", "\n"]
    assert explained.positions == 7 * 20 and explained.window.text == text[:16]


def test_memory_stays_within_the_documented_bound_while_keeping_every_state_would_not(lstm, monkeypatch):
    torch.manual_seed(0)
    model = LanguageModel(len(lstm[1]), hidden_size=64, num_layers=2).eval()
    monkeypatch.setattr(streaming, "CHUNK", 250)
    text = TEXT * 6  # 9,000 characters
    every_state = len(text) * 2 * 2 * 64 * 4  # what collect_activations keeps (float32 h and c of 2 layers)
    tracemalloc.start()
    try:
        stream_text(model, lstm[1], text, window_chars=500)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < memory_bound(len(text), 500, 2, 64) < every_state


def test_the_gradient_tab_starts_from_the_carried_state(lstm, monkeypatch):
    model, vocab = lstm
    window = stream_text(model, vocab, TEXT[:300], window_chars=300).window
    monkeypatch.setattr(explain_task, "GRADIENT_POSITIONS", 40)
    tab = explain_task.gradient_tab(model, window)
    full = language_model_gradient_flow(model, vocab.encode(TEXT[:300]))  # every position, from a zero state
    assert tab["positions"] == list(range(259, 299))
    np.testing.assert_allclose(tab["norms"], full.hidden[:, -40:].numpy(), rtol=1e-3)


def test_read_prefix_reads_a_bounded_prefix_and_cuts_whole_characters(tmp_path, monkeypatch):
    path = tmp_path / "t.txt"
    path.write_bytes("aé€😀\r\nb".encode() * 1000)
    read = []
    real_open = open

    def recording_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        real_read = handle.read
        handle.read = lambda n=-1: (read.append(n), real_read(n))[1]
        return handle

    monkeypatch.setattr("builtins.open", recording_open)
    text, cut = explain_task.read_prefix(str(path), 9)
    assert text == "aé€😀\nbaé€" and cut == path.stat().st_size
    assert read == [4 * 9 + 1]  # never the whole file
    monkeypatch.setattr("builtins.open", real_open)
    assert explain_task.read_prefix(str(path), 10**6) == (("aé€😀\nb" * 1000), 0)


# ------------------------------------------------------------------------------------------- the command


def test_json_labels_next_by_token_and_writes_no_page_unless_asked(capsys, run, text_file, tmp_path):
    code, stdout, stderr = run_cli(capsys, "explain", run, "--text", text_file, "--json", "--max-chars", "100000")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["page"] is None and not (run / "explain.html").exists()
    model, vocab, _ = from_run(run)
    assert set(report["next"]) == set(vocab.symbols) and sum(report["next"].values()) == pytest.approx(1)
    assert list(report["next"].values()) == sorted(report["next"].values(), reverse=True)
    assert report["characters"] == len(TEXT) + 1 and report["positions"] == len(TEXT) + 1
    assert "note: 1 characters" in stderr and "reading" not in stderr  # no progress bar: not a terminal

    page = tmp_path / "asked.html"
    code, stdout, _ = run_cli(capsys, "explain", run, "--text", text_file, "--json", "--out", page)
    assert code == 0 and json.loads(stdout)["page"] == str(page) and page.exists()


def test_a_long_text_is_ranked_whole_and_shown_in_its_window(capsys, run, text_file, tmp_path):
    page = tmp_path / "p.html"
    code, stdout, stderr = run_cli(capsys, "explain", run, "--text", text_file, "--page-chars", "300",
                                   "--max-chars", "1000", "--out", page)
    assert code == 0, stderr
    assert "is longer than 1,000 characters" in stderr and "shows the first 300 of the 1,000 characters" in stderr
    assert "outside the model's vocabulary" not in stderr  # the é at the end was not read
    data = page_data(page)
    assert data["text"] == TEXT[:300] and len(data["spans"]) == 300
    assert data["read"] == {"characters": 1000, "positions": 1000}
    assert data["gradient"]["positions"] == list(range(299))
    code, stdout, _ = run_cli(capsys, "explain", run, "--text", text_file, "--page-chars", "300",
                              "--max-chars", "1000", "--out", tmp_path / "q.html", "--json")
    assert json.loads(stdout)["ranking"] == data["ranking"] and json.loads(stdout)["shown"] == 300
    short = tmp_path / "short.html"
    assert run_cli(capsys, "explain", run, "--text", text_file, "--out", short)[0] == 0
    assert page_data(short)["read"] is None  # the whole text shown: it is shorter than 5,000 characters


def test_a_terminal_gets_a_progress_bar_with_rate_and_time_left(capsys, run, text_file, tmp_path, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, stderr = run_cli(capsys, "explain", run, "--text", text_file, "--out", tmp_path / "p.html")
    assert code == 0
    assert "reading" in stderr and "tok/s" in stderr and "<" in stderr  # tqdm: "[elapsed<left, rate tok/s]"
    code, _, stderr = run_cli(capsys, "explain", run, "--text", text_file, "--json")
    assert code == 0 and "tok/s" not in stderr  # quiet under --json


@pytest.mark.parametrize("flags, words", [
    (["--page-chars", "100001"], ["--page-chars", "100,000"]),
    (["--max-chars", str(10**12)], ["--max-chars", "memory"]),
])
def test_limits_are_one_line_before_any_work(capsys, run, text_file, tmp_path, monkeypatch, flags, words):
    monkeypatch.setattr("rnnkit.checks.machine_memory", lambda: 10**5)  # 100 kB: 1,501 characters do not fit
    monkeypatch.setattr(activations_module, "tokenize_positions", lambda *args: pytest.fail("work was done"))
    code, stdout, stderr = run_cli(capsys, "explain", run, "--text", text_file, "--out", tmp_path / "p.html", *flags)
    assert_one_line_error(code, stderr, *words)
    assert not (tmp_path / "p.html").exists()
