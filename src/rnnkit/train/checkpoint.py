"""Run directories and crash-safe checkpoints.

A run directory holds everything one training run writes::

    RUN/
      latest.json            pointer: {"checkpoint": "ckpt-000007", "sha256": ...}; replaced atomically
      best.json              pointer to the checkpoint with the best validation loss (once there is one)
      metrics.jsonl          one JSON object per finished epoch
      gradients.jsonl        per-step gradient norms (only with --log-gradients)
      .lock                  while a training runs: its PID, under an advisory lock (see lock.py)
      checkpoints/
        ckpt-000007/
          weights.safetensors  the model's parameters and buffers
          state.safetensors    every other tensor: optimizer moments, RNG states, the carried hidden state
          checkpoint.json      configs, vocabulary, scheduler, data position, ..., the SHA-256 of both
                               files, and the SHA-256 of its own content ("sha256")

Why a checkpoint can survive a crash at any instant: a new checkpoint is written into a temporary
directory, each file fsync'ed, the directory renamed into place, and only then is the pointer
``latest.json`` switched by an atomic ``os.replace``. Until that switch every reader sees the previous
checkpoint, complete; after it, the new one, complete. ``latest.json`` is the commit point. The SHA-256
digests catch files damaged or edited later (truncated copies, bit rot, a hand-edited ``checkpoint.json`` or
``best.json``), so loading never trusts a file it did not verify. Nothing is ever unpickled: tensors are
safetensors (:mod:`rnnkit.train.tensor_state` takes them out of an optimizer's state), everything else strict
JSON (:mod:`rnnkit.train.strict_json`: no ``Infinity`` or ``NaN``).

A directory without ``latest.json`` holds the leftovers of a start killed before its first checkpoint, which
a new training clears, or the remains of a run whose ``latest.json`` was deleted, which nothing clears
without ``--overwrite`` (:mod:`rnnkit.train.run_layout`).

Replacing a run (``--overwrite``) keeps the old run whole and usable until the new run has an end-of-epoch
checkpoint or ends normally; meanwhile the new checkpoints are unreferenced siblings and its records staged
(``.new-metrics.jsonl``), and a failure removes them (:meth:`RunDirectory.create`, ``run_layout.switch``).

Format versions: see :mod:`rnnkit.train.checkpoint_files` (format 1 is read unverified, and a format-2
checkpoint cannot pass itself off as one).

The directory is a closed world: rnnkit never writes or deletes through a symbolic link inside it (see
:func:`rnnkit.files.refuse_link`), and never deletes anything it did not write and cannot name: in
``checkpoints/`` only ``ckpt-NNNNNN`` directories (and their temporary names), and in those only the three
files of a checkpoint.
"""

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors_from_bytes
from safetensors.torch import load_model
from safetensors.torch import save as save_tensors_to_bytes
from safetensors.torch import save_model

from rnnkit.errors import InputError
from rnnkit.files import TEMP_PREFIX, append_synced, check_creatable, fsync_directory, fsync_file, make_directory
from rnnkit.files import refuse_link, remove_tree, write_atomic, write_failure
# Named here so that tests can simulate a crash in the middle of a checkpoint's state file.
from rnnkit.files import write_synced as _write_synced

from .checkpoint_files import FORMAT, FORMAT_MARK, META_FILE, READABLE_VERSIONS, STATE_FILE, VERSION, WEIGHTS_FILE
from .checkpoint_files import is_checkpoint_name, read_meta, remove_checkpoint, verify_files
from .checkpoint_files import sequence_number, written_entries
from .lock import RunLock, refuse_if_held
from .run_layout import BEST_POINTER, CHECKPOINTS_DIR, GRADIENTS_FILE, LATEST_POINTER, METRICS_FILE, RUN_ENTRIES
from .run_layout import RUN_FILES, STAGED_PREFIX, check_closed_world, check_writable
from .run_layout import no_run_error, refuse_checkpoints_file, remains_refusal, remove_run_files, remove_staged
from .run_layout import state_of, switch
from .strict_json import CHECKSUM, edited, file_sha256, json_line, read_json, signed_json, verify_checksum

