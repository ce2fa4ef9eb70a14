"""The table of bad inputs: what a careless or hostile user gives each `rnnkit` command.

Each :class:`Case` is one command line (``{name}`` stands for a path of the case's Workspace: a copy of a tiny
run or a valid input; see ``workspace.py``), the set-ups that damage something first, and the words the one
error line must hold: the problem's subject (a flag, a file) and, where the issue asks for it, the fix. Every
case is a mistake: the demanded behaviour is always exit status != 0, one ``error:`` line, nothing changed.

``area`` says whose code the behaviour belongs to (issue 17's split): A the run directory (checkpoints,
pointers, locks, symbolic links), B flags, inputs and outputs, C the trainer (divergence, runaway losses).
"""

import shlex
from dataclasses import dataclass

import numpy as np

from . import damage as d


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    words: tuple[str, ...]
    area: str
    setup: tuple = ()
    absent: tuple[str, ...] = ()  # words the line must not hold (a message blaming the wrong thing)
    stdin: bytes = b""  # standard input, decoded as UTF-8 like a real terminal's
    may_create: str | None = None  # a folder in which a failure may leave new files (a new run's last good state)

    @property
    def command(self) -> str:
        """The command as a person would name it: ``train lm``, ``diagnose gradients``, ``evaluate``."""
        words = [arg for arg in self.argv[:2] if not arg.startswith(("-", "{"))]
        return " ".join(words if words and words[0] in ("train", "diagnose", "bench") else words[:1])


CASES: list[Case] = []


def case(id: str, command: str, *words: str, area: str = "B", setup=(), absent=(), stdin=b"", may_create=None):
    """Add a case; ``command`` is split like a shell line."""
    assert all(existing.id != id for existing in CASES), id
    setup = setup if isinstance(setup, (list, tuple)) else (setup,)
    CASES.append(Case(id, tuple(shlex.split(command)), words, area, tuple(setup), tuple(absent), stdin, may_create))


# -------------------------------------------------------------------------------------- training commands

_DATA = {
    "lm": "--data {text}",
    "classify": "--data {csv}",
    "tag": "--data {conllu}",
    "forecast": "--data {series} --target value --date-column month",
    "translate": "--source {src} --target {tgt}",
    "caption": "--train-size 64 --valid-size 16 --test-size 16 --max-digits 3",
    "music": "--data {chorales}",
}
_MODEL = {
    "lm": "--layers 1 --hidden 8 --embedding 8 --seq-len 10 --batch-size 4",
    "classify": "--hidden 8 --embedding 8 --batch-size 8",
    "tag": "--hidden 8 --embedding 8 --char-embedding 4 --char-hidden 4 --batch-size 4",
    "forecast": "--window 12 --horizon 2 --hidden 8 --batch-size 16",
    "translate": "--hidden 8 --embedding 8 --batch-size 8 --min-freq 1",
    "caption": "--hidden 8 --features 8 --channels 4 --embedding 8 --batch-size 32",
    "music": "--hidden 8 --nade-hidden 4 --batch-size 4",
}


def train(task: str, extra: str = "", data: str | None = None, steps: str = "--max-steps 2") -> str:
    """A tiny training of ``task`` into {tmp}/out; ``extra`` flags come last and so win over the defaults."""
    return (f"train {task} {_DATA[task] if data is None else data} {_MODEL[task]} {steps} --seed 0 --quiet "
            f"--out {{tmp}}/out {extra}")


# train lm: flags out of range, of the wrong type, or not finite
for flag, value in [
    ("--seed", "-1"), ("--seed", str(2**70)), ("--seed", "abc"),
    ("--lr", "nan"), ("--lr", "inf"), ("--lr", "-0.1"), ("--lr", "fast"),
    ("--hidden", "1000000000"), ("--hidden", "0"), ("--hidden", "3.5"),
    ("--embedding", "-1"), ("--layers", "0"), ("--seq-len", "0"), ("--batch-size", "-3"),
    ("--epochs", "0"), ("--max-steps", "0"), ("--time-budget", "nan"), ("--time-budget", "-5"),
    ("--valid-fraction", "1"), ("--valid-fraction", "nan"), ("--dropout", "1"), ("--dropout", "nan"),
    ("--zoneout", "nan"), ("--weight-drop", "nan"), ("--recurrent-dropout", "nan"),
    ("--clip-value", "nan"), ("--clip", "-1"), ("--weight-decay", "nan"), ("--momentum", "nan"),
    ("--forget-bias", "nan"), ("--init-range", "inf"), ("--lr-decay", "0"), ("--lr-decay", "nan"),
    ("--log-gradients", "0"), ("--save-every", "0"), ("--patience", "0"),
    ("--level", "byte"), ("--cell", "transformer"), ("--engine", "warp"), ("--device", "tpu"),
]:
    case(f"train-lm{flag}={value}", train("lm", f"{flag} {value}"), flag)
case("train-lm--clip=nan-blames-clip", train("lm", "--clip nan"), "--clip", absent=["--lr"])
case("train-lm--valid-fraction-rounds-to-nothing", train("lm", "--valid-fraction 0.00001"), "--valid-fraction")
case("train-lm--batch-size-larger-than-data", train("lm", "--batch-size 100000"), "--batch-size|batch size")
case("train-lm--tie-weights-sizes-differ", train("lm", "--tie-weights --embedding 8 --hidden 16"), "--tie-weights")
case("train-lm-unknown-flag", train("lm", "--hiden 3"), "--hiden")
# an engine that cannot run the cell or an option: the layer's one sentence, before a run directory is made
case("train-lm--engine-scan-for-an-lstm", train("lm", "--engine scan"), "scan engine", "'lstm'")
case("train-lm--engine-fused-with-zoneout", train("lm", "--engine fused --zoneout 0.1"), "zoneout", "fused")
case("train-music--engine-fused-for-a-mingru", train("music", "--cell mingru --engine fused"), "'mingru'", "fused")
case("train-lm-runaway-loss--lr=1e6", train("lm", "--lr 1e6 --epochs 1", steps=""), "--lr", area="C",
     may_create="out")
case("train-lm-diverges-to-nan-json", train("lm", "--optimizer sgd --lr 1e8 --clip 0 --epochs 1 --json", steps=""),
     "--lr", area="C", may_create="out")

# train lm: files
case("train-lm-data-missing", train("lm", data="--data {tmp}/nothere.txt"), "nothere.txt")
case("train-lm-data-empty", train("lm", data="--data {tmp}/empty.txt"), "empty.txt", setup=d.write("empty.txt", b""))
case("train-lm-data-binary", train("lm", data="--data {tmp}/blob.bin"), "blob.bin", setup=d.write("blob.bin", d.GARBAGE))
case("train-lm-data-latin1", train("lm", data="--data {tmp}/latin1.txt"), "latin1.txt",
     setup=d.write("latin1.txt", "café au lait\n".encode("latin-1") * 200))
