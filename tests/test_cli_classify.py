"""`rnnkit train classify` / `evaluate` / `predict` end to end on tiny inline data: the classifier learns a
separable toy problem, prediction's output formats, padding that changes nothing, exact resume, the
stratified validation split, and every bad input giving one line on stderr, exit status 2 and nothing lost."""

import json
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rnnkit.cli import cli
from rnnkit.errors import InputError
from rnnkit.tasks import classify
from rnnkit.tasks.classify import ClassifyDataConfig, build_model, class_probabilities, load_data
from rnnkit.train import RunDirectory
from cli_helpers import assert_one_line_error, assert_resumed_exactly, run_cli, snapshot

GOOD, BAD = ["great", "superb", "lovely"], ["awful", "boring", "dreadful"]
FILLER = ["the", "film", "was", "a", "story", "plot", "really", "quite", "acting", "and", "music", "cast"]
TINY_MODEL = ["--hidden", "12", "--embedding", "12", "--dropout", "0", "--batch-size", "8", "--lr", "0.03",
              "--seed", "0", "--quiet"]


def toy_rows(n: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label): filler words and one word that decides the class, which is pos or neg in turn."""
    generator = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = generator.sample(FILLER, 4) + [generator.choice(GOOD if label == "pos" else BAD)]
        generator.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_csv(path: Path, rows, header="text,label") -> Path:
    path.write_text(header + "\n" + "".join(f'"{text}",{label}\n' for text, label in rows))
    return path


@pytest.fixture
def toy_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "toy.csv", toy_rows())


def train(capsys, data, out, *extra) -> dict:
    code, stdout, stderr = run_cli(capsys, "train", "classify", "--data", data, *TINY_MODEL, "--out", out, "--json", *extra)
    assert code == 0, stderr
    return json.loads(stdout)


# ------------------------------------------------------------------------------------------- happy paths


def test_learns_a_separable_toy_problem_then_evaluates_and_predicts(capsys, toy_csv, tmp_path):
    run = tmp_path / "run"
    report = train(capsys, toy_csv, run, "--valid", toy_csv, "--epochs", "8")
    assert report["stop_reason"] == "epochs" and report["epoch"] == 8
    assert {"valid_accuracy", "valid_macro_f1", "valid_loss", "best_epoch", "best_valid_accuracy"} <= report.keys()

    code, stdout, stderr = run_cli(capsys, "evaluate", run, "--data", toy_csv, "--json")
    assert code == 0, stderr
    scores = json.loads(stdout)
    assert scores["accuracy"] == 1.0 and scores["macro_f1"] == 1.0 and scores["examples"] == 40
    assert scores["labels"] == ["neg", "pos"] and scores["confusion"] == [[20, 0], [0, 20]]
    assert scores["per_class"]["pos"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 20}

    code, stdout, _ = run_cli(capsys, "evaluate", run, "--data", toy_csv, "--checkpoint", "best")
    assert code == 0 and stdout.startswith("accuracy 1.0000  macro F1 1.0000")
    assert "confusion counts" in stdout and "precision" in stdout

    texts = tmp_path / "texts.txt"
    texts.write_text("the plot was superb\nreally awful acting\n\n")
    code, stdout, stderr = run_cli(capsys, "predict", run, "--input", texts)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert len(lines) == 3
    label, probability, text = lines[0].split("\t")
    assert (label, text) == ("pos", "the plot was superb") and 0.5 < float(probability) <= 1
    assert lines[1].split("\t")[0] == "neg" and lines[1].endswith("\treally awful acting")
    assert lines[2].count("\t") == 2 and lines[2].endswith("\t")  # an empty line still gets its answer

    result = CliRunner().invoke(cli, ["predict", str(run), "--json"], input="lovely music\n")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["label"] == "pos" and answer["text"] == "lovely music"
    assert answer["probabilities"].keys() == {"neg", "pos"}
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
    assert answer["probability"] == answer["probabilities"]["pos"]


def test_human_report(capsys, toy_csv, tmp_path):
    code, stdout, stderr = run_cli(capsys, "train", "classify", "--data", toy_csv, *TINY_MODEL, "--max-steps", "2",
                                   "--valid-fraction", "0.25", "--out", tmp_path / "run")
    assert code == 0, stderr
    assert "validation: accuracy" in stdout and "rnnkit predict" in stdout and "stopped by max_steps" in stdout


def test_a_padded_batch_gives_each_text_its_own_probabilities():
    torch.manual_seed(0)
    model = build_model(30, 3, {"embedding_dim": 6, "hidden_size": 5, "bidirectional": True, "pooling": "max",
                                "num_layers": 2, "cell": "lstm"}).eval()
    texts = [[4, 5, 6, 7, 8, 9], [3], [10, 11, 12], [2, 2, 2, 2, 2, 2, 2, 2, 2]]
    batched = class_probabilities(model, texts)  # (4, 3), one padded batch
    for n, ids in enumerate(texts):
        torch.testing.assert_close(batched[n], class_probabilities(model, [ids])[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched.sum(1), torch.ones(4))


def test_stratified_split_is_seeded_and_keeps_every_class(toy_csv):
    config = ClassifyDataConfig(data=str(toy_csv), valid_fraction=0.25)
    first, again, other = load_data(config, seed=1), load_data(config, seed=1), load_data(config, seed=2)
    assert sorted(first.valid.targets) == [0] * 5 + [1] * 5 and len(first.train) == 30
    assert first.valid.ids == again.valid.ids and first.valid.ids != other.valid.ids
    assert first.labels == ["neg", "pos"] and first.vocab.symbols[:2] == ["<pad>", "<unk>"]


def test_resume_continues_exactly(capsys, toy_csv, tmp_path):
    settings = ["--dropout", "0.3", "--valid-fraction", "0.2"]  # dropout: the restored RNG must matter
    train(capsys, toy_csv, tmp_path / "straight", "--epochs", "2", *settings)
    train(capsys, toy_csv, tmp_path / "stopped", "--epochs", "1", *settings)
    code, stdout, stderr = run_cli(capsys, "train", "classify", "--resume", tmp_path / "stopped", "--epochs", "2",
                                   "--quiet", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["epoch"] == 2
    assert_resumed_exactly(tmp_path / "straight", tmp_path / "stopped", epochs=2)

    before = snapshot(tmp_path / "stopped")
    code, _, stderr = run_cli(capsys, "train", "classify", "--resume", tmp_path / "stopped", "--hidden", "20")
    assert_one_line_error(code, stderr, "--hidden 20 differs from the run's 12")
    assert snapshot(tmp_path / "stopped") == before


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("content, flags, words", [
    (None, [], ["no such file"]),
    (b"", [], ["is empty"]),
    (b"review,sentiment\nnice,pos\n", [], ["no column 'text'", "'review', 'sentiment'"]),
    (b"text,label\nnice film,pos\nbad film,\n", [], ["data.csv:3: empty label"]),
    (b"text,label\nnice film,pos\nbad film\n", [], ["data.csv:3:", "1 fields where the header has 2"]),
    (b"text,label\nnice film,pos\ngood film,pos\n", [], ["only one label ('pos')"]),
    (b"text,label\nnice film,pos\nun film tr\xe8s mauvais,neg\n", [], ["data.csv:3:", "offset 35", "--encoding cp1252"]),
    (b"a,pos\nb,neg\n", ["--no-header", "--text-column", "text"], ["needs a header", "--text-column 2"]),
])
def test_bad_training_data_is_one_line_and_creates_no_run(capsys, tmp_path, content, flags, words):
    data = tmp_path / "data.csv"
    if content is not None:
        data.write_bytes(content)
    code, _, stderr = run_cli(capsys, "train", "classify", "--data", data, *flags, "--out", tmp_path / "run")
    assert_one_line_error(code, stderr, *words)
    assert not (tmp_path / "run").exists()


def test_valid_labels_unknown_to_training_name_file_and_line(capsys, toy_csv, tmp_path):
    valid = write_csv(tmp_path / "valid.csv", [("great film", "pos"), ("meh film", "mixed")])
    code, _, stderr = run_cli(capsys, "train", "classify", "--data", toy_csv, "--valid", valid, "--out", tmp_path / "run")
    assert_one_line_error(code, stderr, "valid.csv:3:", "label 'mixed' never occurs in the training data", "'neg', 'pos'")


def test_a_failed_train_never_touches_an_existing_run(capsys, toy_csv, tmp_path):
    run = tmp_path / "run"
    train(capsys, toy_csv, run, "--max-steps", "1", "--valid-fraction", "0")
    before = snapshot(run)
    code, _, stderr = run_cli(capsys, "train", "classify", "--data", toy_csv, "--out", run)
    assert_one_line_error(code, stderr, "already holds a training run", "--overwrite")
    # --overwrite with data that cannot be read: the data is read first, so the old run survives
    code, _, stderr = run_cli(capsys, "train", "classify", "--data", toy_csv, "--text-column", "body",
                              "--out", run, "--overwrite")
    assert_one_line_error(code, stderr, "no column 'body'")
    assert snapshot(run) == before


def test_evaluate_and_predict_refuse_bad_requests(capsys, toy_csv, tmp_path):
    run = tmp_path / "run"
    train(capsys, toy_csv, run, "--max-steps", "1", "--valid-fraction", "0")
    unknown = write_csv(tmp_path / "test.csv", [("great film", "pos"), ("so-so", "meh")])
    code, _, stderr = run_cli(capsys, "evaluate", run, "--data", unknown)
    assert_one_line_error(code, stderr, "test.csv:3:", "label 'meh' never occurs")
    code, _, stderr = run_cli(capsys, "evaluate", run)
    assert_one_line_error(code, stderr, "give the labelled file to score with --data")
    code, _, stderr = run_cli(capsys, "predict", run, "--input", tmp_path / "missing.txt")
    assert_one_line_error(code, stderr, "missing.txt: no such file")
    code, _, stderr = run_cli(capsys, "predict", run, "--input", toy_csv, "--output", tmp_path / "out.csv")
    assert_one_line_error(code, stderr, "--output is not an option of task 'classify'; the tasks that take it: "
                                        "forecast, translate")


def test_the_classifier_of_a_run_of_another_task_is_refused(tmp_path):
    other = RunDirectory.create(tmp_path / "tagger")
    other.save(torch.nn.Linear(2, 2), {}, {"task": "tag", "configs": {}})
    with pytest.raises(InputError, match="holds a 'tag' run, not a 'classify' one"):
        classify.from_run(tmp_path / "tagger")
