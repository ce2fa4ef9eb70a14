"""The README's "Write your own cell" example runs as written (in a fresh process: it registers a cell)."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_write_your_own_cell_example_runs():
    text = README.read_text()
    section = text[text.index("### Write your own cell"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "@register_cell" in code and "check_cell" in code
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert result.returncode == 0, result.stderr