case("train-lm-data-utf16", train("lm", data="--data {tmp}/utf16.txt"), "utf16.txt",
     setup=d.write("utf16.txt", ("def f(x):\n    return x\n" * 100).encode("utf-16")))
case("train-lm-data-too-short", train("lm", data="--data {tmp}/short.txt"), "short.txt", setup=d.write("short.txt", "abc"))
case("train-lm-data-is-a-folder", train("lm", data="--data {tmp}/corpus_dir"), "corpus_dir", setup=d.mkdir("corpus_dir", "a.txt"))
case("train-lm-valid-data-missing", train("lm", "--valid-data {tmp}/nothere-valid.txt"), "nothere-valid.txt")
case("train-lm-valid-data-empty", train("lm", "--valid-data {tmp}/empty-valid.txt"), "empty-valid.txt",
     setup=d.write("empty-valid.txt", b""))
case("train-lm-valid-data-binary", train("lm", "--valid-data {tmp}/valid.bin"), "valid.bin",
     setup=d.write("valid.bin", d.GARBAGE))
case("train-lm-word-level-blank-lines", train("lm", "--level word", data="--data {tmp}/blank.txt"), "blank.txt",
     setup=d.write("blank.txt", "\n \n\t\n" * 50))

# train lm: --config TOML files. Files that do not parse are read with flags beside them; the others hold every
# setting themselves (see damage.toml), since a flag given on the command line would win over the bad key.
_CONFIG = "train lm --data {text} --config {tmp}/bad.toml --max-steps 2 --quiet --out {tmp}/out"
case("train-lm-config-missing", "train lm --data {text} --config {tmp}/missing.toml --quiet --out {tmp}/out", "missing.toml")
case("train-lm-config-not-toml", _CONFIG, "bad.toml", setup=d.write("bad.toml", "hidden = = 3\n"))
case("train-lm-config-binary", _CONFIG, "bad.toml", setup=d.write("bad.toml", d.GARBAGE))
case("train-lm-config-latin1", _CONFIG, "bad.toml", setup=d.write("bad.toml", "# caf\xe9\nhidden = 8\n".encode("latin-1")))
case("train-lm-config-empty", _CONFIG, "holds no settings", setup=d.write("bad.toml", "# nothing set\n"))
for name, body, word in [
    ("hidden-float", "hidden = 3.5", "hidden"),
    ("epochs-bool", "epochs = true", "epochs"),
    ("lr-string", 'lr = "fast"', "lr"),
    ("lr-nan", "lr = nan", "lr"),
    ("lr-inf", "lr = inf", "lr"),
    ("seq-len-negative", "seq-len = -1", "seq-len"),
    ("seed-huge", f"seed = {2**70}", "seed"),
    ("hidden-list", "hidden = [8]", "hidden"),
    ("data-number", "data = 5", "data"),
    ("time-budget-nan", "time-budget = nan", "time-budget"),
    ("unknown-key", "colour = 3", "colour"),
    ("snake-case-key", "seq_len = 20", "seq_len"),
    ("table", "[model]\nhidden = 8", "model"),
]:
    case(f"train-lm-config-{name}", "train lm --config {tmp}/bad.toml --quiet --out {tmp}/out", word,
         setup=d.toml("bad.toml", body))

# train lm: --out and --resume (the run directory)
case("train-lm-out-under-a-file", train("lm", "--out {text}/run"), "tiny.txt")
case("train-lm-out-in-proc", train("lm", "--out /proc/rnnkit-bad-input"), "/proc/rnnkit-bad-input")
case("train-lm-out-equals-data", train("lm", "--out {text}"), "tiny.txt")
case("train-lm-out-holds-a-run", train("lm", "--out {lm}"), "--resume", "--overwrite", area="A")
case("train-classify-out-holds-an-lm-run", train("classify", "--out {lm}"), "--overwrite", area="A")
case("train-lm-resume-missing", "train lm --resume {tmp}/nowhere --quiet", "nowhere", area="A")
case("train-lm-resume-a-file", "train lm --resume {text} --quiet", "tiny.txt", area="A")
case("train-lm-resume-empty-folder", "train lm --resume {tmp}/empty_dir --quiet", "empty_dir", area="A",
     setup=d.mkdir("empty_dir"))
case("train-lm-resume-other-vocabulary", "train lm --resume {lmr} --data {tmp}/other.txt --quiet", "vocabulary",
     area="A", setup=d.write("other.txt", "completely different letters: QWERTYZ!\n" * 80))
case("train-lm-resume-other-hidden", "train lm --resume {lmr} --hidden 32 --quiet", "--hidden", area="A")
case("train-lm-resume-other-lr", "train lm --resume {lmr} --lr 0.1 --quiet", "--lr", area="A")
case("train-classify-resume-an-lm-run", "train classify --resume {lmr} --quiet", "classify", area="A")
case("train-lm-resume-a-classify-run", "train lm --resume {classify} --quiet", "classify", area="A")
case("train-lm-overwrite-with-missing-data", train("lm", "--out {lm} --overwrite", data="--data {tmp}/missing.txt"),
     "missing.txt", area="A")
case("train-lm-resume-after-kill-in-first-checkpoint", "train lm --resume {tmp}/killed --quiet", "killed",
     area="A", setup=d.interrupted_first_checkpoint("killed"), absent=["not an rnnkit run directory"])

# train lm --resume: an edited checkpoint.json or best.json (issue 17: tracebacks and silent trust)
_RESUME = "train lm --resume {lmr} --quiet"
for name, keys, value in [
    ("configs-null", ["configs"], None),
    ("configs-model-a-string", ["configs", "model"], "lstm"),
    ("task-changed", ["task"], "tag"),
    ("seq-len-a-string", ["configs", "data", "seq_len"], "x"),
    ("batch-index-huge", ["trainer", "position", "batch_index"], 10**9),
    ("optimizer-a-string", ["trainer", "optimizer"], "adam"),
    ("rng-python-a-list", ["trainer", "rng", "python"], [1, 2]),
    ("position-emptied", ["trainer", "position"], {}),
    ("data-is-etc-passwd", ["configs", "data", "data"], "/etc/passwd"),
    ("hidden-size-changed", ["configs", "model", "hidden_size"], 9),
    ("vocabulary-shortened", ["vocab", "symbols"], ["a", "b"]),
    ("format-foreign", ["format"], "other-tool"),
    ("version-future", ["version"], 99),
]:
    case(f"train-lm-resume-checkpoint.json-{name}", _RESUME, "checkpoint", area="A",
         setup=d.set_json("lmr", "CKPT/checkpoint.json", keys, value))
case("train-lm-resume-checkpoint.json-truncated", _RESUME, "checkpoint", area="A",
     setup=d.truncate("lmr", "CKPT/checkpoint.json"))
case("train-lm-resume-checkpoint.json-binary", _RESUME, "checkpoint", area="A",
     setup=d.replace_file("lmr", "CKPT/checkpoint.json", d.GARBAGE))
