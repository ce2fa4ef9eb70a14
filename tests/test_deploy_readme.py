"""The README's "Deploy" example runs with onnxruntime and numpy alone: torch and rnnkit cannot be imported there.

A tiny language model is trained and exported with `rnnkit export`, then the README's code block runs in a fresh
interpreter whose import system refuses ``torch`` and ``rnnkit`` (a meta-path finder that raises ImportError), in the
folder of the exported files. It must print the prime and what it sampled: 301 characters, those after the prime from the vocabulary.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cli import main

pytest.importorskip("onnxruntime", reason="the Deploy example needs onnxruntime (the export extra)")

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKER = '''
import sys

class Refuse:
    """No torch, no rnnkit: what a machine with only onnxruntime and numpy has."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "rnnkit"):
            raise ImportError(f"{name} is not installed here")

sys.meta_path.insert(0, Refuse())
'''


def deploy_example() -> str:
    text = README.read_text(encoding="utf-8")
    marker = text.index("$ rnnkit export runs/code --format onnx --out code.onnx")
    return re.search(r"```python\n(.*?)```", text[marker:], re.S).group(1)


def test_the_readme_example_generates_without_torch_or_rnnkit(tmp_path):
    run, out = tmp_path / "code", tmp_path / "deploy"
    out.mkdir()
    assert main(["train", "lm", "--max-steps", "3", "--hidden", "16", "--layers", "1", "--quiet", "--out", str(run)]) in (0, None)
    assert main(["export", str(run), "--format", "onnx", "--out", str(out / "code.onnx")]) in (0, None)
    done = subprocess.run([sys.executable, "-c", BLOCKER + deploy_example()], cwd=out, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    printed = done.stdout[:-1]  # print's newline
    assert printed.startswith("def ") and len(printed) == 300 + 1  # 300 steps read, each the previous output
    import onnxruntime

    metadata = onnxruntime.InferenceSession(str(out / "code.step.onnx")).get_modelmeta().custom_metadata_map
    symbols = set(json.loads(metadata["rnnkit.vocabulary"])["vocab"]["symbols"])
    assert set(printed[4:]) <= symbols


def test_the_blocker_blocks():
    done = subprocess.run([sys.executable, "-c", BLOCKER + "import torch"], capture_output=True, text=True)
    assert done.returncode != 0 and "torch is not installed here" in done.stderr
