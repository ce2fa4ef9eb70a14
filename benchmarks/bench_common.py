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


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # the canonical copies, where a checkout has them


def add_data_argument(parser, name: str) -> None:
    """``--data NAME|PATH``: where the benchmark reads dataset ``name`` from (see :func:`dataset_path`)."""
    parser.add_argument("--data", metavar="NAME|PATH", default=None,
                        help=f"the {name} data: the name {name} (the copy `rnnkit data get {name}` downloaded) or a "
                             f"folder holding its files. Default: ../shared/data/{name} when it exists, else the "
                             "downloaded copy")


def dataset_path(given: str | None, name: str, file: str | None = None) -> Path:
    """The folder of dataset ``name`` (or its ``file``): ``--data`` as given (an existing folder or file, or the
    dataset's name: its copy under RNNKIT_DATA), else ../shared/data/NAME when it exists, else the downloaded
    copy. A name of another dataset, or a copy not downloaded, ends the script with one line."""
    from rnnkit.data.catalog import dataset

    if given is not None and Path(given).exists():
        folder = Path(given)
        return folder / file if file and folder.is_dir() else folder
    if given is None and (SHARED_DATA / name).is_dir():
        folder = SHARED_DATA / name
    else:
        if given not in (None, name):
            sys.exit(f"error: --data {given}: no such path, and this benchmark reads dataset {name}; give --data "
                     f"{name} or a folder holding its files")
        found = dataset(name)
        if found.state() != "present":
            sys.exit(f"error: dataset {name} is not downloaded ({found.folder}); run `rnnkit data get {name}`")
        folder = found.folder
    return folder / file if file else folder