__all__ = ["FORMAT", "VERSION", "READABLE_VERSIONS", "WEIGHTS_FILE", "STATE_FILE", "META_FILE", "LATEST_POINTER",
           "BEST_POINTER", "METRICS_FILE", "GRADIENTS_FILE", "CHECKPOINTS_DIR", "RUN_FILES", "RUN_ENTRIES",
           "Checkpoint", "RunDirectory", "rewrite_meta"]


@dataclass
class Checkpoint:
    """One loaded, verified checkpoint.

    Attributes:
        path: the checkpoint's own directory (``RUN/checkpoints/ckpt-NNNNNN``).
        meta: the JSON part: configs, vocabulary, trainer state.
        tensors: the tensors of ``state.safetensors`` by name (optimizer state, RNG states, carried state).
    """

    path: Path
    meta: dict
    tensors: dict[str, torch.Tensor]

    def load_weights(self, model: torch.nn.Module) -> torch.nn.Module:
        """Copy the saved parameters into ``model``, which must have the saved architecture; returns it."""
        try:
            load_model(model, self.path / WEIGHTS_FILE, strict=True)
        except (RuntimeError, SafetensorError) as error:
            detail = " ".join(str(error).split())
            raise InputError(
                f"checkpoint {self.path} does not fit this model ({detail[:200]}); "
                "use the model settings it was trained with"
            ) from None
        return model


