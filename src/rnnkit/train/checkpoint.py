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
checkpoint, complete; after it, the new one, complete. ``latest.json`` is the commit point: a directory
without it holds no run (at most the leftovers of a start killed before its first checkpoint, which a new
training clears). The SHA-256 digests catch files damaged or edited later (truncated copies, bit rot, a
hand-edited ``checkpoint.json`` or ``best.json``), so loading never trusts a file it did not verify.
Nothing is ever unpickled: tensors are safetensors (:mod:`rnnkit.train.tensor_state` takes them out of an
optimizer's state), everything else strict JSON (:mod:`rnnkit.train.strict_json`: no ``Infinity`` or ``NaN``).

Format versions: 2 adds the checksums of the JSON files and the strict floats. Version 1 checkpoints
(rnnkit 0.1 to the version before this one; pointers without "sha256", ``Infinity`` in the JSON) are read
as before, unverified JSON included: nothing else was written then.

The directory is a closed world: rnnkit never writes or deletes through a symbolic link inside it (see
:func:`rnnkit.files.refuse_link`), and never deletes anything it did not write.
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

from .lock import LOCK_FILE, RunLock, refuse_if_held
from .strict_json import CHECKSUM, decode_floats, edited, file_sha256, json_line, read_json, signed_json
from .strict_json import verify_checksum

FORMAT = "rnnkit-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)
WEIGHTS_FILE = "weights.safetensors"
STATE_FILE = "state.safetensors"
META_FILE = "checkpoint.json"
LATEST_POINTER = "latest.json"
BEST_POINTER = "best.json"
METRICS_FILE = "metrics.jsonl"
GRADIENTS_FILE = "gradients.jsonl"
CHECKPOINTS_DIR = "checkpoints"
# Every file a run writes at the top of its directory, the commit point first: removed in this order, a
# run is never half there (whatever is left without latest.json is leftovers, not a run).
RUN_FILES = (LATEST_POINTER, BEST_POINTER, METRICS_FILE, GRADIENTS_FILE)
RUN_ENTRIES = {*RUN_FILES, *(TEMP_PREFIX + name for name in RUN_FILES), CHECKPOINTS_DIR, LOCK_FILE}


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
        self._replaces_old_run = False

    # ------------------------------------------------------------------------------------- opening

    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False) -> "RunDirectory":
        """Prepare ``path`` for a new run; refuse to mix it with an earlier run unless ``overwrite``.

        With ``overwrite`` the earlier run stays whole until the new run writes its first checkpoint (or
        metrics line), so a new run that fails at the start (bad data, an early divergence) costs nothing.
        Only what a run writes (checkpoints, pointers, metrics) is removed; other files are never touched.
        The leftovers of a start killed before its first checkpoint are cleared (they hold no run).
        :meth:`for_training` does the same under the directory's lock.
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
        refuse a directory that another training holds, that has a symbolic link where the run writes, or
        whose pointers are damaged: every refusal :meth:`for_training` would give, given before the caller
        reads any data."""
        run = cls(path)
        if not os.path.lexists(run.path):
            raise InputError(f"run directory {run.path} does not exist; give the --out directory of a `rnnkit train` run")
        if not run.path.is_dir():
            raise InputError(
                f"{run.path} is a file, not a run directory; give the --out directory of a `rnnkit train` run"
            )
        if not run.holds_run():
            if any(os.path.lexists(run.path / name) for name in RUN_ENTRIES):
                raise InputError(
                    f"{run.path} has no {LATEST_POINTER}: its training stopped before its first checkpoint, so "
                    "there is nothing to load yet; start it again with the `rnnkit train` command that started it, "
                    f"without --resume (or restore {LATEST_POINTER} from a copy)"
                )
            raise InputError(
                f"{run.path} is not an rnnkit run directory (no {LATEST_POINTER}); "
                "give the --out directory of a `rnnkit train` run"
            )
        if for_training:
            refuse_if_held(run.path)
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
        one line naming the first one's PID and changes nothing.
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
            yield run

    @classmethod
    def _check_replaceable(cls, path: str | Path, overwrite: bool) -> None:
        run = cls(path)
        if run.path.is_dir():
            run.check_closed_world()
        if run.holds_run():
            if not overwrite:
                raise InputError(
                    f"--out {run.path} already holds a training run; continue it with --resume {run.path}, "
                    "replace it with --overwrite, or choose another --out"
                )
        elif run.path.is_dir() and any(entry.name not in RUN_ENTRIES for entry in run.path.iterdir()):
            raise InputError(f"--out {run.path} is a non-empty directory that holds no run; choose a new or empty --out")

    @classmethod
    def _prepare_new(cls, path: str | Path, overwrite: bool) -> "RunDirectory":
        cls._check_replaceable(path, overwrite)
        run = cls(path)
        make_directory(run.path)
        run._replaces_old_run = run.holds_run()
        if not run._replaces_old_run:
            run._remove_run_files()  # the leftovers of a start killed before its first checkpoint
        return run

    def holds_run(self) -> bool:
        """Whether the directory holds a run: its commit point ``latest.json`` is there."""
        return os.path.lexists(self.path / LATEST_POINTER)

    def check_closed_world(self) -> None:
        """InputError if anything rnnkit writes or deletes here is a symbolic link; changes nothing."""
        for name in RUN_ENTRIES - {CHECKPOINTS_DIR}:
            refuse_link(self.path / name, "file")
        checkpoints = self.path / CHECKPOINTS_DIR
        refuse_link(checkpoints, "directory")
        if checkpoints.is_dir():
            for entry in checkpoints.iterdir():
                refuse_link(entry, "directory")

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    # ------------------------------------------------------------------------------------- saving

    def save(self, model: torch.nn.Module, tensors: dict[str, torch.Tensor], meta: dict, best: bool = False) -> Path:
        """Write a new checkpoint and make it the latest (and the best if ``best``); returns its directory.

        InputError (one line, the temporary directory removed, the previous checkpoint and pointers
        untouched) when the system refuses the write: a full disk, a read-only file system, ...
        """
        checkpoints = self.path / CHECKPOINTS_DIR
        refuse_link(checkpoints, "directory")
        name = f"ckpt-{self._next_sequence_number(checkpoints):06d}"
        temporary, final = checkpoints / f"{TEMP_PREFIX}{name}", checkpoints / name
        state_bytes = save_tensors_to_bytes({k: v.contiguous() for k, v in tensors.items()})
        needed = _weights_size(model) + len(state_bytes) + len(json.dumps(meta, default=str))
        try:
            checkpoints.mkdir(exist_ok=True)
            remove_tree(temporary)
            temporary.mkdir()
            save_model(model, str(temporary / WEIGHTS_FILE), force_contiguous=True)
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
        if self._replaces_old_run:
            # The new run's first checkpoint is whole: the old run goes, its commit point first, so that at
            # every instant the directory holds the old run whole, or no run, or the new run alone (never
            # the new latest beside the old best, which evaluate would score). Its checkpoints, no longer
            # referenced, are pruned below.
            self._remove_run_files(keep_checkpoints=True)
            self._replaces_old_run = False
        pointer = signed_json({"checkpoint": name})
        write_atomic(self.path / LATEST_POINTER, pointer)
        if best:
            write_atomic(self.path / BEST_POINTER, pointer)
        self._remove_unreferenced(checkpoints)
        return final

    # ------------------------------------------------------------------------------------- loading

    def load(self, which: str = "latest") -> Checkpoint:
        """Load and verify the ``"latest"`` or ``"best"`` checkpoint; InputError if it is damaged or foreign.

        ``"auto"`` is the best checkpoint when the run has one (it was trained with validation data and
        finished an epoch), else the latest: what a user applying a finished run wants.
        """
        if which == "auto":
            which = "best" if (self.path / BEST_POINTER).is_file() else "latest"
        directory, meta = self._resolve(_pointer_name(which))
        files = meta.get("files")
        if not isinstance(files, dict):
            raise edited(META_FILE, directory, "it lists no file digests")
        for file_name in (WEIGHTS_FILE, STATE_FILE):
            path = directory / file_name
            if not path.is_file():
                raise InputError(f"checkpoint file {path} is missing; restore the run directory from a copy")
            if file_sha256(path) != files.get(file_name):
                raise InputError(f"checkpoint file {path} is corrupt or truncated (checksum mismatch); restore it from a copy")
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
        through a symbolic link; a line that does not fit is not left half written)."""
        self._forget_old_run()
        path = self.path / file_name
        line = (json_line(record)).encode()
        try:
            append_synced(path, line)
        except OSError as error:
            raise write_failure(path, error, len(line), fix="choose another --out") from None

    def rewrite_metrics(self, records: list[dict]) -> None:
        """Replace ``metrics.jsonl`` by ``records``: on resume, drop lines written after the checkpoint."""
        self._forget_old_run()
        write_atomic(self.metrics_path, "".join(json_line(record) for record in records).encode())

    # ------------------------------------------------------------------------------------- helpers

    def _next_sequence_number(self, checkpoints: Path) -> int:
        numbers = [int(p.name.rsplit("-", 1)[1]) for p in checkpoints.glob("ckpt-*") if p.name.rsplit("-", 1)[1].isdigit()]
        return max(numbers, default=0) + 1

    def _pointer_target(self, pointer_name: str) -> tuple[str, bool]:
        """(the checkpoint name a pointer file holds, whether it carries a checksum); InputError if the
        file is damaged or edited."""
        pointer_path = self.path / pointer_name
        pointer = read_json(pointer_path, what=f"checkpoint pointer {pointer_path}")
        name = pointer.get("checkpoint") if isinstance(pointer, dict) else None
        if not isinstance(name, str) or "/" in name or name.startswith(".") or not name:
            raise edited(pointer_name, self.path, "it names no checkpoint")
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
        meta = _read_meta(directory)
        if meta["version"] >= 2 and not signed:
            raise edited(pointer_name, self.path, "it has no checksum")
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
        """Delete checkpoints no pointer names, and temporary directories left by a crash."""
        refuse_link(checkpoints, "directory")
        keep = self._referenced()
        for entry in checkpoints.iterdir():
            if entry.name not in keep:
                remove_tree(entry, quietly=True)

    def _forget_old_run(self) -> None:
        """Remove the run that ``create(overwrite=True)`` kept, before the new one writes anything beside it."""
        if self._replaces_old_run:
            self._remove_run_files()
            self._replaces_old_run = False

    def _remove_run_files(self, keep_checkpoints: bool = False) -> None:
        """Remove what a run wrote here, its commit point first (see RUN_FILES); never through a link."""
        for name in RUN_FILES:
            for path in (self.path / name, self.path / f"{TEMP_PREFIX}{name}"):
                refuse_link(path, "file")
                path.unlink(missing_ok=True)
        if not keep_checkpoints:
            remove_tree(self.path / CHECKPOINTS_DIR, quietly=True)


def rewrite_meta(checkpoint_dir: str | Path, meta: dict) -> None:
    """Replace the ``checkpoint.json`` of ``checkpoint_dir`` by ``meta`` with a fresh checksum: for tools
    and tests that change a checkpoint on purpose (``meta`` as :meth:`RunDirectory.load` returned it)."""
    write_atomic(Path(checkpoint_dir) / META_FILE, signed_json({"version": VERSION, **meta}))


def _pointer_name(which: str) -> str:
    if which not in ("latest", "best"):
        raise InputError(f"unknown checkpoint {which!r}; choose auto, latest or best")
    return LATEST_POINTER if which == "latest" else BEST_POINTER


def _read_meta(directory: Path) -> dict:
    """The verified ``checkpoint.json`` of ``directory``, its floats decoded (version 2), or as written
    (version 1)."""
    meta = read_json(directory / META_FILE, what=f"checkpoint {directory}")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{directory} is not an rnnkit checkpoint; give a run directory written by `rnnkit train`")
    version = meta.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise InputError(
            f"checkpoint {directory} has format version {version}, this rnnkit reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))}; use the rnnkit version that wrote it"
        )
    if version == 1:
        return meta
    verify_checksum(meta, META_FILE, directory)
    return decode_floats({key: value for key, value in meta.items() if key != CHECKSUM})


def _weights_size(model: torch.nn.Module) -> int:
    """Bytes of the model's tensors, each shared tensor (tied weights) once: what weights.safetensors holds."""
    sizes = {(tensor.data_ptr(), tensor.nbytes): tensor.nbytes for tensor in model.state_dict().values()}
    return sum(sizes.values())


