"""Where rnnkit may write a file it was asked for (``--output``, ``--out``, ``--midi``, ...; ``output=`` in
Python): checked once, before any work, by :func:`check_output`, which everything that writes an output calls.

An output never replaces what the user already has:

* one of the command's own input files (``rnnkit predict RUN --data s.csv --output s.csv`` would overwrite the
  series it forecasts from), by the same path or through a link;
* one of a run directory's own files (``rnnkit explain RUN --out RUN/latest.json`` would replace the run's
  pointer with HTML, and the run could no longer be resumed or evaluated); other names inside a run directory
  are fine (``RUN/explain.html`` is explain's default);
* a symbolic link inside a run directory (the run directory is a closed world: nothing is written through a
  link there);
* a directory (the output is a file), or a path whose directory is missing, a file, or not writable.

:func:`check_output_directory` does the same for a command that writes a directory of outputs.

Example::

    check_output(options["output"], "--output", inputs=[options["data"]])
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnkit.errors import InputError
from rnnkit.files import TEMP_PREFIX, check_creatable, check_output_path, refuse_link

from .checkpoint import CHECKPOINTS_DIR, LATEST_POINTER, RUN_ENTRIES


def check_output(path: str | os.PathLike, flag: str, *, inputs=(), create_parent: bool = False,
                 example: str = "out.txt") -> Path:
    """``path`` as a Path, or InputError (one line naming ``flag``) if writing it could destroy something.

    Args:
        inputs: the files the command reads (None entries are skipped).
        create_parent: the command creates the output's directory when it is missing; otherwise a missing
            directory is refused here, before the work rather than after it.
        example: a file name to suggest when ``path`` is a directory.
    """
    # An empty path, a NUL, a loop of links, a block device; where the output lands (rnnkit.files.write_output
    # writes through a link to its destination, and into a character device or a pipe in place).
    destination, in_place = check_output_path(path, flag, example)
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path} is a directory; give the path of a file to write, e.g. {path / example}")
    for given in inputs:
        if given is not None and _same_file(path, Path(given)):
            raise InputError(f"{flag} {path} is the input file {given}; writing it would replace what is read: "
                             f"give another {flag}")
    for candidate in dict.fromkeys((path, destination)):  # the name given, and where a link leads
        run, entry = _run_holding(candidate)
        if run is not None and entry in RUN_ENTRIES:
            raise InputError(f"{flag} {path} is one of the files of the run directory {run}; writing it would "
                             f"damage the run: give another {flag} (any other name, e.g. {run / 'page.html'}, "
                             "is fine)")
        if run is not None and candidate == path:
            refuse_link(path, "file")  # the run directory is a closed world: never written through a link
    if in_place:
        return path  # a device or a pipe: nothing is created beside it
    parent = destination.parent
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


def check_output_directory(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a Path, or InputError if it cannot be the directory of a command's outputs: a file, a path
    under a file, a run directory or a place inside one (the outputs would mix with the run's files), or a
    directory that cannot be created or written."""
    path = Path(path)
    run, _ = _run_holding(path / "output")
    if run is not None:
        raise InputError(f"{flag} {path} is in the run directory {run}; give a directory of its own")
    blocking = next((p for p in (path, *path.parents) if os.path.lexists(p) and not p.is_dir()), None)
    if blocking is not None:
        raise InputError(f"{flag} {path}: {blocking} is a file, not a directory; choose another {flag}")
    check_creatable(path, flag)
    return path


def _run_holding(path: Path) -> tuple[Path | None, str | None]:
    """The run directory holding ``path`` and the entry of it that ``path`` lies in (``latest.json``,
    ``checkpoints``, ``explain.html``), or (None, None). A run directory is one that holds ``latest.json`` or
    ``checkpoints/``. The output itself is not resolved: a link there must be seen as a link."""
    candidate = path.parent.resolve() / path.name
    for directory in candidate.parents:
        if (directory / LATEST_POINTER).is_file() or (directory / CHECKPOINTS_DIR).is_dir():
            return directory, candidate.relative_to(directory).parts[0]
    return None, None