case("train-lm-resume-best.json-empty-object", _RESUME, "best.json", area="A", setup=d.set_json("lmr", "best.json", [], {}))
case("train-lm-resume-latest.json-escapes", _RESUME, "latest.json", area="A",
     setup=d.set_json("lmr", "latest.json", ["checkpoint"], "../../elsewhere"))
case("train-lm-resume-latest.json-deleted", _RESUME, "latest.json", area="A", setup=d.replace_file("lmr", "latest.json", None))
case("train-lm-resume-state-random-bytes", _RESUME, "state.safetensors", area="A",
     setup=d.replace_file("lmr", "CKPT/state.safetensors", d.GARBAGE))
case("train-lm-resume-state-deleted", _RESUME, "state.safetensors", area="A",
     setup=d.replace_file("lmr", "CKPT/state.safetensors", None))
case("train-lm-resume-weights-truncated", _RESUME, "weights.safetensors", area="A",
     setup=d.truncate("lmr", "CKPT/weights.safetensors"))

# train lm: symbolic links inside a run directory (never followed for writing or deleting)
case("train-lm-overwrite-checkpoints-symlink", train("lm", "--out {lm} --overwrite"), "link", area="A",
     setup=d.link_outside("lm", "checkpoints", "elsewhere"))
case("train-lm-resume-checkpoints-symlink", _RESUME, "link", area="A",
     setup=d.link_outside("lmr", "checkpoints", "elsewhere"))
case("train-lm-overwrite-checkpoint-dir-symlink", train("lm", "--out {lm} --overwrite"), "link", area="A",
     setup=d.link_outside("lm", "CKPT", "elsewhere"))
case("train-lm-resume-gradients.jsonl-symlink", _RESUME, "link", area="A",
     setup=d.link_outside("lmr", "gradients.jsonl", "outside.txt", copy_original=False))
case("train-lm-resume-metrics.jsonl-symlink", _RESUME, "link", area="A",
     setup=d.link_outside("lmr", "metrics.jsonl", "outside.jsonl"))
case("train-lm-overwrite-metrics.jsonl-symlink", train("lm", "--out {lm} --overwrite"), "link", area="A",
     setup=d.link_outside("lm", "metrics.jsonl", "outside.jsonl"))
case("train-lm-resume-latest.json-symlink", _RESUME, "link", area="A",
     setup=d.link_outside("lmr", "latest.json", "outside.json"))
case("train-lm-overwrite-best.json-symlink", train("lm", "--out {lm} --overwrite"), "link", area="A",
     setup=d.link_outside("lm", "best.json", "outside.json"))

# train classify
case("train-classify-data-missing", train("classify", data="--data {tmp}/nothere.csv"), "nothere.csv")
case("train-classify-data-empty", train("classify", data="--data {tmp}/empty.csv"), "empty.csv", setup=d.write("empty.csv", b""))
case("train-classify-data-binary", train("classify", data="--data {tmp}/blob.csv"), "blob.csv",
     setup=d.write("blob.csv", d.GARBAGE))
case("train-classify-data-cp1252", train("classify", data="--data {tmp}/fr.csv"), "--encoding",
     setup=d.write("fr.csv", "text,label\nun film très bien,pos\nun film très mauvais,neg\n".encode("cp1252")))
case("train-classify-wrong-columns", train("classify", data="--data {tmp}/cols.csv"), "text", "review",
     setup=d.write("cols.csv", "review,sentiment\nnice,pos\nbad,neg\n"))
case("train-classify-ragged-row", train("classify", data="--data {tmp}/ragged.csv"), "ragged.csv",
     setup=d.write("ragged.csv", "text,label\nnice film,pos\nbad film\n"))
case("train-classify-one-label", train("classify", "--valid-fraction 0", data="--data {tmp}/one.csv"), "label",
     setup=d.write("one.csv", "text,label\nnice film,pos\ngood film,pos\n"))
case("train-classify--text-column-out-of-range", train("classify", "--text-column 9"), "--text-column|column 9")
case("train-classify--label-column-unknown", train("classify", "--label-column stars"), "stars")
case("train-classify--delimiter-two-chars", train("classify", "--delimiter ab"), "--delimiter")
case("train-classify--encoding-unknown", train("classify", "--encoding klingon"), "--encoding")
case("train-classify--max-vocab=2", train("classify", "--max-vocab 2"), "--max-vocab")
case("train-classify--lr=nan", train("classify", "--lr nan"), "--lr")
case("train-classify--seed=-1", train("classify", "--seed -1"), "--seed")
case("train-classify-valid-label-unknown", train("classify", "--valid {tmp}/valid.csv"), "mixed",
     setup=d.write("valid.csv", "text,label\ngreat film,pos\nmeh film,mixed\n"))
case("train-classify-out-equals-data", train("classify", "--out {csv}"), "reviews.csv")
case("train-classify-config-hidden-float", train("classify", "--config {tmp}/c.toml"), "hidden",
     setup=d.write("c.toml", "hidden = 3.5\n"))

# train tag
_BROKEN_CONLLU = "# sent_id = 1\n1\tthe\tthe\tDET\n2\tcat\tcat\tNOUN\tNN\t_\t0\t_\t_\t_\n\n"
case("train-tag-conllu-too-few-columns", train("tag", data="--data {tmp}/broken.conllu"), "broken.conllu",
     setup=d.write("broken.conllu", _BROKEN_CONLLU * 10))
case("train-tag-conllu-id-not-a-number", train("tag", data="--data {tmp}/broken.conllu"), "broken.conllu",
     setup=d.write("broken.conllu", "one\tthe\tthe\tDET\tDT\t_\t0\t_\t_\t_\n\n" * 10))
case("train-tag-conll-file-as-conllu", train("tag", data="--data {conll} --format conllu"), "--format")
case("train-tag-conllu-file-as-conll", train("tag", data="--data {conllu} --format conll"), "--format")
case("train-tag--column-ner-on-conllu", train("tag", "--column ner"), "--column")
case("train-tag-data-empty", train("tag", data="--data {tmp}/empty.conllu"), "empty.conllu", setup=d.write("empty.conllu", b""))
case("train-tag-data-binary", train("tag", data="--data {tmp}/blob.conllu"), "blob.conllu",
     setup=d.write("blob.conllu", d.GARBAGE))
case("train-tag-data-latin1", train("tag", data="--data {tmp}/latin1.conllu"), "latin1.conllu",
     setup=d.write("latin1.conllu", "1\tcaf\xe9\tcaf\xe9\tNOUN\tNN\t_\t0\t_\t_\t_\n\n".encode("latin-1") * 10))
case("train-tag-only-comments", train("tag", data="--data {tmp}/comments.conllu"), "comments.conllu",
     setup=d.write("comments.conllu", "# sent_id = 1\n# text = nothing\n\n" * 5))
