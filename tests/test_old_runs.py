"""Run directories written by rnnkit 0.1 (before the task registry, the regularisers and the recorded best
epoch) still load (``rnnkit.load`` too), sample, evaluate and resume. ``tests/golden/runs-0.1`` holds two tiny runs made by that
version (commit 95ef88e) with the data they were trained on:

    rnnkit train lm --data corpus.txt --hidden 8 --layers 1 --embedding 4 --seq-len 8 --batch-size 2 --epochs 1
    rnnkit train classify --data texts.csv --hidden 6 --embedding 4 --epochs 2 --batch-size 8 --valid-fraction 0.25
"""

import json
import shutil
from pathlib import Path

from cli_helpers import run_cli

import rnnkit
from rnnkit.cli.json_output import to_json
from rnnkit.train import RunDirectory

OLD = Path(__file__).parent / "golden" / "runs-0.1"


def copy_of(tmp_path: Path, name: str) -> Path:
    shutil.copytree(OLD / name, tmp_path / name)
    return tmp_path / name


def epochs_of(run: Path) -> list:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_an_old_language_model_run_samples_evaluates_and_resumes(tmp_path, capsys):
    run = copy_of(tmp_path, "lm_run")
    code, sample, err = run_cli(capsys, "generate", run, "--length", "20", "--seed", "0", "--prime", "the")
    assert code == 0 and sample.startswith("the") and len(sample) > len("the\n"), err
    code, out, err = run_cli(capsys, "evaluate", run, "--data", OLD / "corpus.txt", "--json")
    assert code == 0 and json.loads(out)["tokens"] > 0, err

    code, out, err = run_cli(capsys, "train", "lm", "--resume", run, "--data", OLD / "corpus.txt", "--epochs", "2",
                             "--quiet", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["stop_reason"] == "epochs" and report["epoch"] == 2
    assert epochs_of(run) == [1, 2]  # continued, not retrained
    model = RunDirectory.open(run).load().meta["configs"]["model"]
    assert (model["hidden_size"], model["embedding_dim"], model["cell"]) == (8, 4, "lstm")


def test_old_runs_load_as_python_objects_that_evaluate_as_the_command_does(capsys):
    lm = rnnkit.load(OLD / "lm_run")
    assert lm.task == "lm" and lm.model.config.hidden_size == 8
    code, out, err = run_cli(capsys, "evaluate", OLD / "lm_run", "--data", OLD / "corpus.txt", "--json")
    assert code == 0 and json.loads(to_json(lm.evaluate(OLD / "corpus.txt"))) == json.loads(out), err
    assert lm.generate(prime="the", length=10, seed=0)["text"] != ""
    classifier = rnnkit.load(OLD / "classify_run", checkpoint="latest")
    assert classifier.evaluate(data=OLD / "texts.csv")["examples"] == 40
    assert classifier.predict(["a lovely film"])[0]["label"] in ("pos", "neg")


def test_an_old_classifier_run_resumes_and_reports_its_best_epoch(tmp_path, capsys):
    run = copy_of(tmp_path, "classify_run")
    texts = OLD / "texts.csv"
    code, out, err = run_cli(capsys, "evaluate", run, "--data", texts, "--json")
    assert code == 0 and json.loads(out)["examples"] == 40, err

    code, out, err = run_cli(capsys, "train", "classify", "--resume", run, "--data", texts, "--epochs", "3",
                             "--quiet", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert epochs_of(run) == [1, 2, 3]
    # Checkpoints of 0.1 did not record the best epoch: it is found in the run's history, first of equals.
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = max(records, key=lambda record: record["valid_accuracy"])
    assert (report["best_epoch"], report["best_valid_accuracy"]) == (best["epoch"], best["valid_accuracy"])
