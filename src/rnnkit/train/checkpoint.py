"""Run directories and crash-safe checkpoints.

A run directory holds everything one training run writes::

    RUN/
      latest.json            pointer: {"checkpoint": "ckpt-000007"}; replaced atomically
      best.json              pointer to the checkpoint with the best validation loss (once there is one)
      metrics.jsonl          one JSON object per finished epoch
      checkpoints/
        ckpt-000007/
          weights.safetensors  the model's parameters and buffers
          state.safetensors    every other tensor: optimizer moments, RNG states, the carried hidden state
          checkpoint.json      configs, vocabulary, scheduler, data position, ... and the SHA-256 of both files

Why a checkpoint can survive a crash at any instant: a new checkpoint is written into a temporary
directory, each file fsync'ed, the directory renamed into place, and only then is the pointer
``latest.json`` switched by an atomic ``os.replace``. Until that switch every reader sees the previous
checkpoint, complete; after it, the new one, complete. The SHA-256 digests in ``checkpoint.json`` catch
files damaged later (truncated copies, bit rot), so loading never trusts a file it did not verify.
Nothing is ever unpickled: tensors are safetensors, everything else JSON.
"""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors_from_bytes
from safetensors.torch import load_model
from safetensors.torch import save as save_tensors_to_bytes
from safetensors.torch import save_model

from rnnkit.errors import InputError
from rnnkit.files import TEMP_PREFIX, fsync_directory, fsync_file, write_atomic
# Named here so that tests can simulate a crash in the middle of a checkpoint's state file.
from rnnkit.files import write_synced as _write_synced

