"""The documentation (``docs/``, ``mkdocs.yml``): every page's code runs, and the site builds with ``--strict``.

* Each page's code runs as a reader would run it, block by block (``docs_pages.py`` says which blocks run
  and how), in a fresh process and an empty directory per page: one thread, no display.
* A block that does not run says why: a python or console block only because it needs a GPU or a network,
  a bash block (``make``, ``pip``) for any reason it names.
* README.md's code runs too, and its links into the documentation lead to files that exist.
* ``mkdocs build --strict`` succeeds with no warning: a broken link or cross-reference, a stale name in a
  docstring's ``:class:`...``` role, a docstring the reference cannot parse, or a missing snippet fails here.
* The reference has an entry for every name of ``rnnkit.nn.__all__``, every public top-level name of
  ``rnnkit`` and each of its packages.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import rnnkit
import rnnkit.nn

from docs_pages import DOCS, ROOT, RUN_LANGUAGES, blocks, commands, pages

RUNNER = Path(__file__).resolve().parent / "docs_pages.py"
README = ROOT / "README.md"
ALL_PAGES = [*pages(), README]
PAGES = [page for page in ALL_PAGES if any(b.language in RUN_LANGUAGES and b.skip is None for b in blocks(page))]
NEEDS_A_MACHINE_WE_LACK = ("GPU", "network")


def _environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg", NO_MKDOCS_2_WARNING="1")
    env.pop("PYTHONPATH", None)  # the installed rnnkit, as a reader has it
    return env


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_the_code_of_a_page_runs(page, tmp_path):
    result = subprocess.run([sys.executable, str(RUNNER), str(page)], cwd=tmp_path, env=_environment(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{page.relative_to(ROOT)}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"


def test_every_block_that_does_not_run_says_why():
    """Prints the blocks left unrun and why (shown with ``pytest -rP``)."""
    problems = []
    for page in ALL_PAGES:
        for block in blocks(page):
            where = f"{page.relative_to(ROOT)}:{block.line}"
            if block.skip is not None:
                print(f"{where}: {block.language} block not run: {block.skip}")
            if block.language in RUN_LANGUAGES and block.skip is not None:
                if not any(word in block.skip for word in NEEDS_A_MACHINE_WE_LACK):
                    problems.append(f"{where}: a {block.language} block may be left unrun only for a GPU or a "
                                    f"network, not: {block.skip}")
            if block.language == "bash" and not block.skip:
                problems.append(f"{where}: a bash block is not run; say why with <!-- no-run: REASON -->")
            if block.language == "console" and block.skip is None:
                problems += [f"{where}: a console block runs rnnkit commands only: {command}"
                             for command in commands(block) if not command.startswith("rnnkit ")]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built with ``mkdocs build --strict`` into a temporary folder: (the folder, the build's output)."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[docs]' (make test installs it)")
    folder = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
                            cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=600)
    return folder, result


def test_the_site_builds_strictly_with_no_warning(site):
    folder, result = site
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    warnings = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    assert not warnings, "\n".join(warnings)
    assert (folder / "index.html").exists() and (folder / "results" / "index.html").exists()


def test_the_site_loads_nothing_from_the_network(site):
    """Offline: no web fonts, stylesheets or scripts from elsewhere (the theme's fonts are off)."""
    folder, _ = site
    remote = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//", re.I)
    found = [str(page.relative_to(folder)) for page in folder.rglob("*.html") if remote.search(page.read_text())]
    assert not found, f"pages that load from the network: {', '.join(found)}"


def _inventory(folder: Path) -> set[str]:
    """The names of mkdocstrings' object inventory (objects.inv, Sphinx's format: four lines, then zlib)."""
    data = (folder / "objects.inv").read_bytes()
    body = zlib.decompress(data.split(b"\n", 4)[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if line}


def test_the_reference_has_every_public_name(site):
    folder, result = site
    assert result.returncode == 0, result.stdout + result.stderr
    documented = _inventory(folder)
    wanted = [f"rnnkit.nn.{name}" for name in rnnkit.nn.__all__]
    top_level = getattr(rnnkit, "__all__", None) or [name for name, value in vars(rnnkit).items()
                                                     if not name.startswith("_") and not isinstance(value, type(rnnkit))]
    wanted += [f"rnnkit.{name}" for name in top_level]
    wanted += [f"rnnkit.{module.name}" for module in pkgutil.iter_modules(rnnkit.__path__)
               if module.ispkg and not module.name.startswith("_")]
    missing = [name for name in wanted if name not in documented]
    assert not missing, f"not in the reference (docs/reference/): {', '.join(missing)}"


def test_the_results_page_is_benchmarks_results(site):
    """The results page includes benchmarks/RESULTS.md (pymdownx.snippets), not a copy of it."""
    folder, result = site
    assert (DOCS / "results.md").read_text().strip() == '--8<-- "benchmarks/RESULTS.md"'
    first_heading = next(line for line in (ROOT / "benchmarks" / "RESULTS.md").read_text().splitlines()
                         if line.startswith("## "))
    assert first_heading[3:].split(" — ")[0] in (folder / "results" / "index.html").read_text()


def test_every_page_is_in_the_navigation():
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def files(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            if isinstance(value, list):
                yield from files(value)
            else:
                yield value

    listed = set(files(nav))
    unlisted = [str(page.relative_to(DOCS)) for page in pages() if str(page.relative_to(DOCS)) not in listed]
    assert not unlisted, f"pages missing from mkdocs.yml's nav: {', '.join(unlisted)}"


def test_the_readme_links_to_files_that_exist():
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [target for target in targets if "://" not in target]
    assert local, "the README points into the documentation"
    missing = [target for target in local if not (ROOT / target).exists()]
    assert not missing, f"README.md links to files that do not exist: {', '.join(missing)}"
