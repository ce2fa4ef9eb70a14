"""What a run directory holds, and which state it is in: a run, the remains of one, or leftovers.

The entries rnnkit writes at the top of a run directory are :data:`RUN_ENTRIES`; everything else there is the
user's and is never touched. A directory is in one of three states (:func:`state_of`):

* ``"run"``: its commit point ``latest.json`` is there;
* ``"remains"``: no ``latest.json``, but what only a run that got past its first checkpoint leaves
  (``best.json``, ``metrics.jsonl``, or more than one finished checkpoint): ``latest.json`` was deleted by hand
  or lost. Nothing clears remains without ``--overwrite``, and every command says so in one line;
* ``"leftovers"``: nothing, or what a start killed before its first checkpoint leaves (temporary checkpoints,
  a ``gradients.jsonl``, at most one finished checkpoint cut off just before its pointer, a stale ``.lock``),
  or the staged pointer of an ``--overwrite`` cut off in its switch: rnnkit's own, holding no run; a new
  training clears them.

Example::

    state_of(Path("runs/x"))        # "run"
    raise no_run_error(Path("runs/y"))  # the one line for a directory without latest.json
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnkit.errors import InputError
from rnnkit.files import TEMP_PREFIX, fsync_directory, refuse_link, write_atomic

from .checkpoint_files import complete_checkpoints, remove_checkpoint, written_entries
from .lock import LOCK_FILE
from .strict_json import signed_json

LATEST_POINTER = "latest.json"
BEST_POINTER = "best.json"
METRICS_FILE = "metrics.jsonl"
GRADIENTS_FILE = "gradients.jsonl"
CHECKPOINTS_DIR = "checkpoints"
# Every file a run writes at the top of its directory, the commit point first: removed in this order, a
# run is never half there (whatever is left without latest.json is leftovers or remains, not a run).
RUN_FILES = (LATEST_POINTER, BEST_POINTER, METRICS_FILE, GRADIENTS_FILE)
# What a run that replaces another (--overwrite) writes before its switch: its records, then its pointer
# (STAGED_LATEST, the mark of a switch in progress).
STAGED_PREFIX = ".new-"
STAGED_FILES = tuple(STAGED_PREFIX + name for name in RUN_FILES)
STAGED_LATEST = STAGED_FILES[0]
RUN_ENTRIES = {*RUN_FILES, *STAGED_FILES, *(TEMP_PREFIX + name for name in (*RUN_FILES, *STAGED_FILES)),
               CHECKPOINTS_DIR, LOCK_FILE}


def state_of(path: Path) -> str:
    """``"run"``, ``"remains"`` or ``"leftovers"`` (module docstring); changes nothing."""
    if os.path.lexists(path / LATEST_POINTER):
        return "run"
    if not path.is_dir() or os.path.lexists(path / STAGED_LATEST):
        return "leftovers"
    records = any(os.path.lexists(path / name) for name in (BEST_POINTER, METRICS_FILE))
    if records or len(complete_checkpoints(path / CHECKPOINTS_DIR)) > 1:
        return "remains"
    return "leftovers"


def no_run_error(path: Path) -> InputError:
    """The one line for a run directory without latest.json, by what it holds instead."""
    if state_of(path) == "remains":
        return InputError(
            f"{path} holds the checkpoints of a run but no {LATEST_POINTER} (deleted or lost); restore "
            f"{LATEST_POINTER} from a copy, or train the run again with the `rnnkit train` command that started "
            "it plus --overwrite"
        )
    if os.path.lexists(path / STAGED_LATEST):
        return InputError(
            f"{path} was being replaced by a training with --overwrite that was stopped in the middle of its "
            "switch, so it holds no complete run; run that `rnnkit train` command again"
        )
    if any(os.path.lexists(path / name) for name in RUN_ENTRIES):
        return InputError(
            f"{path} has no {LATEST_POINTER}: its training stopped before its first checkpoint, so there is "
            "nothing to load yet; start it again with the `rnnkit train` command that started it, without "
            f"--resume (or restore {LATEST_POINTER} from a copy)"
        )
    return InputError(f"{path} is not an rnnkit run directory (no {LATEST_POINTER}); give the --out directory of a "
                      "`rnnkit train` run")


def remains_refusal(path: Path) -> InputError:
    """Why a new training without --overwrite does not take a directory holding a run's remains."""
    return InputError(
        f"--out {path} holds the checkpoints of a run but no {LATEST_POINTER} (deleted or lost), and nothing is "
        f"cleared without --overwrite; restore {LATEST_POINTER} from a copy and continue with --resume {path}, "
        "replace the run with --overwrite, or choose another --out"
    )


