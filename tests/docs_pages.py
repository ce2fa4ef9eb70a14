"""The code of the documentation's pages (``docs/**/*.md``), as the tests read and run it.

A page's fenced blocks, in order:

    ```python                    run; the python blocks of one page share one namespace
    ```python title="PATH"       a file the reader creates: written to PATH (relative), not run; a file under
                                 ``src/rnnkit/PACKAGE/`` joins that package of the installed rnnkit, as it would
                                 in a checkout, so a later block or command imports it from there
    ```console                   every ``$ rnnkit ...`` line is run (the ``rnnkit`` command, in the same process);
                                 the other lines are the output the reader sees, not checked
    any other language           shown, not run (``text``, ``toml``, ...); a ``bash`` block, being commands, must
                                 say why it is not run

A block preceded by ``<!-- no-run: REASON -->`` is not run; a python or console block may be skipped so only
where it needs a GPU or a network (the reason says which), a bash block for any reason it gives.

Run as a script, ``python docs_pages.py PAGE.md``, it runs one page's code in the current directory; the tests
start it in a fresh process and an empty temporary directory per page, so that what a page registers (a cell, a
task) or leaves behind (a run directory) does not reach other pages or tests.
"""

from __future__ import annotations

import importlib.abc
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUN_LANGUAGES = ("python", "console")
SKIP_MARKER = re.compile(r"<!--\s*no-run:\s*(.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<lang>[\w+-]*)(?P<info>[^\n`]*)$")
TITLE = re.compile(r"""title=["']([^"']+)["']""")


@dataclass
class Block:
    """One fenced block of a page: its language, its ``title="..."`` (if any), its text (indentation removed),
    the line of its opening fence (1-based) and, when a ``no-run`` marker precedes it, the reason."""

    language: str
    title: str | None
    code: str
    line: int
    skip: str | None = None


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a page, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence = match["indent"], match["fence"]
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not re.match(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}\s*$", lines[index]):
            body.append(lines[index][len(indent):] if lines[index].startswith(indent) else lines[index].lstrip())
            index += 1
        index += 1  # the closing fence
        title = TITLE.search(match["info"])
        found.append(Block(match["lang"], title[1] if title else None, "\n".join(body) + "\n", start + 1,
                           _skip_reason(lines, start)))
    return found


def _skip_reason(lines: list[str], fence_index: int) -> str | None:
    """The reason of a ``<!-- no-run: ... -->`` on the last non-blank line before a fence."""
    before = fence_index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    marker = SKIP_MARKER.search(lines[before]) if before >= 0 else None
    return marker[1] if marker else None


def commands(block: Block) -> list[str]:
    """The ``$ ...`` commands of a console block, continuation lines (ending in ``\\``) joined."""
    found, current = [], None
    for line in block.code.splitlines():
        if current is not None:
            current += " " + line.strip()
        elif line.startswith("$ "):
            current = line[2:].strip()
        else:
            continue
        if current.endswith("\\"):
            current = current[:-1].rstrip()
        else:
            found.append(current)
            current = None
    return found


class _PackageOverlay(importlib.abc.MetaPathFinder):
    """Adds folders to packages of rnnkit not imported yet, as their modules' search path: a package that looks
    for its modules when it is imported (``rnnkit.cli`` lists the tasks then) finds the written ones too."""

    def __init__(self):
        self.folders: dict[str, list[str]] = {}

    def find_spec(self, name, path, target=None):
        if name not in self.folders:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.submodule_search_locations is not None:
                    spec.submodule_search_locations.extend(self.folders[name])
                return spec
        return None


_OVERLAY = _PackageOverlay()


def _overlay_package(path: Path) -> None:
    """A file written under ``src/rnnkit/PACKAGE/`` becomes part of the installed ``rnnkit.PACKAGE``."""
    parts = path.parts
    if len(parts) < 4 or parts[:2] != ("src", "rnnkit") or not parts[-1].endswith(".py"):
        return
    package, folder = ".".join(("rnnkit", *parts[2:-1])), str(Path.cwd() / path.parent)
    if package in sys.modules:
        if folder not in sys.modules[package].__path__:
            sys.modules[package].__path__.append(folder)
        return
    if _OVERLAY not in sys.meta_path:
        sys.meta_path.insert(0, _OVERLAY)
    _OVERLAY.folders.setdefault(package, []).append(folder)


def _run_command(command: str, where: str) -> None:
    words = shlex.split(command)
    if not words or words[0] != "rnnkit":
        raise SystemExit(f"{where}: a console block runs `rnnkit ...` commands only, got `{command}`; show other "
                         f"commands in a ```bash block with a no-run marker")
    from rnnkit.cli import main

    print(f"$ {command}", flush=True)
    try:
        main(words[1:])
    except SystemExit as exit:
        if exit.code not in (0, None):
            raise SystemExit(f"{where}: `{command}` exited with status {exit.code}") from None


def run_page(page: Path) -> None:
    """Run a page's code in the current directory, as a reader who copies it block by block would."""
    namespace = {"__name__": "__main__"}
    relative = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page
    for block in blocks(page):
        where = f"{relative}:{block.line}"
        if block.skip is not None or block.language not in RUN_LANGUAGES:
            if block.skip is not None:
                print(f"{where}: not run ({block.skip})", flush=True)
            continue
        if block.language == "python" and block.title:
            target = Path(block.title)
            if target.is_absolute() or ".." in target.parts:
                raise SystemExit(f"{where}: a file block's title must be a relative path, got {block.title!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
            _overlay_package(target)
        elif block.language == "python":
            # padded so that a traceback names the page's own line numbers
            exec(compile("\n" * block.line + block.code, str(relative), "exec"), namespace)
        else:
            for command in commands(block):
                _run_command(command, where)


if __name__ == "__main__":
    run_page(Path(sys.argv[1]).resolve())
