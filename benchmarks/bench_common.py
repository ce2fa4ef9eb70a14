"""What the benchmark scripts share: running the ``rnnkit`` command, and naming the CPU they ran on."""

import platform
import subprocess
import sys
from pathlib import Path


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