class RunDirectory:
    """The directory of one training run: its checkpoints, pointers and metrics.

    Example::

        run = RunDirectory.create("runs/shakespeare")
        run.save(model, tensors={"rng/torch/0": torch.get_rng_state()}, meta={"step": 100}, best=True)
        checkpoint = RunDirectory.open("runs/shakespeare").load()      # the latest
        checkpoint.load_weights(model)

        with RunDirectory.for_training("runs/shakespeare", overwrite=True) as run:   # locked meanwhile
            ...
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._replacing = False  # an --overwrite keeps the old run until the new one has a checkpoint worth more
        self._pending: list[str] = []  # the new run's checkpoints meanwhile, oldest first
        self._pending_best: str | None = None

    # ------------------------------------------------------------------------------------- opening

    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False) -> "RunDirectory":
        """Prepare ``path`` for a new run; refuse to mix it with an earlier run unless ``overwrite``.

        With ``overwrite`` the earlier run (or the remains of one whose latest.json is gone) stays whole until
        the new run has an end-of-epoch checkpoint or ends normally (:meth:`save`, :meth:`finish_replacement`);
        :meth:`abandon_replacement` (which the Trainer calls on any failure) removes the new run's files and
        leaves the old run as it was. Only what a run writes is ever removed. The leftovers of a start killed
        before its first checkpoint are cleared (they hold no run). :meth:`for_training` does the same under
        the directory's lock.
        """
        cls.check_new(path, overwrite)
        return cls._prepare_new(path, overwrite)

    @classmethod
    def check_new(cls, path: str | Path, overwrite: bool = False) -> None:
        """Raise InputError if :meth:`create` would refuse ``path``; changes nothing on disk."""
        check_creatable(Path(path))
        if Path(path).is_dir():
            refuse_if_held(Path(path))
        cls._check_replaceable(path, overwrite)

    @classmethod
    def open(cls, path: str | Path, for_training: bool = False) -> "RunDirectory":
        """An existing run directory; InputError if ``path`` holds no run. ``for_training`` (--resume): also
        refuse a directory that another training holds, that the user cannot write, that has a symbolic link
        where the run writes, or whose pointers are damaged: every refusal :meth:`for_training` would give,
        given before the caller reads any data."""
        run = cls(path)
        if not os.path.lexists(run.path):
            raise InputError(f"run directory {run.path} does not exist; give the --out directory of a `rnnkit train` run")
        if not run.path.is_dir():
            raise InputError(
                f"{run.path} is a file, not a run directory; give the --out directory of a `rnnkit train` run"
            )
        refuse_checkpoints_file(run.path)
        if not run.holds_run():
            raise no_run_error(run.path)
        if for_training:
            refuse_if_held(run.path)
            check_writable(run.path)
            run.check_closed_world()
            run._check_pointers()
        return run

    @classmethod
    @contextmanager
    def for_training(cls, path: str | Path, *, overwrite: bool = False,
                     resuming: Checkpoint | None = None) -> Iterator["RunDirectory"]:
        """The run directory of a training, locked (``RUN/.lock``) for as long as the ``with`` block runs.

        A new run (``resuming`` None) is checked as :meth:`create` checks it; a resumed run must still
        have ``resuming`` as its latest checkpoint. Every check happens with the lock held and before
        anything in the directory changes, so a second training into the same directory is refused with
        one line naming the first one's PID and changes nothing. A block that fails while a replacement is
        pending leaves the old run as it was.
        """
        path = Path(path)
        if resuming is None:
            cls.check_new(path, overwrite)
            make_directory(path)
        else:
            cls.open(path, for_training=True)
        with RunLock.acquire(path):
            if resuming is None:
                run = cls._prepare_new(path, overwrite)
            else:
                run = cls(path)  # checked again, now that no other training can change it
                run.check_closed_world()
                run._check_pointers()
                if run._pointer_target(LATEST_POINTER)[0] != resuming.path.name:
                    raise InputError(
                        f"the run in {path} moved on after its checkpoint was read (another training wrote to "
                        "it); run the command again"
                    )
            try:
                yield run
            except BaseException:
                run.abandon_replacement()
                raise

    @classmethod
    def _check_replaceable(cls, path: str | Path, overwrite: bool) -> None:
        run = cls(path)
        if run.path.is_dir():
            run.check_closed_world()
        state = run._state()
        if state == "run" and not overwrite:
            raise InputError(
                f"--out {run.path} already holds a training run; continue it with --resume {run.path}, "
                "replace it with --overwrite, or choose another --out"
            )
        if state == "remains" and not overwrite:
            raise remains_refusal(run.path)
        if state == "leftovers" and run.path.is_dir() and any(entry.name not in RUN_ENTRIES
                                                               for entry in run.path.iterdir()):
            raise InputError(f"--out {run.path} is a non-empty directory that holds no run; choose a new or empty --out")

    @classmethod
    def _prepare_new(cls, path: str | Path, overwrite: bool) -> "RunDirectory":
        cls._check_replaceable(path, overwrite)
        run = cls(path)
        make_directory(run.path)
        state = run._state()
        remove_staged(run.path)  # an earlier --overwrite cut off before its switch
        if state == "leftovers":
            remove_run_files(run.path)
        run._replacing = state in ("run", "remains")
        return run

    def holds_run(self) -> bool:
        """Whether the directory holds a run: its commit point ``latest.json`` is there."""
        return os.path.lexists(self.path / LATEST_POINTER)

    def check_closed_world(self) -> None:
        """InputError if anything rnnkit writes or deletes here is a symbolic link, or ``checkpoints`` is not a
        directory; changes nothing."""
        check_closed_world(self.path)

    def _state(self) -> str:
        return state_of(self.path)

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def replacing(self) -> bool:
        """Whether an old run is still kept here while a new run (--overwrite) has no checkpoint to replace it."""
        return self._replacing

    # ------------------------------------------------------------------------------------- saving

    def save(self, model: torch.nn.Module, tensors: dict[str, torch.Tensor], meta: dict, best: bool = False,
             validated: bool = True) -> Path:
        """Write a new checkpoint and make it the latest (and the best if ``best``); returns its directory.

        ``validated``: whether the checkpoint may replace the old run that an --overwrite keeps (a checkpoint
        written mid-epoch may not: it waits, unreferenced, for one that may or for :meth:`finish_replacement`).
        InputError (one line, the temporary directory removed, the previous checkpoint and pointers
        untouched) when the system refuses the write: a full disk, a read-only file system, ...
        """
        checkpoints = self.path / CHECKPOINTS_DIR
        refuse_link(checkpoints, "directory")
        refuse_checkpoints_file(self.path)
        name = f"ckpt-{self._next_sequence_number(checkpoints):06d}"
        temporary, final = checkpoints / f"{TEMP_PREFIX}{name}", checkpoints / name
        state_bytes = save_tensors_to_bytes({k: v.contiguous() for k, v in tensors.items()}, metadata=FORMAT_MARK)
        needed = _weights_size(model) + len(state_bytes) + len(json.dumps(meta, default=str))
        try:
            checkpoints.mkdir(exist_ok=True)
            remove_tree(temporary)
            temporary.mkdir()
            save_model(model, str(temporary / WEIGHTS_FILE), metadata=FORMAT_MARK, force_contiguous=True)
            fsync_file(temporary / WEIGHTS_FILE)
            _write_synced(temporary / STATE_FILE, state_bytes)
            full_meta = {"format": FORMAT, "version": VERSION, **meta, "files": {
                WEIGHTS_FILE: file_sha256(temporary / WEIGHTS_FILE),
                STATE_FILE: file_sha256(temporary / STATE_FILE),
            }}
            _write_synced(temporary / META_FILE, signed_json(full_meta))
            fsync_directory(temporary)
            os.replace(temporary, final)
            fsync_directory(checkpoints)
        except (OSError, SafetensorError) as error:
            remove_tree(temporary, quietly=True)
            kept = "the previous checkpoint is intact" if self.holds_run() else "no checkpoint was written"
            raise write_failure(final, error, needed, fix=f"choose another --out ({kept})") from None
        if self._replacing:
            self._pending.append(name)
            self._pending_best = name if best else self._pending_best
            if validated:
                self.finish_replacement()
            else:  # keep only what the switch needs: the latest and the best of the new run
                for older in self._pending[:-1]:
                    if older != self._pending_best:
                        remove_checkpoint(checkpoints / older)
                self._pending = [older for older in self._pending if older in (name, self._pending_best)]
            return final
        pointer = signed_json({"checkpoint": name})
        write_atomic(self.path / LATEST_POINTER, pointer)
        if best:
            write_atomic(self.path / BEST_POINTER, pointer)
        self._remove_unreferenced(checkpoints)
        return final

    def finish_replacement(self) -> None:
        """Let the new run's latest checkpoint replace the old run an --overwrite kept (a no-op otherwise;
        :func:`~rnnkit.train.run_layout.switch`), then prune the old run's checkpoints."""
        if not self._replacing:
            return
        if not self._pending:  # the new run wrote no checkpoint: there is nothing to replace the old run with
            self.abandon_replacement()
            return
        switch(self.path, self._pending[-1], self._pending_best)
        self._replacing, self._pending, self._pending_best = False, [], None
        self._remove_unreferenced(self.path / CHECKPOINTS_DIR)

    def abandon_replacement(self) -> None:
        """Remove what a new run wrote while the old run it was to replace was kept (its checkpoints, its
        staged records), leaving the old run exactly as it was; a no-op when no replacement is pending."""
        if not self._replacing:
            return
        for name in self._pending:
            remove_checkpoint(self.path / CHECKPOINTS_DIR / name)
        remove_staged(self.path)
        self._replacing, self._pending, self._pending_best = False, [], None

    # ------------------------------------------------------------------------------------- loading

    def load(self, which: str = "latest") -> Checkpoint:
        """Load and verify the ``"latest"`` or ``"best"`` checkpoint; InputError if it is damaged or foreign.

        ``"auto"`` is the best checkpoint when the run has one (it was trained with validation data and
        finished an epoch), else the latest: what a user applying a finished run wants.
        """
        if which == "auto":
            which = "best" if (self.path / BEST_POINTER).is_file() else "latest"
        directory, meta = self._resolve(_pointer_name(which))
        verify_files(directory, meta)
        try:
            tensors = load_tensors_from_bytes((directory / STATE_FILE).read_bytes())
        except SafetensorError as error:
            raise InputError(f"checkpoint file {directory / STATE_FILE} is unreadable ({error}); restore it from a copy") from None
        return Checkpoint(path=directory, meta=meta, tensors=tensors)

    # ------------------------------------------------------------------------------------- records

    def append_metrics(self, record: dict) -> None:
        """Append one JSON line to ``metrics.jsonl`` and push it to disk."""
        self.append_record(METRICS_FILE, record)

    def append_record(self, file_name: str, record: dict) -> None:
        """Append one JSON line to the run's JSON-lines file ``file_name`` and push it to disk (never
        through a symbolic link; a line that does not fit is not left half written). While an old run is
        kept (--overwrite), the line goes to the staged file that will replace the old one's."""
        path = self.path / (f"{STAGED_PREFIX}{file_name}" if self._replacing else file_name)
        line = (json_line(record)).encode()
        try:
            append_synced(path, line)
        except OSError as error:
            raise write_failure(path, error, len(line), fix="choose another --out") from None

    def rewrite_metrics(self, records: list[dict]) -> None:
        """Replace ``metrics.jsonl`` by ``records``: on resume, drop lines written after the checkpoint."""
        name = f"{STAGED_PREFIX}{METRICS_FILE}" if self._replacing else METRICS_FILE
        write_atomic(self.path / name, "".join(json_line(record) for record in records).encode())

    # ------------------------------------------------------------------------------------- helpers

    def _next_sequence_number(self, checkpoints: Path) -> int:
        numbers = [sequence_number(entry.name) for entry in written_entries(checkpoints)]
        return max(numbers, default=0) + 1

    def _pointer_target(self, pointer_name: str) -> tuple[str, bool]:
        """(the checkpoint name a pointer file holds, whether it carries a checksum); InputError if the
        file is damaged or edited, or names anything but a checkpoint directory rnnkit writes."""
        pointer_path = self.path / pointer_name
        pointer = read_json(pointer_path, what=f"checkpoint pointer {pointer_path}")
        name = pointer.get("checkpoint") if isinstance(pointer, dict) else None
        if not isinstance(name, str) or not is_checkpoint_name(name):
            raise edited(pointer_name, self.path, "it names no checkpoint of the form ckpt-NNNNNN")
        signed = CHECKSUM in pointer
        if signed:
            verify_checksum(pointer, pointer_name, self.path)
        return name, signed

    def _resolve(self, pointer_name: str) -> tuple[Path, dict]:
        """(the directory, the verified JSON) of the checkpoint a pointer names; InputError if any is
        missing, damaged or edited."""
        pointer_path = self.path / pointer_name
        if not pointer_path.is_file():
            which = pointer_name.removesuffix(".json")
            raise InputError(f"run {self.path} has no {which} checkpoint yet; use the latest one or train longer")
        name, signed = self._pointer_target(pointer_name)
        directory = self.path / CHECKPOINTS_DIR / name
        if os.path.lexists(directory) and not directory.is_dir():
            raise edited(pointer_name, self.path, f"it names {directory}, which is a file, not a checkpoint")
        meta = read_meta(directory)
        if meta["version"] >= 2 and not signed:
            raise edited(pointer_name, self.path, "it has no checksum")
        if meta["version"] == 1 and signed:  # pointers were signed only once checkpoints were (format 2)
            raise edited(META_FILE, directory, f"it says format 1, but {pointer_name} that names it is format 2")
        return directory, meta

    def _check_pointers(self) -> None:
        """Verify every pointer there is and the JSON it leads to (a damaged best.json would otherwise
        surface only at the next save, mid-training)."""
        for name in (LATEST_POINTER, BEST_POINTER):
            if name == LATEST_POINTER or (self.path / name).is_file():
                self._resolve(name)

    def _referenced(self) -> set[str]:
        return {self._pointer_target(name)[0] for name in (LATEST_POINTER, BEST_POINTER)
                if (self.path / name).is_file()}

    def _remove_unreferenced(self, checkpoints: Path) -> None:
        """Delete the checkpoints rnnkit wrote that no pointer names (and temporary ones a crash left), and the
        staged files of an --overwrite cut off before its switch; nothing else (see the module docstring)."""
        refuse_link(checkpoints, "directory")
        keep = self._referenced() | set(self._pending)
        for entry in written_entries(checkpoints):
            if entry.name not in keep:
                remove_checkpoint(entry)
        if not self._replacing:
            remove_staged(self.path)


def rewrite_meta(checkpoint_dir: str | Path, meta: dict) -> None:
    """Replace the ``checkpoint.json`` of ``checkpoint_dir`` by ``meta`` with a fresh checksum: for tools
    and tests that change a checkpoint on purpose (``meta`` as :meth:`RunDirectory.load` returned it)."""
    write_atomic(Path(checkpoint_dir) / META_FILE, signed_json({"version": VERSION, **meta}))


def _pointer_name(which: str) -> str:
    if which not in ("latest", "best"):
        raise InputError(f"unknown checkpoint {which!r}; choose auto, latest or best")
    return LATEST_POINTER if which == "latest" else BEST_POINTER


def _weights_size(model: torch.nn.Module) -> int:
    """Bytes of the model's tensors, each shared tensor (tied weights) once: what weights.safetensors holds."""
    sizes = {(tensor.data_ptr(), tensor.nbytes): tensor.nbytes for tensor in model.state_dict().values()}
    return sum(sizes.values())