FORMAT = "rnnkit-checkpoint"
VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
STATE_FILE = "state.safetensors"
META_FILE = "checkpoint.json"
LATEST_POINTER = "latest.json"
BEST_POINTER = "best.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"


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
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._replaces_old_run = False

    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False) -> "RunDirectory":
        """Prepare ``path`` for a new run; refuse to mix it with an earlier run unless ``overwrite``.

        With ``overwrite`` the earlier run stays whole until the new run writes its first checkpoint (or
        metrics line), so a new run that fails at the start (bad data, an early divergence) costs nothing.
        Only what a run writes (checkpoints, pointers, metrics) is removed; other files are never touched.
        """
        cls.check_new(path, overwrite)
        run = cls(path)
        run._replaces_old_run = run.holds_run()
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def check_new(cls, path: str | Path, overwrite: bool = False) -> None:
        """Raise InputError if :meth:`create` would refuse ``path``; changes nothing on disk."""
        run = cls(path)
        if run.path.exists() and not run.path.is_dir():
            raise InputError(f"--out {run.path} is a file, not a directory; choose another --out")
        if run.holds_run():
            if not overwrite:
                raise InputError(
                    f"--out {run.path} already holds a training run; continue it with --resume {run.path}, "
                    "replace it with --overwrite, or choose another --out"
                )
        elif run.path.is_dir() and any(run.path.iterdir()):
            raise InputError(f"--out {run.path} is a non-empty directory that holds no run; choose a new or empty --out")

    @classmethod
    def open(cls, path: str | Path) -> "RunDirectory":
        """An existing run directory; InputError if ``path`` holds no run."""
        run = cls(path)
        if not run.path.is_dir():
            raise InputError(f"run directory {run.path} does not exist; give the --out directory of a `rnnkit train` run")
        if not (run.path / LATEST_POINTER).is_file():
            raise InputError(
                f"{run.path} is not an rnnkit run directory (no {LATEST_POINTER}); "
                "give the --out directory of a `rnnkit train` run"
            )
        return run

    def holds_run(self) -> bool:
        return (self.path / LATEST_POINTER).exists() or (self.path / CHECKPOINTS_DIR).exists()

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    def save(self, model: torch.nn.Module, tensors: dict[str, torch.Tensor], meta: dict, best: bool = False) -> Path:
        """Write a new checkpoint and make it the latest (and the best if ``best``); returns its directory."""
        checkpoints = self.path / CHECKPOINTS_DIR
        checkpoints.mkdir(parents=True, exist_ok=True)
        name = f"ckpt-{self._next_sequence_number(checkpoints):06d}"
        temporary = checkpoints / f"{TEMP_PREFIX}{name}"
        if temporary.exists():
            shutil.rmtree(temporary)
        temporary.mkdir()

        save_model(model, str(temporary / WEIGHTS_FILE), force_contiguous=True)
        fsync_file(temporary / WEIGHTS_FILE)
        _write_synced(temporary / STATE_FILE, save_tensors_to_bytes({k: v.contiguous() for k, v in tensors.items()}))
        full_meta = {"format": FORMAT, "version": VERSION, **meta, "files": {
            WEIGHTS_FILE: _sha256(temporary / WEIGHTS_FILE),
            STATE_FILE: _sha256(temporary / STATE_FILE),
        }}
        _write_synced(temporary / META_FILE, _to_json(full_meta).encode())
        fsync_directory(temporary)

        final = checkpoints / name
        os.replace(temporary, final)
        fsync_directory(checkpoints)
        write_atomic(self.path / LATEST_POINTER, _to_json({"checkpoint": name}).encode())
        if self._replaces_old_run:
            # The new run is now the latest: the old one's best pointer and metrics go; its checkpoints,
            # no longer referenced, are removed just below.
            (self.path / BEST_POINTER).unlink(missing_ok=True)
            self.metrics_path.unlink(missing_ok=True)
            self._replaces_old_run = False
        if best:
            write_atomic(self.path / BEST_POINTER, _to_json({"checkpoint": name}).encode())
        self._remove_unreferenced(checkpoints)
        return final

    def load(self, which: str = "latest") -> Checkpoint:
        """Load and verify the ``"latest"`` or ``"best"`` checkpoint; InputError if it is damaged or foreign.

        ``"auto"`` is the best checkpoint when the run has one (it was trained with validation data and
        finished an epoch), else the latest: what a user applying a finished run wants.
        """
        if which == "auto":
            which = "best" if (self.path / BEST_POINTER).is_file() else "latest"
        pointer_path = self.path / _pointer_name(which)
        if not pointer_path.is_file():
            raise InputError(f"run {self.path} has no {which} checkpoint yet; use the latest one or train longer")
        pointer = _read_json(pointer_path, what=f"checkpoint pointer {pointer_path}")
        name = pointer.get("checkpoint") if isinstance(pointer, dict) else None
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            raise InputError(f"checkpoint pointer {pointer_path} is corrupt; restore the run directory from a copy")
        directory = self.path / CHECKPOINTS_DIR / name
        meta = _read_json(directory / META_FILE, what=f"checkpoint {directory}")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise InputError(f"{directory} is not an rnnkit checkpoint; give a run directory written by `rnnkit train`")
        if meta.get("version") != VERSION:
            raise InputError(
                f"checkpoint {directory} has format version {meta.get('version')}, this rnnkit reads {VERSION}; "
                "use the rnnkit version that wrote it"
            )
        for file_name in (WEIGHTS_FILE, STATE_FILE):
            path = directory / file_name
            if not path.is_file():
                raise InputError(f"checkpoint file {path} is missing; restore the run directory from a copy")
            if _sha256(path) != meta.get("files", {}).get(file_name):
                raise InputError(f"checkpoint file {path} is corrupt or truncated (checksum mismatch); restore it from a copy")
        try:
            tensors = load_tensors_from_bytes((directory / STATE_FILE).read_bytes())
        except SafetensorError as error:
            raise InputError(f"checkpoint file {directory / STATE_FILE} is unreadable ({error}); restore it from a copy") from None
        return Checkpoint(path=directory, meta=meta, tensors=tensors)

    def append_metrics(self, record: dict) -> None:
        """Append one JSON line to ``metrics.jsonl`` and push it to disk."""
        self.append_record(METRICS_FILE, record)

    def append_record(self, file_name: str, record: dict) -> None:
        """Append one JSON line to the run's JSON-lines file ``file_name`` and push it to disk."""
        self._forget_old_run()
        with open(self.path / file_name, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def rewrite_metrics(self, records: list[dict]) -> None:
        """Replace ``metrics.jsonl`` by ``records``: on resume, drop lines written after the checkpoint."""
        self._forget_old_run()
        write_atomic(self.metrics_path, "".join(json.dumps(record) + "\n" for record in records).encode())

    def _next_sequence_number(self, checkpoints: Path) -> int:
        numbers = [int(p.name.rsplit("-", 1)[1]) for p in checkpoints.glob("ckpt-*") if p.name.rsplit("-", 1)[1].isdigit()]
        return max(numbers, default=0) + 1

    def _referenced(self) -> set[str]:
        names = set()
        for which in ("latest", "best"):
            path = self.path / _pointer_name(which)
            if path.is_file():
                names.add(json.loads(path.read_text())["checkpoint"])
        return names

    def _remove_unreferenced(self, checkpoints: Path) -> None:
        """Delete checkpoints no pointer names, and temporary directories left by a crash."""
        keep = self._referenced()
        for entry in checkpoints.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)

    def _forget_old_run(self) -> None:
        """Remove the run that ``create(overwrite=True)`` kept, before the new one writes anything beside it."""
        if self._replaces_old_run:
            self._remove_run_files()
            self._replaces_old_run = False

    def _remove_run_files(self) -> None:
        shutil.rmtree(self.path / CHECKPOINTS_DIR, ignore_errors=True)
        for name in (LATEST_POINTER, BEST_POINTER, METRICS_FILE):
            (self.path / name).unlink(missing_ok=True)


