"""Every ``>>>`` example in rnnkit's docstrings runs and prints what it says (doctest), one test per module.

The examples may use ``torch`` and ``np`` without importing them, as the docstrings of torch.nn do.
"""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest
import torch

import rnnkit

# rnnkit.nn.native._C is the native engine's compiled library: PyTorch loads it as ops, it is no Python module
MODULES = sorted(module.name for module in pkgutil.walk_packages(rnnkit.__path__, "rnnkit.")
                 if module.name not in ("rnnkit.__main__", "rnnkit.nn.native._C"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={**vars(module), "torch": torch, "np": np}):
        torch.manual_seed(0)
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} docstring examples of {name} failed (see above)"
