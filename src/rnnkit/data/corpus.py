"""The built-in training text: Python's own standard library, so rnnkit trains with no download.

The seeds train character models on source code; every Python install carries plenty of it.
:func:`default_corpus` reads these 37 pure-Python modules from the running interpreter's
standard library (``sysconfig.get_paths()["stdlib"]``), in this order::

    argparse.py  collections/__init__.py  functools.py  textwrap.py  enum.py  dataclasses.py
    json/__init__.py  json/decoder.py  json/encoder.py  random.py  statistics.py  fractions.py
    heapq.py  bisect.py  copy.py  contextlib.py  shutil.py  tempfile.py  tokenize.py  ast.py
    difflib.py  pprint.py  csv.py  calendar.py  configparser.py  threading.py  queue.py
    ipaddress.py  shlex.py  glob.py  fnmatch.py  graphlib.py  numbers.py  operator.py  abc.py
    weakref.py  base64.py

About 1.2 MB in all (1,190,183 characters on CPython 3.11.7; a little different on other
versions, since the files change between releases). Each file is read as UTF-8 with ``\\r\\n``
and ``\\r`` turned into ``\\n`` (tabs and all other characters kept) and ends with one newline;
files are separated by a blank line. The same interpreter always gives the same text. The
selection avoids modules that became packages or thin wrappers in later versions (``pathlib``,
``datetime``, ``string``), so every file exists in CPython 3.11 and later; a file missing from an
unusual build is skipped and named in the description.

Example::

    text, description = default_corpus()
    train, valid = split_train_valid(text)
"""

from __future__ import annotations

import platform
import sysconfig
from pathlib import Path

from ..errors import InputError

STDLIB_FILES = (
    "argparse.py", "collections/__init__.py", "functools.py", "textwrap.py", "enum.py", "dataclasses.py",
    "json/__init__.py", "json/decoder.py", "json/encoder.py", "random.py", "statistics.py", "fractions.py",
    "heapq.py", "bisect.py", "copy.py", "contextlib.py", "shutil.py", "tempfile.py", "tokenize.py", "ast.py",
    "difflib.py", "pprint.py", "csv.py", "calendar.py", "configparser.py", "threading.py", "queue.py",
    "ipaddress.py", "shlex.py", "glob.py", "fnmatch.py", "graphlib.py", "numbers.py", "operator.py", "abc.py",
    "weakref.py", "base64.py",
)


def normalised_source(text: str) -> str:
    """``text`` with ``\\r\\n`` and ``\\r`` turned into ``\\n`` and exactly one newline at the end."""
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") + "\n"


def default_corpus() -> tuple[str, str]:
    """The built-in training text and a one-line description of where it came from.

    Returns:
        (text, description): the files of :data:`STDLIB_FILES` that exist, normalised and joined
        by blank lines; the description names the Python version, the file count, the size and
        any skipped files.

    Raises:
        InputError: if none of the files exists (a Python build without its library sources).
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    texts, missing = [], []
    for name in STDLIB_FILES:
        path = root / name
        if path.is_file():
            texts.append(normalised_source(path.read_text(encoding="utf-8")))
        else:
            missing.append(name)
    if not texts:
        raise InputError(
            f"no standard-library sources found in {root} for the built-in corpus; give a text file to train on"
        )
    text = "\n".join(texts)
    description = (
        f"Python {platform.python_version()} standard library: {len(texts)} source files, "
        f"{len(text):,} characters, from {root}"
    )
    if missing:
        description += f" (missing, skipped: {', '.join(missing)})"
    return text, description


def split_train_valid(text: str, valid_fraction: float = 0.1) -> tuple[str, str]:
    """Split ``text`` into its first part for training and its last part for validation.

    Args:
        valid_fraction: share of the characters that go to validation, in (0, 1).

    Returns:
        (train, valid): ``text[:cut]`` and ``text[cut:]`` with ``cut = round(len(text) * (1 - valid_fraction))``.

    Example::

        >>> split_train_valid("abcdefghij", 0.2)
        ('abcdefgh', 'ij')
    """
    if not 0 < valid_fraction < 1:
        raise InputError(f"valid_fraction={valid_fraction} must be between 0 and 1 (exclusive), e.g. 0.1")
    cut = round(len(text) * (1 - valid_fraction))
    return text[:cut], text[cut:]
