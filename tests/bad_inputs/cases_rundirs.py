"""Bad-input cases of issue 26: run directories that rnnkit did not write all of.

A run whose ``latest.json`` was deleted by hand, a ``checkpoints`` that is a file, pointers naming something that
is no checkpoint directory, NUL characters in a run's JSON, a format-2 checkpoint relabelled as format 1 to use
an edited vocabulary unverified, and an ``--overwrite`` that fails in its first steps. Each is one line naming
the problem (and the fix), with every file of the case left as it was: the old run of an ``--overwrite`` that
diverges included, checkpoints and all.
"""

import json
import shutil

from . import damage as d
from .cases import _EVALUATE, _RESUME, case, train


def checkpoints_a_file(run: str):
    """The run's ``checkpoints`` directory replaced by a file (what a user copying by hand can leave)."""
    def setup(ws):
        checkpoints = ws[run] / "checkpoints"
        shutil.rmtree(checkpoints)
        checkpoints.write_text("not a directory\n")
    return setup


def relabel_as_version_1(run: str, unsign_pointers: bool, keep_checksum: bool = False):
    """Edit the vocabulary of the run's latest checkpoint and claim format 1 (whose JSON was not signed), as
    the audit's bypass did; ``unsign_pointers``: also strip the pointers' checksums, as format 1 wrote them."""
    def setup(ws):
        path = ws[run] / "checkpoints" / json.loads((ws[run] / "latest.json").read_text())["checkpoint"]
        meta = json.loads((path / "checkpoint.json").read_text())
        meta["vocab"]["symbols"] = list(reversed(meta["vocab"]["symbols"]))
        meta["version"] = 1
        if not keep_checksum:
            del meta["sha256"]
        (path / "checkpoint.json").write_text(json.dumps(meta, indent=1))
        if unsign_pointers:
            for name in ("latest.json", "best.json"):
                pointer = ws[run] / name
                if pointer.exists():
                    pointer.write_text(json.dumps({"checkpoint": path.name}, indent=1))
    return setup


def pointer_to_a_file(run: str, pointer: str, name: str):
    """A file ``checkpoints/NAME`` of the user's, and the pointer naming it."""
    def setup(ws):
        (ws[run] / "checkpoints" / name).write_text("my notes\n")
        document = json.loads((ws[run] / pointer).read_text())
        document["checkpoint"] = name
        (ws[run] / pointer).write_text(json.dumps(document))
    return setup


# a run whose latest.json was deleted by hand: never cleared without --overwrite, and every reader says so
_NO_LATEST = d.replace_file("lm", "latest.json", None)
case("rundir-train-lm-into-a-run-without-latest.json", train("lm", "--out {lm}"), "latest.json", "--overwrite",
     area="A", setup=_NO_LATEST)
case("rundir-train-classify-into-a-run-without-latest.json", train("classify", "--out {classify}"), "latest.json",
     "--overwrite", area="A", setup=d.replace_file("classify", "latest.json", None))
case("rundir-evaluate-a-run-without-latest.json", _EVALUATE["lm"], "latest.json", area="A", setup=_NO_LATEST,
     absent=["stopped before its first checkpoint"])
case("rundir-generate-a-run-without-latest.json", "generate {lm} --length 5", "latest.json", area="A",
     setup=_NO_LATEST, absent=["not an rnnkit run directory"])
case("rundir-resume-a-run-without-latest.json", "train lm --resume {lmr} --quiet", "latest.json", area="A",
     setup=d.replace_file("lmr", "latest.json", None))

# checkpoints/ is a file
for name, command in [("resume", _RESUME.replace("{lmr}", "{lm}")), ("evaluate", _EVALUATE["lm"]),
                      ("generate", "generate {lm} --length 5"), ("overwrite", train("lm", "--out {lm} --overwrite"))]:
    case(f"rundir-{name}-checkpoints-is-a-file", command, "checkpoints", "file", area="A",
         setup=checkpoints_a_file("lm"))

# pointers naming a file, or a name rnnkit never writes
case("rundir-latest.json-names-a-file-of-the-user", "generate {lm} --length 5 --checkpoint latest", "latest.json",
     area="A", setup=pointer_to_a_file("lm", "latest.json", "notes.txt"))
case("rundir-best.json-names-a-file-of-the-user", _EVALUATE["lm"], "best.json", area="A",
     setup=pointer_to_a_file("lm", "best.json", "notes.txt"))
case("rundir-resume-latest.json-names-a-file", "train lm --resume {lmr} --quiet", "latest.json", area="A",
     setup=pointer_to_a_file("lmr", "latest.json", "ckpt-0000x1"))
case("rundir-latest.json-names-the-checkpoints-dir", "generate {lm} --length 5 --checkpoint latest", "latest.json",
     area="A", setup=d.set_json("lm", "latest.json", ["checkpoint"], "."))
case("rundir-latest.json-names-an-absolute-path", "generate {lm} --length 5 --checkpoint latest", "latest.json",
     area="A", setup=d.set_json("lm", "latest.json", ["checkpoint"], "/etc"))

# NUL characters in the run's JSON
case("rundir-latest.json-nul-in-the-name", "generate {lm} --length 5 --checkpoint latest", "latest.json",
     area="A", setup=d.set_json("lm", "latest.json", ["checkpoint"], "ckpt-000001\u0000"))
case("rundir-checkpoint.json-nul-in-the-vocabulary", "generate {lm} --length 5", "checkpoint", area="A",
     setup=d.set_json("lm", "CKPT/checkpoint.json", ["vocab", "symbols", 0], "\u0000"))
case("rundir-resume-checkpoint.json-nul-in-the-data-path", _RESUME, "checkpoint", area="A",
     setup=d.set_json("lmr", "CKPT/checkpoint.json", ["configs", "data", "data"], "/tmp/x\u0000y"))
case("rundir-evaluate-best.json-nul-key", _EVALUATE["lm"], "best.json", area="A",
     setup=d.set_json("lm", "best.json", ["\u0000"], 1))

# a format-2 checkpoint relabelled as format 1 (unverified JSON) to use an edited vocabulary
for unsign, keep in [(False, False), (False, True), (True, False)]:
    label = ("pointers-unsigned" if unsign else "pointers-signed") + ("-checksum-kept" if keep else "")
    for name, command in [("generate", "generate {lm} --length 5"), ("evaluate", _EVALUATE["lm"])]:
        case(f"rundir-{name}-version-1-bypass-{label}", command, "checkpoint.json", "format", area="A",
             setup=relabel_as_version_1("lm", unsign, keep))
case("rundir-resume-version-1-bypass", _RESUME, "checkpoint.json", "format", area="A",
     setup=relabel_as_version_1("lmr", unsign_pointers=True))

# an --overwrite that diverges in its first steps keeps the old run whole (mid-epoch checkpoints included)
case("rundir-overwrite-runaway-with-save-every", train("lm", "--out {lm} --overwrite --lr 1e6 --save-every 1 "
     "--epochs 1", steps=""), "--lr", "intact", area="A")
case("rundir-overwrite-nan-with-save-every", train("lm", "--out {lm} --overwrite --optimizer sgd --lr 1e8 --clip 0 "
     "--save-every 1 --log-gradients 1 --epochs 1", steps=""), "--lr", "intact", area="A")
case("rundir-overwrite-classify-runaway", train("classify", "--out {classify} --overwrite --lr 1e6 --save-every 1 "
     "--epochs 1", steps=""), "--lr", "intact", area="A")
