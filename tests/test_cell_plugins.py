"""Cells of the user's own package (issue 26, deliverable 4): ``--cell module:Class`` or a ``rnnkit.cells`` entry
point makes a cell defined outside rnnkit usable wherever a built-in one is, and every task takes every cell.

- a cell in a package in a temporary folder on PYTHONPATH trains (``rnnkit train lm --cell userpkg.cells:IndRNN``);
  fresh processes, which import it again from the spelling saved in the run, evaluate, generate, explain and
  resume it; without the folder on PYTHONPATH each says in one line which module is missing and how to fix it;
- a wrong spelling, a missing attribute, a class that is not a cell, a module that imports a missing package or
  raises: one line each, from the command line and from the library's models;
- an entry point (a temporary ``.dist-info`` folder with an ``entry_points.txt`` on ``sys.path``, as an installed
  package has): ``--cell NAME`` trains, and the run saves the entry point's ``module:Class``;
- every task trains one step with every registered cell and the plugin cell, on auto and, for the linear cells,
  on the scan engine (``rnnkit train tag --cell rglru --engine scan`` was refused for its character LSTM).
"""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bad_inputs.cases import train as train_line
from bad_inputs.workspace import Workspace, run_quietly
from cli_helpers import assert_one_line_error, run_cli
from rnnkit.errors import InputError
from rnnkit.nn import cell_names, get_cell

# The IndRNN of docs/extend/cell.md, in a package of the user's own (registered under a name of its own, so that it
# does not meet the docs page's "indrnn", which the docs tests register in this process).
CELLS_MODULE = '''
import torch
from rnnkit.nn import Cell, ParamSpec, Workspace


class IndRNN(Cell):
    """h_t = relu(x_t W_ih^T + b_ih + u * h_(t-1)): one recurrent weight per unit."""

    name = "{name}"
    recurrent_weight = None

    def parameter_specs(self, input_size):
        H = self.hidden_size
        return [ParamSpec("weight_ih", (H, input_size)), ParamSpec("weight_hh", (H,)),
                ParamSpec("bias_ih", (H,), bias=True)]

    def reference_step(self, p, x_t, state, h_in):
        a = x_t @ p["weight_ih"].t() + p["weight_hh"] * h_in
        if "bias_ih" in p:
            a = a + p["bias_ih"]
        return (torch.relu(a),), {{}}

    def workspace(self):
        return IndRNNWorkspace()


class IndRNNWorkspace(Workspace):
    def input_bias(self, p):
        return p.get("bias_ih")

    def start(self, gi, p, zero):
        self.u, self.h = p["weight_hh"], gi

    def step(self, t, bs, h_prev, c_prev):
        h = self.h[t, :bs]
        h.addcmul_(self.u, h_prev).clamp_(min=0)
        return h, None

    def hidden(self):
        return self.h

    def prepare_backward(self, h_prev, c_prev):
        self.h_prev, self.slope = h_prev, (self.h > 0).to(self.h.dtype)

    def allocate_gate_grads(self, zero):
        self.d_a = torch.zeros_like(self.h)

    def step_backward(self, t, bs, dh, dc):
        torch.mul(dh, self.slope[t, :bs], out=self.d_a[t, :bs])
        return self.u * self.slope[t, :bs], None

    def grad_input(self):
        return self.d_a

    def grad_params(self, needs):
        return {{"weight_hh": (self.d_a * self.h_prev).sum((0, 1)), "bias_ih": self.d_a.sum((0, 1))}}


class NotACell:
    pass


class Unfinished(Cell):
    name = "{name}_unfinished"
'''

REFERENCE = "userpkg.cells:IndRNN"
REGISTRY_NAME = "user_indrnn"
LM = shlex.split(train_line("lm", steps="--max-steps 3 --epochs 1"))  # {text} and {tmp}/out: the workspace's


def write_package(root: Path, package: str, name: str) -> Path:
    """A package ``package`` with the IndRNN (registered as ``name``) in ``package/cells.py``, under ``root``."""
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "cells.py").write_text(CELLS_MODULE.format(name=name))
    (root / "broken_cells.py").write_text("import torch\nraise RuntimeError('this module is broken')\n")
    (root / "needs_missing.py").write_text("import rnnkit_no_such_dependency\n")
    return root


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """The folder holding the user's package, on sys.path for this module (and on PYTHONPATH for subprocesses)."""
    root = write_package(tmp_path_factory.mktemp("user_code"), "userpkg", REGISTRY_NAME)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


@pytest.fixture(scope="module")
def plugin_run(plugin_path, tmp_path_factory) -> Path:
    """A language model trained in this process on the plugin cell (3 steps)."""
    workspace = Workspace(tmp_path_factory.mktemp("plugin_run"), runs={})
    code, _, err = run_quietly(workspace.format([*LM, "--cell", REFERENCE, "--save-every", "1"]))
    assert code == 0, err
    return workspace.path("out")


