"""Where a command may write a file it was asked for (``--output``, ``--out``, ``--midi``, ...): checked once,
before any work, by :func:`check_output`, which every command that writes an output calls.

An output never replaces what the user already has:

* one of the command's own input files (``rnnkit predict RUN --data s.csv --output s.csv`` would overwrite the
  series it forecasts from), by the same path or through a link;
* one of a run directory's own files (``rnnkit explain RUN --out RUN/latest.json`` would replace the run's
  pointer with HTML, and the run could no longer be resumed or evaluated); other names inside a run directory
  are fine (``RUN/explain.html`` is explain's default);
* a directory (the output is a file), or a path whose directory is missing, a file, or not writable.

Example::

    check_output(options["output"], "--output", inputs=[options["data"]])
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnkit.errors import InputError
from rnnkit.files import TEMP_PREFIX, check_creatable
from rnnkit.train.checkpoint import CHECKPOINTS_DIR, LATEST_POINTER, RUN_ENTRIES


def check_output(path: str | os.PathLike, flag: str, *, inputs=(), create_parent: bool = False,
                 example: str = "out.txt") -> Path:
    """``path`` as a Path, or InputError (one line naming ``flag``) if writing it could destroy something.

    Args:
        inputs: the files the command reads (None entries are skipped).
        create_parent: the command creates the output's directory when it is missing; otherwise a missing
            directory is refused here, before the work rather than after it.
        example: a file name to suggest when ``path`` is a directory.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path} is a directory; give the path of a file to write, e.g. {path / example}")
    for given in inputs:
        if given is not None and _same_file(path, Path(given)):
            raise InputError(f"{flag} {path} is the input file {given}; writing it would replace what is read: "
                             f"give another {flag}")
    run = _run_holding(path)
    if run is not None:
        raise InputError(f"{flag} {path} is one of the files of the run directory {run}; writing it would damage "
                         f"the run: give another {flag} (any other name, e.g. {run / 'page.html'}, is fine)")
    parent = path.parent
    blocking = next((p for p in (parent, *parent.parents) if os.path.lexists(p) and not p.is_dir()), None)
    if blocking is not None:
        raise InputError(f"{flag} {path}: {blocking} is a file, not a directory; choose another {flag}")
    if not create_parent and not parent.exists():
        raise InputError(f"{flag} {path}: directory {parent} does not exist; create it or choose another {flag}")
    check_creatable(parent, flag)  # a read-only mount, no permission
    return path


def _same_file(output: Path, given: Path) -> bool:
    """Whether writing ``output`` (through its temporary sibling, see :func:`rnnkit.files.write_atomic`)
    would replace the file ``given``: the same file (links followed) or the same resolved path."""
    for candidate in (output, output.with_name(TEMP_PREFIX + output.name)):
        if candidate.exists() and given.exists():
            if os.path.samefile(candidate, given):
                return True
        elif candidate.resolve() == given.resolve():
            return True
    return False


def _run_holding(path: Path) -> Path | None:
    """The run directory of which ``path`` is one of the own files (pointer, metrics, lock, anything under
    checkpoints/), or None. A run directory is one that holds ``latest.json`` or ``checkpoints/``."""
    resolved = path.resolve()
    for directory in resolved.parents:
        if (directory / LATEST_POINTER).is_file() or (directory / CHECKPOINTS_DIR).is_dir():
            entry = resolved.relative_to(directory).parts[0]
            return directory if entry in RUN_ENTRIES else None
    return None