case("train-tag-valid-missing", train("tag", "--valid {tmp}/nothere.conllu"), "nothere.conllu")
case("train-tag--word-dropout=nan", train("tag", "--word-dropout nan"), "--word-dropout")
case("train-tag--seed=2**70", train("tag", f"--seed {2**70}"), "--seed")

# train forecast
case("train-forecast-value-not-a-number", train("forecast"), "value", "twelve", setup=d.set_cell("series", 5, 1, "twelve"))
case("train-forecast-value-inf", train("forecast"), "value", setup=d.set_cell("series", 5, 1, "inf"))
case("train-forecast-value-nan", train("forecast"), "value", setup=d.set_cell("series", 5, 1, "nan"))
case("train-forecast-value-1e308", train("forecast"), "value", setup=d.set_cell("series", 5, 1, "1e308"))
case("train-forecast-feature-inf", train("forecast", "--features x"), "x", setup=d.set_cell("series", 7, 2, "-inf"))
case("train-forecast--target-missing-column", train("forecast", data="--data {series} --target level"), "level")
case("train-forecast--features-unknown", train("forecast", "--features nope"), "nope")
case("train-forecast--date-column-not-dates", train("forecast", "--date-column value"), "value")
case("train-forecast-one-date-garbled", train("forecast"), "not-a-date", setup=d.set_cell("series", 50, 0, "not-a-date"))
case("train-forecast--window=0", train("forecast", "--window 0"), "--window")
case("train-forecast--horizon=-1", train("forecast", "--horizon -1"), "--horizon")
case("train-forecast--window=abc", train("forecast", "--window abc"), "--window")
case("train-forecast--test-fraction=nan", train("forecast", "--test-fraction nan"), "--test-fraction")
case("train-forecast--valid-fraction=nan", train("forecast", "--valid-fraction nan"), "--valid-fraction")
case("train-forecast--season=0", train("forecast", "--season 0"), "--season")
case("train-forecast--log-of-negative-values", train("forecast", "--log"), "--log",
     setup=d.set_cell("series", 9, 1, "-4.0"))
case("train-forecast-data-empty", train("forecast", data="--data {tmp}/empty.csv --target value"), "empty.csv",
     setup=d.write("empty.csv", b""))
case("train-forecast-header-only", train("forecast", data="--data {tmp}/header.csv --target value"), "header.csv",
     setup=d.write("header.csv", "month,value,x\n"))
case("train-forecast-data-binary", train("forecast", data="--data {tmp}/blob.csv --target value"), "blob.csv",
     setup=d.write("blob.csv", d.GARBAGE))
case("train-forecast--lr=nan", train("forecast", "--lr nan"), "--lr")
case("train-forecast-out-equals-data", train("forecast", "--out {series}"), "monthly.csv")

# train translate
case("train-translate-line-counts-differ", train("translate", data="--source {src} --target {tmp}/short.en"), "short.en",
     setup=d.write("short.en", "A dog runs.\nA cat sleeps.\n"))
case("train-translate-source-missing", train("translate", data="--source {tmp}/nothere.de --target {tgt}"), "nothere.de")
case("train-translate-target-binary", train("translate", data="--source {src} --target {tmp}/blob.en"), "blob.en",
     setup=d.write("blob.en", d.GARBAGE))
case("train-translate-source-latin1", train("translate", data="--source {tmp}/latin1.de --target {tgt}"), "latin1.de",
     setup=d.write("latin1.de", "ein Hund läuft.\n".encode("latin-1") * 48))
case("train-translate-all-sources-empty", train("translate", data="--source {tmp}/blank.de --target {tgt}"), "blank.de",
     setup=d.write("blank.de", "\n" * 48))
case("train-translate--valid-source-without-target", train("translate", "--valid-source {src}"), "--valid-target")
case("train-translate--max-length=0", train("translate", "--max-length 0"), "--max-length")
case("train-translate--label-smoothing=nan", train("translate", "--label-smoothing nan"), "--label-smoothing")
case("train-translate--teacher-forcing=nan", train("translate", "--teacher-forcing nan"), "--teacher-forcing")
case("train-translate--beam=0", train("translate", "--beam 0"), "--beam")
case("train-translate--length-penalty=inf", train("translate", "--length-penalty inf"), "--length-penalty")
case("train-translate-out-equals-source", train("translate", "--out {src}"), "train.de")

# train caption
case("train-caption-data-missing", train("caption", data="--data {tmp}/nothere.npz"), "nothere.npz")
case("train-caption-data-garbage", train("caption", data="--data {tmp}/bad.npz"), "bad.npz", setup=d.write("bad.npz", d.GARBAGE))
case("train-caption-data-without-captions", train("caption", data="--data {tmp}/bad.npz"), "captions",
     setup=d.npz("bad.npz", images=np.zeros((4, 8, 24), dtype="uint8")))
case("train-caption-data-images-2d", train("caption", data="--data {tmp}/bad.npz"), "bad.npz",
     setup=d.npz("bad.npz", images=np.zeros((8, 24), dtype="uint8"),
                 captions=np.array(["one"] * 8)))
case("train-caption-data-captions-all-empty", train("caption", data="--data {tmp}/bad.npz"), "bad.npz",
     setup=d.npz("bad.npz", images=np.zeros((4, 8, 24), dtype="uint8"),
                 captions=np.array(["", " ", "", ""])))
case("train-caption-valid-data-other-image-size", train("caption", "--valid-data {tmp}/valid.npz", data="--data {npz}"),
     "valid.npz", setup=d.npz("valid.npz", images=np.zeros((4, 16, 16), dtype="uint8"),
                              captions=np.array(["one two"] * 4)))
case("train-caption--channels-not-numbers", train("caption", "--channels 4,x"), "--channels")
case("train-caption--channels-empty", train("caption", "--channels ''"), "--channels")
case("train-caption--teacher-forcing=nan", train("caption", "--teacher-forcing nan"), "--teacher-forcing")
case("train-caption--train-size=0", train("caption", "--train-size 0"), "--train-size")
case("train-caption--lr=inf", train("caption", "--lr inf"), "--lr")

# train music
case("train-music-data-missing", train("music", data="--data {tmp}/nothere.json"), "nothere.json")
case("train-music-data-not-json", train("music", data="--data {tmp}/bad.json"), "bad.json",
     setup=d.write("bad.json", "{train: [1,"))
case("train-music-data-binary", train("music", data="--data {tmp}/bad.json"), "bad.json", setup=d.write("bad.json", d.GARBAGE))
case("train-music-data-wrong-structure", train("music", data="--data {tmp}/bad.json"), "bad.json",
     setup=d.write("bad.json", '{"train": 5, "valid": "x"}'))
case("train-music-pitch-out-of-midi-range", train("music", data="--data {tmp}/bad.json"), "300",
     setup=d.write("bad.json", '{"train": [[[60], [300]], [[62]]], "valid": [[[60]]], "test": [[[60]]]}'))
case("train-music-empty-train-split", train("music", data="--data {tmp}/bad.json"), "train",
     setup=d.write("bad.json", '{"train": [], "valid": [], "test": []}'))