def refuse_checkpoints_file(path: Path) -> None:
    """InputError when the run's ``checkpoints`` is a file (or another non-directory): rnnkit did not write
    it, so it neither deletes it nor writes around it."""
    checkpoints = path / CHECKPOINTS_DIR
    if os.path.lexists(checkpoints) and not checkpoints.is_symlink() and not checkpoints.is_dir():
        raise InputError(
            f"{checkpoints} is a file, not the run's checkpoint directory, and rnnkit never deletes a file it did "
            "not write; move it away (or restore the directory from a copy), or choose another run directory"
        )


def check_closed_world(path: Path) -> None:
    """InputError if anything rnnkit writes or deletes in the run ``path`` is a symbolic link, or its
    ``checkpoints`` is not a directory; changes nothing."""
    for name in RUN_ENTRIES - {CHECKPOINTS_DIR}:
        refuse_link(path / name, "file")
    refuse_link(path / CHECKPOINTS_DIR, "directory")
    refuse_checkpoints_file(path)
    for entry in written_entries(path / CHECKPOINTS_DIR):
        refuse_link(entry, "directory")


def check_writable(path: Path) -> None:
    """InputError when this process may not write the run ``path`` (to resume it): said before any data is
    read, with the way out (a copy it can write)."""
    for directory in (path, path / CHECKPOINTS_DIR):
        if directory.is_dir() and not os.access(directory, os.W_OK | os.X_OK):
            raise InputError(
                f"cannot resume {path}: {directory} is not writable (permission denied or a read-only file "
                f"system); copy the run somewhere you can write (cp -r {path} NEW) and resume with --resume NEW"
            )


def unlink(path: Path) -> None:
    """Remove the file ``path`` of a run if it is there; never through a link (refused in one line)."""
    refuse_link(path, "file")
    path.unlink(missing_ok=True)


def remove_staged(path: Path) -> None:
    """Remove the staged files of an --overwrite (records and pointer) and their temporary names."""
    for name in STAGED_FILES:
        unlink(path / name)
        unlink(path / f"{TEMP_PREFIX}{name}")


def remove_run_files(path: Path) -> None:
    """Remove what a run wrote in ``path``, its commit point first (see RUN_FILES), then its checkpoints;
    never through a link, and nothing rnnkit did not write (``checkpoints/`` goes only if that empties it)."""
    for name in RUN_FILES:
        unlink(path / name)
        unlink(path / f"{TEMP_PREFIX}{name}")
    remove_staged(path)
    checkpoints = path / CHECKPOINTS_DIR
    for entry in written_entries(checkpoints):
        remove_checkpoint(entry)
    if checkpoints.is_dir() and not checkpoints.is_symlink() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()


def switch(path: Path, latest: str, best: str | None) -> None:
    """Replace the old run in ``path`` by the new run whose latest (and best) checkpoints are named.

    Order: the new pointer is staged (``.new-latest.json``: from here a kill leaves a state that says it was
    rnnkit's switch), the old pointers go (the commit point first), the staged records take the old ones'
    places, the staged pointer becomes ``latest.json`` (the commit), then ``best.json`` is written."""
    staged_latest = path / STAGED_LATEST
    write_atomic(staged_latest, signed_json({"checkpoint": latest}))
    for name in (LATEST_POINTER, BEST_POINTER):
        unlink(path / name)
    for name in (METRICS_FILE, GRADIENTS_FILE):
        staged = path / f"{STAGED_PREFIX}{name}"
        if os.path.lexists(staged):
            os.replace(staged, path / name)
        else:
            unlink(path / name)
    os.replace(staged_latest, path / LATEST_POINTER)
    fsync_directory(path)
    if best is not None:
        write_atomic(path / BEST_POINTER, signed_json({"checkpoint": best}))
