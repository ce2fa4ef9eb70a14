"""The built-in standard-library corpus and the train/validation split."""

import sysconfig
from pathlib import Path

import pytest

from rnnkit.data import corpus
from rnnkit.data.corpus import STDLIB_FILES, default_corpus, split_train_valid
from rnnkit.errors import InputError


def fake_stdlib(monkeypatch, root, files):
    monkeypatch.setattr(corpus.sysconfig, "get_paths", lambda: {"stdlib": str(root)})
    monkeypatch.setattr(corpus, "STDLIB_FILES", files)


def test_default_corpus_is_the_documented_files_in_order_and_deterministic():
    text, description = default_corpus()
    again, _ = default_corpus()
    assert text == again
    assert 1_000_000 < len(text) < 2_000_000
    assert "\r" not in text
    root = Path(sysconfig.get_paths()["stdlib"])
    first = (root / STDLIB_FILES[0]).read_text(encoding="utf-8")
    last = (root / STDLIB_FILES[-1]).read_text(encoding="utf-8")
    assert text.startswith(first.rstrip("\n") + "\n\n")
    assert text.endswith(last.rstrip("\n") + "\n")
    assert f"{len(STDLIB_FILES)} source files" in description and "skipped" not in description


def test_files_are_normalised_and_joined_by_a_blank_line(monkeypatch, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "a.py").write_bytes(b"x = 1\r\nif x:\r\n\tpass\r\n\r\n")
    (tmp_path / "pkg" / "__init__.py").write_bytes(b"y = 2")
    fake_stdlib(monkeypatch, tmp_path, ("pkg/__init__.py", "a.py"))
    text, description = default_corpus()
    assert text == "y = 2\n\nx = 1\nif x:\n\tpass\n"
    assert "2 source files" in description


def test_missing_files_are_skipped_and_named(monkeypatch, tmp_path):
    (tmp_path / "a.py").write_text("a = 1\n")
    fake_stdlib(monkeypatch, tmp_path, ("gone.py", "a.py", "also/gone.py"))
    text, description = default_corpus()
    assert text == "a = 1\n"
    assert "skipped: gone.py, also/gone.py" in description


def test_no_files_at_all_is_an_input_error(monkeypatch, tmp_path):
    fake_stdlib(monkeypatch, tmp_path, ("gone.py",))
    with pytest.raises(InputError, match="no standard-library sources"):
        default_corpus()


def test_split_train_valid_takes_the_first_and_last_parts():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    train, valid = split_train_valid(text)
    assert (len(train), len(valid)) == (900, 100)
    assert train + valid == text
    assert split_train_valid(text, 0.25)[1] == text[750:]


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_split_train_valid_rejects_fractions_outside_0_1(fraction):
    with pytest.raises(InputError):
        split_train_valid("abc", fraction)
