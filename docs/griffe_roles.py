"""A griffe extension (``extensions:`` in mkdocs.yml): the Sphinx roles of rnnkit's docstrings as links.

rnnkit's docstrings name other objects as Sphinx does, ``:class:`~rnnkit.nn.LSTM```, ``:func:`cell_names```,
``:mod:`rnnkit.nn.regularisers```. This extension turns each into a cross-reference of the reference pages:
a link where the object is documented, its name in code where it is not. A fully qualified name inside rnnkit
that names no object at all (a class renamed, a module moved) is a warning, so ``mkdocs build --strict`` (and
with it ``make test``) fails on a stale reference. Names relative to the docstring's module or class are
looked up there and in the classes it derives from; names outside rnnkit (``torch.nn.LSTM``) stay code.
"""

from __future__ import annotations

import html
import re

import griffe

ROLE = re.compile(r":(?:py:)?(?P<role>class|func|meth|mod|data|attr|exc|obj):`(?P<target>[^`]+)`")
EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
ROOT = "rnnkit"

logger = griffe.get_logger("griffe_roles")


def _member(obj, name: str):
    """The member ``name`` of ``obj`` (a module or class), aliases followed; None when there is none."""
    try:
        members = obj.all_members if obj.is_class else obj.members
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        members = obj.members
    member = members.get(name)
    if member is None:
        return None
    try:
        return member.final_target if member.is_alias else member
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _lookup(root, dotted: str):
    """The object at ``dotted`` (relative to ``root``), or None."""
    current = root
    for part in dotted.split("."):
        current = _member(current, part)
        if current is None:
            return None
    return current


def _scopes(obj):
    """Where a relative name in ``obj``'s docstring is looked up: the object, its class, its module, its package."""
    current = obj
    while current is not None:
        if current.is_class or current.is_module:
            yield current
        current = current.parent


def _resolve(package, obj, target: str):
    """(the object's path, found) for a role's target; the path is None for a name outside rnnkit."""
    if target == ROOT or target.startswith(ROOT + "."):
        found = package if target == ROOT else _lookup(package, target[len(ROOT) + 1:])
        return (found.path if found is not None else target), found is not None
    for scope in _scopes(obj):
        found = _lookup(scope, target)
        if found is not None:
            return found.path, True
    return None, False


def _replace(package, obj, text: str) -> str:
    def link(match: re.Match) -> str:
        target, title = match["target"].strip(), None
        explicit = EXPLICIT_TITLE.match(target)
        if explicit:
            title, target = explicit["title"], explicit["target"].strip()
        short = target.startswith("~")
        target = target.lstrip("~!")
        if title is None:
            title = target.rsplit(".", 1)[-1] if short else target
        path, found = _resolve(package, obj, target)
        code = f"<code>{html.escape(title)}</code>"
        if path is None:
            return code
        if not found:
            where = obj.relative_filepath if obj.is_module else obj.parent.relative_filepath if obj.parent else ""
            logger.warning(f"{where}: {obj.path}: the docstring names {match.group(0)}, which is no object of rnnkit")
            return code
        return f'<autoref identifier="{path}" optional>{code}</autoref>'

    return ROLE.sub(link, text)


def _objects(obj):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


class SphinxRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring of the package ``rnnkit`` once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        if pkg.name != ROOT:
            return
        for obj in _objects(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = _replace(pkg, obj, obj.docstring.value)
