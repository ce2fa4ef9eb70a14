"""What the benchmark scripts share: running the ``rnnkit`` command, naming the CPU they ran on, and the
configurations the sentiment and tagging searches try."""

import platform
import subprocess
import sys
from pathlib import Path

# The search (--search): round one's model, then the open core's regularisers and the layer-normalised cell.
# Flags given here follow the benchmark's settings on the command line; the CLI takes a repeated flag's last value.
CONFIGS = {
    "lstm": [],
    "lstm-ed0.1-wd0.3": ["--embedding-dropout", "0.1", "--weight-drop", "0.3"],
    "lstm-ed0.1-rd0.25": ["--embedding-dropout", "0.1", "--recurrent-dropout", "0.25"],
    "lstm-ed0.1-rd0.5": ["--embedding-dropout", "0.1", "--recurrent-dropout", "0.5"],
    "layernorm_lstm-ed0.1-rd0.25": ["--cell", "layernorm_lstm", "--embedding-dropout", "0.1",
                                    "--recurrent-dropout", "0.25"],
}
SMOKE_CONFIGS = ["lstm", "lstm-ed0.1-rd0.25"]


def rnnkit(*args: str) -> str:
    """Run ``python -m rnnkit ARGS`` and return its stdout; on failure end the script with one line (rnnkit has
    printed its own one-line error on stderr above it)."""
    done = subprocess.run([sys.executable, "-m", "rnnkit", *args], text=True, stdout=subprocess.PIPE)
    if done.returncode:
        sys.exit(f"error: `rnnkit {args[0]} {args[1] if len(args) > 1 else ''}` exited with status {done.returncode}")
    return done.stdout


def cpu_model() -> str:
    """The "model name" line of /proc/cpuinfo (the hosts change between sessions), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