case("train-music--pitch-range-reversed", train("music", "--pitch-range 80-20"), "--pitch-range|pitch range")
case("train-music--pitch-range-garbage", train("music", "--pitch-range abc"), "--pitch-range|pitch range")
case("train-music--pitch-range-narrower-than-data", train("music", "--pitch-range 60-62"), "--pitch-range|pitch range")
case("train-music--step=nan", train("music", "--step nan"), "--step")
case("train-music--nade-hidden=0", train("music", "--nade-hidden 0"), "--nade-hidden")
case("train-music-folder-without-midi", train("music", data="--data {tmp}/nomidi"), "nomidi", setup=d.mkdir("nomidi", "a.txt"))
case("train-music-midi-garbage", train("music", data="--data {tmp}/bad.mid"), "bad.mid", setup=d.write("bad.mid", d.GARBAGE))
case("train-music--seq-len=0", train("music", "--seq-len 0"), "--seq-len")

# -------------------------------------------------------------------------------------- generate

for flag, value in [("--length", "0"), ("--temperature", "nan"), ("--temperature", "inf"), ("--top-p", "nan"),
                    ("--top-k", "0"), ("--seed", "-1"), ("--seed", str(2**70))]:
    case(f"generate-lm{flag}={value}", f"generate {{lm}} --length 5 {flag} {value}", flag)
case("generate-lm--prime-unseen-characters", "generate {lm} --length 5 --prime '§ΩЖ'", "--prime|prime")
case("generate-lm--checkpoint-best-missing", "generate {lm} --length 5 --checkpoint best", "best",
     area="A", setup=d.replace_file("lm", "best.json", None))
case("generate-a-file-not-a-folder", "generate {text}", "tiny.txt", area="A", absent=["does not exist"])
case("generate-missing-folder", "generate {tmp}/nowhere", "nowhere", area="A")
case("generate-empty-folder", "generate {tmp}/empty_dir", "empty_dir", area="A", setup=d.mkdir("empty_dir"))
case("generate-classify-run", "generate {classify}", "classify")
case("generate-lm-music-flag--midi", "generate {lm} --length 5 --midi {tmp}/x.mid", "--midi")
case("generate-music-lm-flag--prime", "generate {music} --prime abc --midi {tmp}/x.mid", "--prime")
case("generate-music--prime-piece-out-of-range", "generate {music} --prime-piece test:99 --midi {tmp}/x.mid", "test:99")
case("generate-music--prime-piece-garbage", "generate {music} --prime-piece bogus --midi {tmp}/x.mid", "--prime-piece")
case("generate-music--prime-midi-missing", "generate {music} --prime-midi {tmp}/missing.mid --midi {tmp}/x.mid", "missing.mid")
case("generate-music--prime-midi-garbage", "generate {music} --prime-midi {tmp}/garbage.mid --midi {tmp}/x.mid",
     "garbage.mid", setup=d.write("garbage.mid", d.GARBAGE))
case("generate-music--midi-equals--prime-midi", "generate {music} --prime-midi {tmp}/prime.mid --midi {tmp}/prime.mid",
     "prime.mid", setup=d.midi_file("prime.mid"))
case("generate-music--midi-into-the-run", "generate {music} --midi {music}/latest.json", "latest.json")
case("generate-music--plot-under-a-file", "generate {music} --plot {text}/roll.png", "tiny.txt")
case("generate-music--wav-in-proc", "generate {music} --wav /proc/rnnkit-bad.wav", "/proc/rnnkit-bad.wav")
case("generate-music--bpm=nan", "generate {music} --bpm nan --midi {tmp}/x.mid", "--bpm")
case("generate-music--bpm=inf", "generate {music} --bpm inf --midi {tmp}/x.mid", "--bpm")
case("generate-music--program=128", "generate {music} --program 128 --midi {tmp}/x.mid", "--program")
case("generate-music--data-missing", "generate {music} --prime-piece test:0 --data {tmp}/missing.json --midi {tmp}/x.mid",
     "missing.json")

# -------------------------------------------------------------------------------------- garbage checkpoints, every task

_APPLY = {  # a command that loads each task's weights
    "lm": "generate {lm} --length 5",
    "classify": "predict {classify} --input {tmp}/texts.txt",
    "tag": "predict {tag} --input {tmp}/texts.txt",
    "forecast": "predict {forecast} --data {series} --output {tmp}/forecast.csv",
    "translate": "translate {translate} --input {src}",
    "caption": "predict {caption} --input {png}",
    "music": "generate {music} --midi {tmp}/x.mid",
}
_EVALUATE = {
    "lm": "evaluate {lm} --data {text}",
    "classify": "evaluate {classify} --data {csv}",
    "tag": "evaluate {tag} --data {conllu}",
    "forecast": "evaluate {forecast} --data {series}",
    "translate": "evaluate {translate} --source {src} --target {tgt}",
    "caption": "evaluate {caption}",
    "music": "evaluate {music}",
}
for task in _APPLY:
    texts = d.write("texts.txt", "the film was great\nthe cat sees a dog .\n")
    case(f"{_APPLY[task].split()[0]}-{task}-weights-random-bytes", _APPLY[task], "weights.safetensors", area="A",
         setup=[texts, d.replace_file(task, "CKPT/weights.safetensors", d.GARBAGE)])
    case(f"evaluate-{task}-weights-truncated", _EVALUATE[task], "weights.safetensors", area="A",
         setup=d.truncate(task, "BEST/weights.safetensors"))
case("generate-lm-weights-of-another-model", "generate {lm} --length 5", "checkpoint", area="A",
     setup=d.foreign_weights("lm", "classify"))
case("generate-lm-weights-deleted", "generate {lm} --length 5", "weights.safetensors", area="A",
     setup=d.replace_file("lm", "CKPT/weights.safetensors", None))
case("explain-weights-empty", "explain {lm} --text {text}", "weights.safetensors", area="A",
     setup=d.replace_file("lm", "CKPT/weights.safetensors", b""))

# edited checkpoint metadata, read by the commands that apply a run
for name, keys, value in [("configs-model-a-string", ["configs", "model"], "lstm"), ("configs-null", ["configs"], None),
                          ("task-changed", ["task"], "classify"), ("vocabulary-shortened", ["vocab", "symbols"], ["a"])]:
    case(f"generate-lm-checkpoint.json-{name}", "generate {lm} --length 5", "checkpoint", area="A",
         setup=d.set_json("lm", "CKPT/checkpoint.json", keys, value))
case("evaluate-lm-checkpoint.json-truncated", "evaluate {lm} --data {text}", "checkpoint", area="A",
     setup=d.truncate("lm", "CKPT/checkpoint.json"))
case("evaluate-lm-checkpoint.json-empty", "evaluate {lm} --data {text}", "checkpoint", area="A",
     setup=d.replace_file("lm", "CKPT/checkpoint.json", b""))
