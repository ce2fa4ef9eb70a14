"""`rnnkit train translate`, `rnnkit translate`, `rnnkit evaluate` and `rnnkit predict` end to end on tiny
parallel text, and every bad input giving one line on stderr, a non-zero exit and nothing lost."""

import gzip
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnnkit.cli import main
from rnnkit.train import RunDirectory
from cli_helpers import run_cli, snapshot

SUBJECTS = {"ein Hund": "A dog", "eine Frau": "A woman", "ein Mann": "A man", "eine Katze": "A cat"}
VERBS = {"läuft": "runs", "schläft": "sleeps", "spielt": "plays", "singt": "sings"}
PLACES = {"": "", " im Park": " in the park", " am Strand": " on the beach"}
TINY_MODEL = ["--hidden", "8", "--embedding", "8", "--batch-size", "8", "--seed", "0", "--min-freq", "1"]


def sentence_pairs():
    return [(f"{s} {v}{p}.", f"{S} {V}{P}.") for s, S in SUBJECTS.items() for v, V in VERBS.items()
            for p, P in PLACES.items()]  # 48 pairs


def write_lines(path: Path, lines) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Training files (gzip-compressed source, with one empty line) and validation files."""
    root = tmp_path_factory.mktemp("parallel")
    pairs = sentence_pairs()
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    sources.insert(5, "")  # an empty source line: the pair is skipped and counted
    targets.insert(5, "A lonely line.")
    (root / "train.de.gz").write_bytes(gzip.compress("".join(s + "\n" for s in sources).encode()))
    write_lines(root / "train.en", targets)
    write_lines(root / "valid.de", sources[::6])
    write_lines(root / "valid.en", targets[::6])
    return root


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A run trained for two epochs; returns (run directory, its JSON report, the training stderr)."""
    run = tmp_path_factory.mktemp("runs") / "de-en"
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        main(["train", "translate", "--source", str(data / "train.de.gz"), "--target", str(data / "train.en"),
              "--valid-source", str(data / "valid.de"), "--valid-target", str(data / "valid.en"), *TINY_MODEL,
              "--epochs", "2", "--beam", "3", "--out", str(run), "--json"])
    return run, json.loads(stdout.getvalue()), stderr.getvalue()


def test_training_reports_validation_bleu_and_counts_skipped_pairs(trained):
    run, report, stderr = trained
    assert report["stop_reason"] == "epochs" and 0 <= report["valid_bleu"] <= 100
    assert report["valid_perplexity"] > 1
    assert "skipped 1 pairs with an empty side (lines 6)" in stderr
    assert (run / "best.json").is_file()  # the best validation BLEU so far
    meta = RunDirectory.open(run).load().meta
    assert meta["task"] == "translate" and meta["configs"]["decode"]["beam_size"] == 3
    assert meta["configs"]["model"]["attention"] == "additive"


def test_translate_keeps_line_alignment_from_a_file_and_from_stdin(trained, tmp_path, capsys, monkeypatch):
    run, _, _ = trained
    source = write_lines(tmp_path / "in.de", ["ein Hund läuft.", "", "eine Katze singt am Strand."])
    code, out, err = run_cli(capsys, "translate", run, "--input", source, "--beam", "2")
    assert code == 0, err
    lines = out.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == ""  # an empty line stays an empty line
    code, out, _ = run_cli(capsys, "translate", run, "--json", "--beam", "1", stdin="ein Mann spielt.\n",
                           monkeypatch=monkeypatch)
    assert code == 0 and json.loads(out)["source"] == "ein Mann spielt."
    code, out, _ = run_cli(capsys, "predict", run, "--input", source, "--output", tmp_path / "out.en")
    assert code == 0 and (tmp_path / "out.en").read_text().count("\n") == 3


