"""Set-ups of the bad-input cases: each returns a function of the case's Workspace that writes a bad file,
damages a run copy or plants a symbolic link, before the command runs.

Paths inside a run are relative to the run; ``CKPT`` in one stands for the checkpoint that ``latest.json``
(or ``best.json`` for ``BEST``) names, so a set-up does not depend on how many checkpoints a run holds.
"""

import json
import os
import shutil
from pathlib import Path

import mido
import numpy as np

GARBAGE = bytes(range(256)) * 64  # 16 KiB that is no file format at all


def _resolve(run: Path, relative: str) -> Path:
    for marker, pointer in (("CKPT", "latest.json"), ("BEST", "best.json")):
        if marker in relative:
            name = json.loads((run / pointer).read_text())["checkpoint"]
            relative = relative.replace(marker, f"checkpoints/{name}")
    return run / relative


def write(name: str, content: bytes | str):
    """A file ``name`` in the case folder with ``content`` (str: UTF-8)."""
    def setup(ws):
        path = ws.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return setup


def mkdir(name: str, *files: str):
    """A folder ``name`` in the case folder, holding empty ``files``."""
    def setup(ws):
        ws.path(name).mkdir(parents=True, exist_ok=True)
        for file in files:
            ws.path(name).joinpath(file).write_bytes(b"")
    return setup


def edit_input(name: str, edit):
    """Replace the case's input ``name`` (e.g. ``series``) by ``edit(its text)``."""
    def setup(ws):
        path = ws[name]
        path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return setup


def set_cell(name: str, line: int, column: int, value: str):
    """In the CSV input ``name``, put ``value`` at (1-based) ``line`` and 0-based ``column``."""
    def edit(text):
        lines = text.splitlines()
        cells = lines[line - 1].split(",")
        cells[column] = value
        lines[line - 1] = ",".join(cells)
        return "\n".join(lines) + "\n"
    return edit_input(name, edit)


def set_json(run: str, relative: str, keys: list, value=None, delete: bool = False):
    """In the JSON file ``relative`` of run ``run``, set the field at ``keys`` to ``value`` (or delete it);
    keys [] replaces the whole document. The rest of the file is written back as it was read."""
    def setup(ws):
        path = _resolve(ws[run], relative)
        document = json.loads(path.read_text())
        if not keys:
            document = value
        else:
            parent = document
            for key in keys[:-1]:
                parent = parent[key]
            if delete:
                del parent[keys[-1]]
            else:
                parent[keys[-1]] = value
        path.write_text(json.dumps(document, indent=1))
    return setup


def replace_file(run: str, relative: str, content: bytes | None):
    """Replace a run's file by ``content``; None deletes it."""
    def setup(ws):
        path = _resolve(ws[run], relative)
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content)
    return setup


def truncate(run: str, relative: str, keep: float = 0.5):
    """Cut a run's file to its first ``keep`` share, as an interrupted copy would."""
    def setup(ws):
        path = _resolve(ws[run], relative)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
    return setup


def foreign_weights(run: str, donor: str):
    """Put another run's (valid) weights file in place of ``run``'s."""
    def setup(ws):
        shutil.copyfile(_resolve(ws[donor], "CKPT/weights.safetensors"), _resolve(ws[run], "CKPT/weights.safetensors"))
    return setup


def link_outside(run: str, relative: str, outside: str, copy_original: bool = True):
    """Replace ``relative`` in the run by a symbolic link to ``outside`` (a path in the case folder, outside the
    run) holding what was there (or a small text file), as a user or an attacker could plant it."""
    def setup(ws):
        path = _resolve(ws[run], relative)
        target = ws.path(outside)
        if copy_original and path.is_dir():
            shutil.copytree(path, target)
            shutil.rmtree(path)
        elif copy_original and path.exists():
            shutil.copyfile(path, target)
            path.unlink()
        else:
            target.write_text("a file outside the run that nothing may change\n")
            path.unlink(missing_ok=True)
        os.symlink(os.path.relpath(target, path.parent), path)
    return setup


def interrupted_first_checkpoint(name: str):
    """A run folder as a kill during the very first checkpoint write leaves it: a temporary checkpoint
    directory, no pointer."""
    def setup(ws):
        partial = ws.path(name) / "checkpoints" / ".tmp-ckpt-000001"
        partial.mkdir(parents=True)
        (partial / "weights.safetensors").write_bytes(GARBAGE[:1000])
    return setup


def midi_file(name: str):
    """A short valid MIDI file (four quarter notes)."""
    def setup(ws):
        track = mido.MidiTrack()
        for pitch in (60, 64, 67, 72):
            track.append(mido.Message("note_on", note=pitch, velocity=64, time=0))
            track.append(mido.Message("note_off", note=pitch, velocity=0, time=480))
        midi = mido.MidiFile(ticks_per_beat=480)
        midi.tracks.append(track)
        midi.save(ws.path(name))
    return setup


def npz(name: str, **arrays):
    """An .npz archive of ``arrays`` in the case folder."""
    def setup(ws):
        with ws.path(name).open("wb") as file:
            np.savez(file, **arrays)
    return setup


def png(name: str, mode: str, size: tuple[int, int]):
    """A blank image of PIL ``mode`` and ``size`` (width, height)."""
    def setup(ws):
        from PIL import Image

        Image.new(mode, size).save(ws.path(name))
    return setup


def head(source: str, name: str, lines: int):
    """``name``: the first ``lines`` lines of the case's input ``source``."""
    def setup(ws):
        kept = ws[source].read_text(encoding="utf-8").splitlines()[:lines]
        ws.path(name).write_text("\n".join(kept) + "\n", encoding="utf-8")
    return setup


# The settings of a tiny language model on the case's tiny text, as TOML keys (the text's path relative to the
# case folder, the working directory of a case).
_TOML_BASE = {"data": '"tiny.txt"', "layers": "1", "hidden": "8", "embedding": "8", "seq-len": "10",
              "batch-size": "4", "max-steps": "2", "seed": "0"}


def toml(name: str, body: str):
    """A --config file ``name``: ``body`` plus every setting of a tiny run that ``body`` does not set."""
    def setup(ws):
        ws["text"]  # the tiny text that "data" names
        given = {line.split("=")[0].strip() for line in body.splitlines() if "=" in line}
        base = "".join(f"{key} = {value}\n" for key, value in _TOML_BASE.items() if key not in given)
        ws.path(name).write_text(base + body + "\n", encoding="utf-8")
    return setup


def truncated_copy(source: str, name: str, keep: float = 0.5):
    """``name``: the first ``keep`` share of the case's input ``source``."""
    def setup(ws):
        data = ws[source].read_bytes()
        ws.path(name).write_bytes(data[: int(len(data) * keep)])
    return setup