case("generate-lm-checkpoint.json-deleted", "generate {lm} --length 5", "checkpoint", area="A",
     setup=d.replace_file("lm", "CKPT/checkpoint.json", None))
case("evaluate-lm-best.json-empty-object", "evaluate {lm} --data {text}", "best.json", area="A",
     setup=d.set_json("lm", "best.json", [], {}))
case("evaluate-lm-best.json-names-a-missing-checkpoint", "evaluate {lm} --data {text}", "best.json", area="A",
     setup=d.set_json("lm", "best.json", ["checkpoint"], "ckpt-000099"))
case("evaluate-lm-best.json-escapes", "evaluate {lm} --data {text} --checkpoint best", "best.json", area="A",
     setup=d.set_json("lm", "best.json", ["checkpoint"], "../../lm"))
case("generate-lm-latest.json-garbage", "generate {lm} --length 5 --checkpoint latest", "latest.json", area="A",
     setup=d.replace_file("lm", "latest.json", d.GARBAGE))
case("generate-lm-latest.json-a-list", "generate {lm} --length 5 --checkpoint latest", "latest.json", area="A",
     setup=d.replace_file("lm", "latest.json", b"[]"))
case("evaluate-tag-checkpoint-best-missing", "evaluate {tag} --data {conllu} --checkpoint best", "best", area="A",
     setup=d.replace_file("tag", "best.json", None))
case("predict-classify-checkpoint.json-format-foreign", "predict {classify} --input {csv}", "checkpoint", area="A",
     setup=d.set_json("classify", "CKPT/checkpoint.json", ["format"], "other-tool"))

# -------------------------------------------------------------------------------------- evaluate

case("evaluate-lm-data-missing", "evaluate {lm} --data {tmp}/nothere.txt", "nothere.txt")
case("evaluate-lm-data-empty", "evaluate {lm} --data {tmp}/empty.txt", "empty.txt", setup=d.write("empty.txt", b""))
case("evaluate-lm-data-binary", "evaluate {lm} --data {tmp}/blob.bin", "blob.bin", setup=d.write("blob.bin", d.GARBAGE))
case("evaluate-lm-data-latin1", "evaluate {lm} --data {tmp}/latin1.txt", "latin1.txt",
     setup=d.write("latin1.txt", "def f(x): return 'caf\xe9'\n".encode("latin-1") * 50))
case("evaluate-lm--seq-len=0", "evaluate {lm} --data {text} --seq-len 0", "--seq-len")
case("evaluate-lm-no-data", "evaluate {lm}", "--data")
case("evaluate-lm-music-flag--split", "evaluate {lm} --data {text} --split test", "--split")
case("evaluate-lm-translation-flags", "evaluate {lm} --source {src} --target {tgt}", "--source")
case("evaluate-tag-lm-flag--seq-len", "evaluate {tag} --data {conllu} --seq-len 5", "--seq-len")
case("evaluate-classify-translation-flag--source", "evaluate {classify} --data {csv} --source {src}", "--source")
case("evaluate-classify-no-data", "evaluate {classify}", "--data")
case("evaluate-classify-wrong-columns", "evaluate {classify} --data {tmp}/cols.csv", "review",
     setup=d.write("cols.csv", "review,sentiment\nnice,pos\nbad,neg\n"))
case("evaluate-classify-unknown-label", "evaluate {classify} --data {tmp}/test.csv", "meh",
     setup=d.write("test.csv", "text,label\ngreat film,pos\nso-so,meh\n"))
case("evaluate-classify-data-empty", "evaluate {classify} --data {tmp}/empty.csv", "empty.csv", setup=d.write("empty.csv", b""))
case("evaluate-classify-data-binary", "evaluate {classify} --data {tmp}/blob.csv", "blob.csv",
     setup=d.write("blob.csv", d.GARBAGE))
case("evaluate-classify-data-cp1252", "evaluate {classify} --data {tmp}/fr.csv", "--encoding",
     setup=d.write("fr.csv", "text,label\ntrès bien,pos\ntrès mauvais,neg\n".encode("cp1252")))
case("evaluate-tag-conllu-too-few-columns", "evaluate {tag} --data {tmp}/broken.conllu", "broken.conllu",
     setup=d.write("broken.conllu", _BROKEN_CONLLU))
case("evaluate-tag-conll2003-on-a-conllu-run", "evaluate {tag} --data {conll}", "tiny.conll")
case("evaluate-tag-data-missing", "evaluate {tag} --data {tmp}/nothere.conllu", "nothere.conllu")
case("evaluate-tag-data-binary", "evaluate {tag} --data {tmp}/blob.conllu", "blob.conllu",
     setup=d.write("blob.conllu", d.GARBAGE))
case("evaluate-forecast-value-not-a-number", "evaluate {forecast} --data {series}", "value",
     setup=d.set_cell("series", 100, 1, "twelve"))
case("evaluate-forecast-value-1e308-json", "evaluate {forecast} --data {series} --json", "value",
     setup=d.set_cell("series", 118, 1, "1e308"))
case("evaluate-forecast-value-inf", "evaluate {forecast} --data {series}", "value", setup=d.set_cell("series", 118, 1, "inf"))
case("evaluate-forecast-value-nan", "evaluate {forecast} --data {series}", "value", setup=d.set_cell("series", 118, 1, "nan"))
case("evaluate-forecast-missing-target-column", "evaluate {forecast} --data {tmp}/renamed.csv", "value",
     setup=d.write("renamed.csv", "month,level,x\n2000-01,1.0,0.5\n"))
case("evaluate-forecast-too-short", "evaluate {forecast} --data {tmp}/short.csv", "--window",
     setup=d.head("series", "short.csv", 11))
case("evaluate-forecast-no-data", "evaluate {forecast}", "--data")
case("evaluate-forecast-data-empty", "evaluate {forecast} --data {tmp}/empty.csv", "empty.csv", setup=d.write("empty.csv", b""))
case("evaluate-translate-source-without-target", "evaluate {translate} --source {src}", "--target")
case("evaluate-translate-line-counts-differ", "evaluate {translate} --source {src} --target {tmp}/short.en", "short.en",
     setup=d.write("short.en", "A dog runs.\n"))
case("evaluate-translate-source-missing", "evaluate {translate} --source {tmp}/nothere.de --target {tgt}", "nothere.de")
case("evaluate-translate-source-binary", "evaluate {translate} --source {tmp}/blob.de --target {tgt}", "blob.de",
     setup=d.write("blob.de", d.GARBAGE))
case("evaluate-translate-lm-flag--data", "evaluate {translate} --data {text}", "--data")
case("evaluate-caption-data-garbage", "evaluate {caption} --data {tmp}/bad.npz", "bad.npz", setup=d.write("bad.npz", d.GARBAGE))
case("evaluate-caption-data-without-captions", "evaluate {caption} --data {tmp}/bad.npz", "captions",
     setup=d.npz("bad.npz", images=np.zeros((4, 8, 24), dtype="uint8")))
