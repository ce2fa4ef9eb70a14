"""MkDocs hooks of rnnkit's documentation (``hooks:`` in mkdocs.yml).

* The command-line reference: ``rnnkit``'s command groups import their commands on first use (so that
  ``rnnkit train lm`` never imports the translation code), and mkdocs-click lists only the commands a group
  already holds. Before the pages are built, every group of ``rnnkit.cli.cli`` is asked for all of its
  commands, so that the reference lists each one.
* ``<!-- import-contracts -->`` on a page becomes the import contracts of ``pyproject.toml``
  (``[tool.importlinter]``, which ``lint-imports`` checks in ``make test``), so that the page and the contracts
  cannot disagree.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import click

CONTRACTS_MARKER = "<!-- import-contracts -->"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _load_every_command(group: click.Group) -> None:
    """Put every command of ``group`` (and of its subgroups) into its ``commands``, each under the name it is
    called by (a command module's function may be named ``command``; click calls it by the group's name)."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = copy.copy(group.get_command(ctx, name))
        command.name = name
        group.commands[name] = command
        if isinstance(command, click.Group):
            _load_every_command(command)


def on_config(config):
    from rnnkit.cli import cli

    _load_every_command(cli)
    return config


def _module_list(names) -> str:
    return ", ".join(f"`{name}`" for name in names)


def contracts_markdown() -> str:
    """The import contracts of pyproject.toml as Markdown: one section per contract."""
    linter = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    parts = []
    for contract in linter["contracts"]:
        parts.append(f"**{contract['name']}** ({contract['type']})\n")
        if contract["type"] == "layers":
            containers = _module_list(contract.get("containers", [linter["root_package"]]))
            parts.append(f"Inside {containers}, from the top; a module imports only from the layers below its "
                         "own, and modules joined by `|` do not import each other:\n")
            parts.append("".join(f"{index}. {_module_list(layer.split(' | '))}\n"
                                 for index, layer in enumerate(contract["layers"], 1)))
        elif contract["type"] == "forbidden":
            parts.append(f"{_module_list(contract['source_modules'])} never import "
                         f"{_module_list(contract['forbidden_modules'])}.\n")
        elif contract["type"] == "independence":
            parts.append(f"{_module_list(contract['modules'])}: none of these imports another.\n")
        ignored = contract.get("ignore_imports")
        if ignored:
            parts.append(f"Allowed exceptions: {_module_list(ignored)}.\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CONTRACTS_MARKER in markdown:
        markdown = markdown.replace(CONTRACTS_MARKER, contracts_markdown())
    return markdown