def split_tensors(value, prefix: str) -> tuple[object, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tuples, numbers, tensors) into JSON and named tensors.

    Each tensor is replaced by ``{"$tensor": name}`` where ``name`` is its path under ``prefix``, so that
    an optimizer's or RNG's state goes to JSON plus safetensors, never to pickle. Tuples come back as lists.
    """
    tensors: dict[str, torch.Tensor] = {}

    def visit(item, path):
        if isinstance(item, torch.Tensor):
            tensors[path] = item.detach().cpu()
            return {"$tensor": path}
        if isinstance(item, dict):
            return {str(key): visit(inner, f"{path}/{key}") for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [visit(inner, f"{path}/{index}") for index, inner in enumerate(item)]
        return item

    return visit(value, prefix), tensors


def join_tensors(value, tensors: dict[str, torch.Tensor]):
    """The inverse of :func:`split_tensors`: put the named tensors back in place of their references."""
    if isinstance(value, dict):
        if set(value) == {"$tensor"}:
            name = value["$tensor"]
            if name not in tensors:
                raise InputError(f"checkpoint state lacks tensor {name!r} (corrupt or foreign); restore it from a copy")
            return tensors[name]
        return {key: join_tensors(inner, tensors) for key, inner in value.items()}
    if isinstance(value, list):
        return [join_tensors(inner, tensors) for inner in value]
    return value


def _pointer_name(which: str) -> str:
    if which not in ("latest", "best"):
        raise InputError(f"unknown checkpoint {which!r}; choose auto, latest or best")
    return LATEST_POINTER if which == "latest" else BEST_POINTER


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_json(value) -> str:
    # Infinite floats (e.g. a plateau scheduler's "best" before any epoch) are kept as Infinity,
    # which Python's json module reads back.
    return json.dumps(value, indent=1)


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} is missing {path.name}; give a run directory written by `rnnkit train`") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{what} is corrupt ({path.name} is not valid JSON); restore it from a copy") from None