case("evaluate-caption-data-other-image-size", "evaluate {caption} --data {tmp}/wide.npz", "wide.npz",
     setup=d.npz("wide.npz", images=np.zeros((4, 8, 40), dtype="uint8"),
                 captions=np.array(["one two"] * 4)))
case("evaluate-music-data-missing", "evaluate {music} --data {tmp}/missing.json", "missing.json")
case("evaluate-music-data-wrong-structure", "evaluate {music} --data {tmp}/bad.json", "bad.json",
     setup=d.write("bad.json", '{"train": 5}'))
case("evaluate-music-pitch-out-of-midi-range", "evaluate {music} --data {tmp}/bad.json", "200",
     setup=d.write("bad.json", '{"train": [[[60]]], "valid": [[[60]]], "test": [[[60], [200]]]}'))
case("evaluate-music-data-binary", "evaluate {music} --data {tmp}/bad.json", "bad.json", setup=d.write("bad.json", d.GARBAGE))
case("evaluate-music--split-unknown", "evaluate {music} --split holdout", "--split")
case("evaluate-music-data-empty-object", "evaluate {music} --data {tmp}/bad.json", "bad.json", setup=d.write("bad.json", "{}"))

# -------------------------------------------------------------------------------------- predict

case("predict-classify-input-missing", "predict {classify} --input {tmp}/missing.txt", "missing.txt")
case("predict-classify-input-binary", "predict {classify} --input {tmp}/blob.txt", "blob.txt",
     setup=d.write("blob.txt", d.GARBAGE))
case("predict-classify-input-latin1", "predict {classify} --input {tmp}/latin1.txt", "latin1.txt",
     setup=d.write("latin1.txt", "un film tr\xe8s bien\n".encode("latin-1")))
case("predict-classify-stdin-latin1", "predict {classify}", "UTF-8", stdin="un film tr\xe8s bien\n".encode("latin-1"))
case("predict-classify-forecast-flag--output", "predict {classify} --input {csv} --output {tmp}/out.csv", "--output")
case("predict-classify-forecast-flag--data", "predict {classify} --data {csv}", "--data")
case("predict-tag-input-binary", "predict {tag} --input {tmp}/blob.txt", "blob.txt", setup=d.write("blob.txt", d.GARBAGE))
case("predict-tag-input-missing", "predict {tag} --input {tmp}/missing.txt", "missing.txt")
case("predict-forecast-data-missing", "predict {forecast} --data {tmp}/missing.csv --output {tmp}/f.csv", "missing.csv")
case("predict-forecast-no-data", "predict {forecast} --output {tmp}/f.csv", "--data")
case("predict-forecast-output-equals-data", "predict {forecast} --data {series} --output {series}", "monthly.csv")
case("predict-forecast-output-into-the-run", "predict {forecast} --data {series} --output {forecast}/latest.json",
     "latest.json")
case("predict-forecast-output-under-a-file", "predict {forecast} --data {series} --output {series}/f.csv", "monthly.csv")
case("predict-forecast-output-in-proc", "predict {forecast} --data {series} --output /proc/rnnkit-f.csv", "/proc/rnnkit-f")
case("predict-forecast-output-a-png", "predict {forecast} --data {series} --output {tmp}/f.png", "png")
case("predict-forecast-output-a-folder", "predict {forecast} --data {series} --output {tmp}/outdir", "outdir",
     setup=d.mkdir("outdir", "keep.txt"))
case("predict-forecast-value-inf", "predict {forecast} --data {series} --output {tmp}/f.csv", "value",
     setup=d.set_cell("series", 118, 1, "inf"))
case("predict-forecast-value-1e308", "predict {forecast} --data {series} --output {tmp}/f.csv", "value",
     setup=d.set_cell("series", 118, 1, "1e308"))
case("predict-forecast-keeps-earlier-output", "predict {forecast} --data {tmp}/renamed.csv --output {tmp}/f.csv", "value",
     setup=[d.write("renamed.csv", "month,level,x\n2000-01,1.0,0.5\n"), d.write("f.csv", "earlier output\n")])
case("predict-translate-input-missing", "predict {translate} --input {tmp}/missing.de", "missing.de")
case("predict-translate-output-equals-input", "predict {translate} --input {src} --output {src}", "train.de")
case("predict-caption-input-missing", "predict {caption} --input {tmp}/missing.png", "missing.png")
case("predict-caption-input-a-text-file", "predict {caption} --input {text}", "tiny.txt")
# an image of another size or mode is no longer refused: caption predict scales and pads it (tests/test_polish.py)
case("predict-caption-input-truncated-png", "predict {caption} --input {tmp}/broken.png", "broken.png",
     setup=d.truncated_copy("png", "broken.png", 0.5))
case("predict-lm-run", "predict {lm} --input {text}", "generate")
case("predict-music-run", "predict {music}", "generate")

# -------------------------------------------------------------------------------------- translate

case("translate-input-missing", "translate {translate} --input {tmp}/missing.de", "missing.de")
case("translate-input-binary", "translate {translate} --input {tmp}/blob.de", "blob.de", setup=d.write("blob.de", d.GARBAGE))
case("translate-input-latin1", "translate {translate} --input {tmp}/latin1.de", "latin1.de",
     setup=d.write("latin1.de", "ein Hund l\xe4uft.\n".encode("latin-1")))
case("translate-output-a-folder", "translate {translate} --input {src} --output {tmp}/outdir", "outdir",
     setup=d.mkdir("outdir", "keep.txt"))
case("translate-output-equals-input", "translate {translate} --input {src} --output {src}", "train.de")
case("translate-output-into-the-run", "translate {translate} --input {src} --output {translate}/best.json", "best.json")
case("translate-output-under-a-file", "translate {translate} --input {src} --output {tgt}/x.txt", "train.en")
case("translate-output-in-proc", "translate {translate} --input {src} --output /proc/rnnkit-x.txt", "/proc/rnnkit-x.txt")
case("translate--beam=0", "translate {translate} --input {src} --beam 0", "--beam")
case("translate--length-penalty=nan", "translate {translate} --input {src} --length-penalty nan", "--length-penalty")
case("translate--length-penalty=inf", "translate {translate} --input {src} --length-penalty inf", "--length-penalty")
case("translate-an-lm-run", "translate {lm} --input {src}", "translat")
case("translate-a-classify-run", "translate {classify} --input {src}", "translat")

# -------------------------------------------------------------------------------------- explain

case("explain-text-missing", "explain {lm} --text {tmp}/missing.py", "missing.py")
case("explain-text-binary", "explain {lm} --text {tmp}/blob.py", "blob.py", setup=d.write("blob.py", d.GARBAGE))
case("explain-text-latin1", "explain {lm} --text {tmp}/latin1.py", "latin1.py",
     setup=d.write("latin1.py", "s = 'caf\xe9'\n".encode("latin-1") * 20))
