"""Bad cell references (issue 26, user cells as plugins): ``--cell module:Class`` that cannot be a cell, in every
train command and through a --config file. Each is one line naming --cell and what is wrong, before any data is
read or any run directory made. (A plugin that imports, trains and is reloaded: tests/test_cell_plugins.py.)"""

from . import damage as d
from .cases import case, train

_REFERENCES = [
    # (id, the --cell value, words the line must hold)
    ("no-module", "rnnkit_no_such_package.cells:IndRNN", ("no module named 'rnnkit_no_such_package'", "PYTHONPATH")),
    ("no-submodule", "rnnkit.no_such_module:Cell", ("no module named 'rnnkit.no_such_module'",)),
    ("no-attribute", "rnnkit.nn:IndRNN", ("has no attribute 'IndRNN'",)),
    ("not-a-class", "json:dumps", ("not a cell class",)),
    ("not-a-cell", "collections:OrderedDict", ("not a cell class", "rnnkit.nn.Cell")),
    ("abstract-cell", "rnnkit.nn:Cell", ("does not define",)),
    ("empty-attribute", "json:", ("module:Class",)),
    ("empty-module", ":IndRNN", ("module:Class",)),
    ("two-colons", "a:b:c", ("module:Class",)),
    ("relative", ".cells:IndRNN", ("module:Class",)),
    ("path", "my/cells.py:IndRNN", ("module:Class",)),
    ("unknown-name", "indrnn2", ("unknown cell 'indrnn2'", "module:Class")),
]
for name, reference, words in _REFERENCES:
    case(f"plugin-train-lm--cell-{name}", train("lm", f"--cell '{reference}'"), "--cell", *words)
for task in ("classify", "tag", "forecast", "translate", "caption", "music"):
    case(f"plugin-train-{task}--cell-no-module", train(task, "--cell rnnkit_no_such_package:Cell"), "--cell",
         "'rnnkit_no_such_package'")
case("plugin-train-lm-config-cell-not-a-cell", train("lm", "--config {tmp}/c.toml"), "'cell'", "not a cell class",
     setup=d.write("c.toml", b'cell = "json:dumps"\n'))