def test_evaluate_prints_sacrebleu_bleu_and_chrf(trained, data, capsys):
    run, _, _ = trained
    code, out, err = run_cli(capsys, "evaluate", run, "--source", data / "valid.de", "--target", data / "valid.en",
                             "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert 0 <= metrics["bleu"] <= 100 and 0 <= metrics["chrf"] <= 100 and metrics["sentences"] == 9
    assert metrics["beam_size"] == 3 and "tok:13a" in metrics["bleu_signature"]
    code, out, _ = run_cli(capsys, "evaluate", run, "--source", data / "valid.de", "--target", data / "valid.en")
    assert code == 0 and out.startswith("BLEU ") and "chrF" in out


@pytest.mark.parametrize("connection", ["none", "dot", "general"])
def test_every_connection_trains_and_translates(connection, data, tmp_path, capsys):
    run = tmp_path / connection
    code, out, err = run_cli(capsys, "train", "translate", "--source", data / "valid.de", "--target",
                             data / "valid.en", "--valid-fraction", "0.2", *TINY_MODEL, "--attention", connection,
                             "--teacher-forcing", "0.5", "--label-smoothing", "0.1", "--max-steps", "2",
                             "--out", run, "--quiet")
    assert code == 0, err
    assert f"rnnkit translate {run}" in out
    code, out, err = run_cli(capsys, "translate", run, "--input", data / "valid.de", "--beam", "2")
    assert code == 0 and out.count("\n") == 9


# ------------------------------------------------------------------------------------------- bad input


def test_files_of_different_line_counts_are_refused_naming_both_counts(data, tmp_path, capsys):
    short = write_lines(tmp_path / "short.en", ["A dog runs."] * 3)
    code, _, err = run_cli(capsys, "train", "translate", "--source", data / "valid.de", "--target", short,
                           "--out", tmp_path / "run")
    assert code == 2
    assert err.count("\n") == 1 and "valid.de has 9 lines but" in err and "short.en has 3" in err
    assert not (tmp_path / "run").exists()


def test_long_sentences_are_truncated_with_a_count(tmp_path, capsys):
    # 4 tokens fit (ein Hund läuft ￭.); 6 do not (ein Hund läuft im Park ￭.)
    source = write_lines(tmp_path / "s.de", ["ein Hund läuft.", "ein Hund läuft im Park.", "eine Katze singt.",
                                             "eine Katze singt am Strand."])
    target = write_lines(tmp_path / "t.en", ["A dog runs.", "A dog runs.", "A cat sings.", "A cat sings."])
    code, _, err = run_cli(capsys, "train", "translate", "--source", source, "--target", target, "--valid-source",
                           source, "--valid-target", target, *TINY_MODEL, "--max-length", "4", "--max-steps", "1",
                           "--out", tmp_path / "run", "--quiet")
    assert code == 0
    assert "warning: training source: 2 sentences longer than 4 tokens were truncated" in err
    assert "warning: validation source: 2 sentences longer than 4 tokens were truncated" in err
    assert "target" not in err  # no English sentence is longer than 4 tokens


def test_unknown_tokens_are_counted(trained, tmp_path, capsys):
    run, _, _ = trained
    source = write_lines(tmp_path / "in.de", ["ein Zebra läuft.", "ein Hund"])
    code, out, err = run_cli(capsys, "translate", run, "--input", source)
    assert code == 0 and out.count("\n") == 2
    assert "warning: input: 1 of 6 tokens (16.7%) are not in the vocabulary and read as <unk>" in err


def test_a_checkpoint_of_another_task_is_refused(tmp_path, capsys):
    other = RunDirectory.create(tmp_path / "lm-run")
    other.save(torch.nn.Linear(1, 1), {}, {"task": "lm", "configs": {}})
    code, _, err = run_cli(capsys, "translate", tmp_path / "lm-run")
    assert code == 2 and "holds a 'lm' run, not a 'translate' one" in err and "rnnkit train translate" in err


def test_evaluate_needs_source_and_target(trained, data, capsys):
    run, _, _ = trained
    code, _, err = run_cli(capsys, "evaluate", run, "--source", data / "valid.de")
    assert code == 2 and "--target FILE" in err
    code, _, err = run_cli(capsys, "evaluate", run, "--data", data / "valid.de")
    assert code == 2 and "--data is not an option of task 'translate'; the tasks that take it: caption," in err


def test_failures_lose_nothing(trained, data, tmp_path, capsys, monkeypatch):
    run, _, _ = trained
    before = snapshot(run)
    short = write_lines(tmp_path / "short.en", ["A dog runs."])
    code, _, _ = run_cli(capsys, "train", "translate", "--source", data / "valid.de", "--target", short,
                         "--out", run, "--overwrite")
    assert code == 2 and snapshot(run) == before  # bad data is found before the old run is replaced
    output = write_lines(tmp_path / "out.en", ["an earlier translation"])
    code, _, err = run_cli(capsys, "translate", run, "--output", output, stdin="\n\n", monkeypatch=monkeypatch)
    assert code == 2 and "holds no sentence to translate" in err
    assert output.read_text() == "an earlier translation\n"
    code, _, err = run_cli(capsys, "translate", run, "--input", tmp_path / "missing.de", "--output", output)
    assert code == 2 and "no such file" in err and output.read_text() == "an earlier translation\n"


def test_bad_settings_are_refused(data, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "translate", "--source", data / "valid.de", "--target",
                           data / "valid.en", "--valid-source", data / "valid.de", "--out", tmp_path / "run")
    assert code == 2 and "both --valid-source and --valid-target" in err
    code, _, err = run_cli(capsys, "train", "translate", "--source", data / "valid.de", "--target",
                           data / "valid.en", "--attention", "dot", "--decoder-hidden", "7", "--out", tmp_path / "run")
    assert code == 2 and "use general attention or equal sizes" in err and not (tmp_path / "run").exists()


def test_a_resumed_run_continues_exactly(data, tmp_path, capsys):
    def weights(run):
        name = json.loads((run / "latest.json").read_text())["checkpoint"]
        return load_file(run / "checkpoints" / name / "weights.safetensors")

    common = ["train", "translate", "--source", data / "valid.de", "--target", data / "valid.en", "--valid-fraction",
              "0.2", *TINY_MODEL, "--batch-size", "3", "--teacher-forcing", "0.5", "--quiet"]
    assert run_cli(capsys, *common, "--epochs", "2", "--out", tmp_path / "straight")[0] == 0
    assert run_cli(capsys, *common, "--epochs", "1", "--out", tmp_path / "halves")[0] == 0
    code, _, err = run_cli(capsys, "train", "translate", "--resume", tmp_path / "halves", "--epochs", "2", "--quiet")
    assert code == 0, err
    straight, halves = weights(tmp_path / "straight"), weights(tmp_path / "halves")
    assert straight.keys() == halves.keys() and all(torch.equal(straight[k], halves[k]) for k in straight)
    code, _, err = run_cli(capsys, "train", "translate", "--resume", tmp_path / "halves", "--attention", "dot")
    assert code == 2 and "--attention dot differs from the run's additive" in err
