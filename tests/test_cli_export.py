"""`rnnkit export RUN --format onnx --out FILE [--quantize int8] [--json]`: the files it lists exist and run, int8
reports the validation change and sizes, and every bad input is one line that leaves the user's files as they were."""

import json

import pytest

from bad_inputs.workspace import RUNS, Workspace, run_quietly
from cli_helpers import assert_one_line_error, run_cli, snapshot

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-export")
    inputs = Workspace(root / "data", runs={})
    argv = ["train", "classify", *inputs.format(RUNS["classify"][1]), "--seed", "0", "--quiet", "--out",
            str(root / "run")]
    code, _, stderr = run_quietly(argv)
    assert code == 0, stderr
    return root / "run"


def test_export_lists_the_files_it_wrote(capsys, classify_run, tmp_path):
    code, out, err = run_cli(capsys, "export", classify_run, "--out", tmp_path / "clf.onnx", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["files"] == [str(tmp_path / "clf.onnx")] and report["quantize"] is None
    live = onnxruntime.InferenceSession(report["files"][0], providers=["CPUExecutionProvider"])
    assert [i.name for i in live.get_inputs()] == ["ids", "lengths"]
    code, out, err = run_cli(capsys, "export", classify_run, "--out", tmp_path / "clf.onnx")
    assert code == 0 and out.startswith(f"wrote {tmp_path / 'clf.onnx'} ("), err  # replaced, as every output is


def test_quantize_reports_the_validation_change_and_sizes(capsys, classify_run, tmp_path):
    code, out, err = run_cli(capsys, "export", classify_run, "--out", tmp_path / "q.onnx", "--quantize", "int8",
                             "--json")
    assert code == 0, err
    measured = json.loads(out)["validation"]
    assert set(measured["float32"]) >= {"loss", "accuracy"} and set(measured["int8"]) == set(measured["float32"])
    assert measured["change"]["accuracy"] == pytest.approx(measured["int8"]["accuracy"]
                                                           - measured["float32"]["accuracy"])
    assert measured["int8_bytes"] == (tmp_path / "q.onnx").stat().st_size
    meta = onnxruntime.InferenceSession(str(tmp_path / "q.onnx")).get_modelmeta().custom_metadata_map
    assert meta["rnnkit.quantized"] == "int8"


@pytest.mark.parametrize("case, words", [
    ("not-a-run", ["does not exist"]),
    ("missing-folder", ["does not exist"]),
    ("run-file", ["run directory"]),
    ("pt2-int8", ["--quantize int8", "--format onnx"]),
])
def test_bad_inputs_are_one_line_and_change_nothing(capsys, classify_run, tmp_path, case, words):
    (tmp_path / "keep.onnx").write_bytes(b"mine")
    before = snapshot(classify_run)
    argv = {"not-a-run": [tmp_path / "nothing", "--out", tmp_path / "keep.onnx"],
            "missing-folder": [classify_run, "--out", tmp_path / "no" / "where.onnx"],
            "run-file": [classify_run, "--out", classify_run / "latest.json"],
            "pt2-int8": [classify_run, "--format", "exported-program", "--quantize", "int8", "--out",
                         tmp_path / "keep.onnx"]}[case]
    code, _, err = run_cli(capsys, "export", *argv)
    assert_one_line_error(code, err, *words)
    assert snapshot(classify_run) == before
    assert (tmp_path / "keep.onnx").read_bytes() == b"mine"