case("explain-text-empty", "explain {lm} --text {tmp}/empty.py", "empty.py", setup=d.write("empty.py", b""))
case("explain-no-text", "explain {lm}", "--text")
case("explain-out-equals-text", "explain {lm} --text {text} --out {text}", "tiny.txt")
case("explain-out-is-latest.json", "explain {lm} --text {text} --out {lm}/latest.json", "latest.json")
case("explain-out-is-checkpoint.json", "explain {lm} --text {text} --out {lm}/checkpoints/ckpt-000001/checkpoint.json",
     "checkpoint.json")
case("explain-default-page-is-a-symlink", "explain {lm} --text {text}", "link", area="A",
     setup=d.link_outside("lm", "explain.html", "outside.html", copy_original=False))
case("explain-a-classify-run", "explain {classify} --text {text}", "classify")
case("explain--layer-out-of-range", "explain {lm} --text {text} --layer 5", "--layer")
case("explain--unit-out-of-range", "explain {lm} --text {text} --unit 1000", "--unit")
case("explain--max-chars=0", "explain {lm} --text {text} --max-chars 0", "--max-chars")
case("explain-out-under-a-file", "explain {lm} --text {text} --out {csv}/page.html", "reviews.csv")
case("explain-out-in-proc", "explain {lm} --text {text} --out /proc/rnnkit-page.html", "/proc/rnnkit-page.html")
case("explain--engine-scan", "explain {lm} --text {text} --engine scan", "scan engine", "'lstm'")

# -------------------------------------------------------------------------------------- diagnose and bench

_GRADIENTS = "diagnose gradients --length 6 --hidden 4 --cells rnn --forget-bias 0 --out {tmp}/g.png"
_MEMORY = "diagnose memory --length 6 --hidden 4 --cells rnn --out {tmp}/m.png"
for flag, value in [("--length", "1"), ("--cells", "bogus"), ("--forget-bias", "x,y"), ("--forget-bias", "nan"),
                    ("--recurrent-scale", "nan"), ("--clip", "nan"), ("--hidden", "1000000000")]:
    case(f"diagnose-gradients{flag}={value}", f"{_GRADIENTS} {flag} {value}", "bogus" if value == "bogus" else flag)
case("diagnose-gradients--run-classify", f"{_GRADIENTS} --run {{classify}}", "classify")
case("diagnose-gradients--run-missing", f"{_GRADIENTS} --run {{tmp}}/nowhere", "nowhere")
case("diagnose-gradients-text-binary", "diagnose gradients {lm} --length 6 --text {tmp}/blob.txt --out {tmp}/g.png",
     "blob.txt", setup=d.write("blob.txt", d.GARBAGE))
case("diagnose-gradients-out-equals-text", "diagnose gradients {lm} --length 6 --text {text} --out {text}", "tiny.txt")
case("diagnose-gradients-out-into-the-run", "diagnose gradients {lm} --length 6 --out {lm}/latest.json", "latest.json")
case("diagnose-gradients-out-under-a-file", f"{_GRADIENTS} --out {{text}}/g.png", "tiny.txt")
case("diagnose-gradients-weights-garbage", "diagnose gradients {lm} --length 6 --out {tmp}/g.png", "weights.safetensors",
     area="A", setup=d.replace_file("lm", "CKPT/weights.safetensors", d.GARBAGE))
for flag, value in [("--length", "1"), ("--cells", "bogus"), ("--forget-bias", "nan"), ("--hidden", "0")]:
    case(f"diagnose-memory{flag}={value}", f"{_MEMORY} {flag} {value}", "bogus" if value == "bogus" else flag)
case("diagnose-memory-classify-run", "diagnose memory {classify} --length 6 --out {tmp}/m.png", "classify")
case("diagnose-memory-out-into-the-run", "diagnose memory {lm} --length 6 --out {lm}/best.json", "best.json")
case("diagnose-gradients--engine-scan", f"{_GRADIENTS} --engine scan", "scan engine", "'rnn_tanh'")
case("diagnose-gradients-run--engine-scan", "diagnose gradients {lm} --length 6 --cells mingru --engine scan "
     "--out {tmp}/g.png", "scan engine", "'lstm'")
case("diagnose-memory--engine-fused-for-a-mingru", "diagnose memory --length 6 --hidden 4 --cells mingru --engine fused "
     "--out {tmp}/m.png", "'mingru'", "fused")
case("diagnose-memory-run--engine-scan", "diagnose memory {lm} --length 6 --engine scan --out {tmp}/m.png",
     "scan engine", "'lstm'")

_BENCH = "bench memory-tasks --tasks adding --lengths 4 --cells rnn --hidden 4 --steps 2 --eval-size 8 --quiet --out {tmp}/b"
for flag, value in [("--tasks", "bogus"), ("--lengths", "1"), ("--lengths", "abc"), ("--lengths", "-5"),
                    ("--cells", "bogus"), ("--lr", "nan"), ("--clip", "nan"), ("--forget-bias", "nan"),
                    ("--stop-above", "2"), ("--stop-below", "nan"), ("--time-budget", "nan"), ("--hidden", "1000000000")]:
    case(f"bench{flag}={value}", f"{_BENCH} {flag} {value}", "bogus" if value == "bogus" else flag)
case("bench-out-under-a-file", f"{_BENCH} --out {{text}}/bench", "tiny.txt")
case("bench-out-into-a-run", f"{_BENCH} --out {{lm}}", "--out")
case("bench--engine-scan", f"{_BENCH} --engine scan", "scan engine", "'rnn_tanh'")
case("bench--engine-bogus", f"{_BENCH} --engine bogus", "--engine", "bogus")

# -------------------------------------------------------------------------------------- outputs the system refuses

# /sys refuses every new file (EPERM or EACCES even for root): the stand-in for a read-only or foreign mount.
case("train-lm-out-in-sys", train("lm", "--out /sys/rnnkit-bad-run"), "/sys/rnnkit-bad-run")
case("predict-forecast-output-in-sys", "predict {forecast} --data {series} --output /sys/rnnkit-f.csv", "/sys/rnnkit-f")
case("translate-output-in-sys", "translate {translate} --input {src} --output /sys/rnnkit-x.txt", "/sys/rnnkit-x.txt")
case("explain-out-in-sys", "explain {lm} --text {text} --out /sys/rnnkit-page.html", "/sys/rnnkit-page.html")
case("generate-music--midi-in-sys", "generate {music} --midi /sys/rnnkit.mid", "/sys/rnnkit.mid")
case("diagnose-gradients-out-in-sys", f"{_GRADIENTS} --out /sys/rnnkit-g.png", "/sys/rnnkit-g.png")
case("bench-out-in-sys", f"{_BENCH} --out /sys/rnnkit-bench", "/sys/rnnkit-bench")
from . import cases_music  # noqa: E402,F401
from . import cases_rundirs  # noqa: E402,F401
from . import cases_plugins  # noqa: E402,F401
from . import cases_values  # noqa: E402,F401