# Runs `rnnkit ARGV` for each ARGV of the JSON list in argv[1] in this process, as the console script does
# (bad_inputs.workspace.run_quietly: the process runs in tests/), and prints [[exit status, stdout, stderr], ...]
# as JSON.
_COMMANDS = """
import json, sys
from bad_inputs.workspace import run_quietly
print(json.dumps([run_quietly(argv) for argv in json.loads(sys.argv[1])]))
"""


def fresh_process(*commands, pythonpath: Path | None) -> list[tuple[int, str, str]]:
    """(exit status, stdout, stderr) of ``rnnkit ARGS`` for each of ``commands``, one after the other in one fresh
    Python process (which has imported no user cell), ``pythonpath`` its only PYTHONPATH entry (None: none)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([sys.executable, "-c", _COMMANDS, json.dumps([[str(a) for a in c] for c in commands])],
                          capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stderr
    return [tuple(result) for result in json.loads(done.stdout.strip().splitlines()[-1])]


# ------------------------------------------------------------------------------------------- through the CLI


def test_the_run_saves_the_reference_and_trains_the_plugin_cell(plugin_run):
    meta = json.loads((plugin_run / "latest.json").read_text())
    checkpoint = plugin_run / "checkpoints" / meta["checkpoint"] / "checkpoint.json"
    assert json.loads(checkpoint.read_text())["configs"]["model"]["cell"] == REFERENCE
    assert get_cell(REFERENCE).name == REGISTRY_NAME and REGISTRY_NAME in cell_names()


def test_a_fresh_process_evaluates_generates_explains_and_resumes_a_plugin_run(plugin_run, plugin_path, tmp_path):
    """The process imports the cell again from the spelling the run saved (evaluate is the first to)."""
    text = plugin_run.parent / "tiny.txt"
    evaluated, generated, explained, resumed = fresh_process(
        ["evaluate", plugin_run, "--data", text, "--json"],
        ["generate", plugin_run, "--length", "20", "--seed", "1", "--json"],
        ["explain", plugin_run, "--text", text, "--max-chars", "200", "--out", tmp_path / "page.html", "--json"],
        ["train", "lm", "--resume", plugin_run, "--max-steps", "5", "--quiet", "--json"],
        pythonpath=plugin_path)
    assert evaluated[0] == 0 and json.loads(evaluated[1])["loss"] > 0, evaluated[2]
    assert generated[0] == 0 and len(json.loads(generated[1])["text"]) >= 20, generated[2]
    assert explained[0] == 0 and json.loads(explained[1]), explained[2]
    assert resumed[0] == 0 and json.loads(resumed[1])["steps"] == 5, resumed[2]


def test_without_the_package_each_command_names_the_missing_module(plugin_run, tmp_path):
    """evaluate, generate, explain and resume of a plugin run, in a process that cannot import the package."""
    before = {p: p.stat().st_mtime_ns for p in plugin_run.rglob("*")}
    text = plugin_run.parent / "tiny.txt"
    results = fresh_process(["evaluate", plugin_run, "--data", text], ["generate", plugin_run, "--length", "5"],
                            ["explain", plugin_run, "--text", text, "--out", tmp_path / "p.html"],
                            ["train", "lm", "--resume", plugin_run, "--max-steps", "9", "--quiet"], pythonpath=None)
    for code, _, err in results:
        assert_one_line_error(code, err, "'userpkg'", "PYTHONPATH", "install")
    assert {p: p.stat().st_mtime_ns for p in plugin_run.rglob("*")} == before
    assert not (tmp_path / "p.html").exists()


@pytest.mark.parametrize("cell, words", [
    ("userpkg.cells:", ["'userpkg.cells:'", "module:Class"]),
    (":IndRNN", ["':IndRNN'", "module:Class"]),
    ("userpkg.cells:IndRNN:x", ["module:Class"]),
    ("1userpkg:IndRNN", ["module:Class"]),
    ("userpkg/cells:IndRNN", ["module:Class"]),
    ("transformer", ["unknown cell 'transformer'", "lstm", "module:Class"]),
    ("userpkg.nothere:IndRNN", ["no module named 'userpkg.nothere'", "PYTHONPATH"]),
    ("nosuchpackage_xyz.cells:IndRNN", ["no module named 'nosuchpackage_xyz'", "install", "PYTHONPATH"]),
    ("userpkg.cells:IndRNNN", ["has no attribute 'IndRNNN'"]),
    ("userpkg.cells:NotACell", ["not a cell class", "rnnkit.nn.Cell"]),
    ("userpkg.cells:Unfinished", ["does not define", "reference_step"]),
    ("userpkg.cells:torch", ["not a cell class"]),
    ("broken_cells:IndRNN", ["RuntimeError", "this module is broken"]),
    ("needs_missing:IndRNN", ["'rnnkit_no_such_dependency'", "install"]),
])
def test_a_bad_cell_reference_is_one_line(plugin_path, tmp_path, capsys, cell, words):
    workspace = Workspace(tmp_path, runs={})
    code, _, err = run_cli(capsys, *workspace.format([*LM, "--cell", cell]))
    assert_one_line_error(code, err, "--cell", *words)
    assert not workspace.path("out").exists()


def test_a_cell_whose_name_is_taken_is_refused(plugin_path, tmp_path, capsys):
    write_package(tmp_path / "other", "clashpkg", "lstm")
    sys.path.insert(0, str(tmp_path / "other"))
    try:
        code, _, err = run_cli(capsys, *Workspace(tmp_path, runs={}).format([*LM, "--cell", "clashpkg.cells:IndRNN"]))
    finally:
        sys.path.remove(str(tmp_path / "other"))
    assert_one_line_error(code, err, "--cell", "'lstm' is already registered")
    assert get_cell("lstm").__module__ == "rnnkit.nn.cells.lstm"


def test_the_library_models_take_a_reference(plugin_path):
    from rnnkit.models import Captioner, LanguageModel, Seq2Seq, SequenceClassifier

    model = LanguageModel(vocab_size=11, cell=REFERENCE, hidden_size=6, num_layers=2)
    logits, _ = model(torch.randint(0, 11, (2, 5)))  # (N=2, L=5, V=11)
    assert logits.shape == (2, 5, 11)
    assert model.config.cell == REFERENCE
    classifier = SequenceClassifier(3, input_size=4, cell=REFERENCE, hidden_size=5, bidirectional=True)
    assert classifier(torch.randn(2, 7, 4)).shape == (2, 3)
    with pytest.raises(InputError, match="no module named 'nosuchpackage_xyz'.*PYTHONPATH"):
        LanguageModel(vocab_size=11, cell="nosuchpackage_xyz:Cell")
    with pytest.raises(InputError, match="not a cell class"):
        LanguageModel(vocab_size=11, cell="userpkg.cells:NotACell")
    for build in (lambda cell: Seq2Seq(7, 9, cell=cell, hidden_size=4, embedding_dim=4),
                  lambda cell: Captioner(9, 8, 24, cell=cell, hidden_size=4)):
        assert build(REFERENCE).config["cell"] == REFERENCE
        with pytest.raises(InputError, match="no module named 'nosuchpackage_xyz'"):
            build("nosuchpackage_xyz:Cell")


# ------------------------------------------------------------------------------------------- entry points


@pytest.fixture
def entry_point(tmp_path, monkeypatch):
    """An installed-looking distribution on sys.path declaring the cell ``user_ep_cell`` in ``rnnkit.cells``."""
    write_package(tmp_path, "eppkg", "user_ep_indrnn")
    info = tmp_path / "eppkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: eppkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rnnkit.cells]\nuser_ep_cell = eppkg.cells:IndRNN\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_an_entry_point_cell_trains_and_the_run_saves_its_module(entry_point, tmp_path, capsys):
    from rnnkit.nn.cells.plugins import entry_point_names

    assert "user_ep_cell" in entry_point_names()
    assert "user_ep_cell" in run_cli(capsys, "train", "lm", "--help")[1]  # listed among --cell's names
    workspace = Workspace(tmp_path / "work", runs={})
    code, _, err = run_cli(capsys, *workspace.format([*LM, "--cell", "user_ep_cell"]))
    assert code == 0, err
    run = workspace.path("out")
    name = json.loads((run / "latest.json").read_text())["checkpoint"]
    saved = json.loads((run / "checkpoints" / name / "checkpoint.json").read_text())["configs"]["model"]["cell"]
    assert saved == "eppkg.cells:IndRNN"
    assert get_cell("user_ep_cell") is get_cell(saved)
    code, out, err = run_cli(capsys, "evaluate", run, "--data", workspace["text"], "--json")
    assert code == 0 and json.loads(out)["loss"] > 0, err


# ------------------------------------------------------------------------------------------- every task, every cell

_LINEAR = [name for name in cell_names() if getattr(get_cell(name), "linear", False)]


@pytest.mark.parametrize("task", ["lm", "classify", "tag", "forecast", "translate", "caption", "music"])
def test_every_task_trains_with_every_cell(task, plugin_path, tmp_path):
    """One optimizer step per (cell, engine): every registered cell and the plugin cell on auto, and the linear
    cells on the scan engine too (the tagger's character LSTM then runs on auto)."""
    workspace = Workspace(tmp_path, runs={})
    trials = [(cell, "auto") for cell in (*cell_names(), REFERENCE)] + [(cell, "scan") for cell in _LINEAR]
    failed = []
    for index, (cell, engine) in enumerate(trials):
        line = train_line(task, f"--cell {cell} --engine {engine}", steps="--max-steps 1 --epochs 1")
        argv = workspace.format(shlex.split(line.replace("{tmp}/out", f"{{tmp}}/out{index}")))
        code, _, err = run_quietly(argv)
        if code != 0:
            failed.append(f"{cell} on {engine}: {err.strip()}")
    assert not failed, "\n".join(failed)
    assert len(trials) >= len(cell_names()) + len(_LINEAR)
