"""Griffe extension: the docstrings' Sphinx roles become checked cross-references.

The docstrings name other objects as Sphinx does (``:class:`~greedylr.GreedyConfig```,
``:meth:`save```). This turns each into an autorefs link (``[`GreedyConfig`][path]``),
resolving a short name as Python would from where the docstring sits: the class, then
its module, then the package; an imported name links to where it is defined. A name of
ours that resolves to nothing is a warning, and so is a target the site does not
document (autorefs), so ``mkdocs build --strict`` fails on both. Another package's
objects (``optax.GradientTransformation``) stay plain code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`(~?)([\w.]+)`")
logger = griffe.get_logger("griffe_sphinx_roles")


def _find(root: griffe.Module, path: str) -> str | None:
    """The documented path of the object at ``path`` (an alias's target), or None."""
    if path == root.path:
        return path
    prefix = root.path + "."
    if not path.startswith(prefix):
        return None
    try:
        found = root[path[len(prefix):]]
    except (KeyError, griffe.AliasResolutionError):  # nothing there, or outside the package
        return None
    return found.target_path if found.is_alias else path


def _scopes(obj: griffe.Object) -> list[str]:
    """Where a short name is looked up from ``obj``: itself, then each parent."""
    scopes = []
    current: Any = obj
    while current is not None:
        scopes.append(current.path)
        current = current.parent
    return scopes


def _resolve(root: griffe.Module, obj: griffe.Object, name: str) -> str | None:
    for scope in _scopes(obj):
        found = _find(root, f"{scope}.{name}")
        if found is not None:
            return found
    return _find(root, name)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring in the package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = ROLE.sub(
                    lambda m, o=obj: self._link(pkg, o, m), obj.docstring.value
                )
            stack.extend(m for m in obj.members.values() if not m.is_alias)

    @staticmethod
    def _link(root: griffe.Module, obj: griffe.Object, match: re.Match[str]) -> str:
        short, name = match.groups()
        target = _resolve(root, obj, name)
        title = name.rsplit(".", 1)[-1] if short else name
        if target is None:
            if "." in name and name.split(".")[0] != root.path:
                return f"`{title}`"  # another package's object (optax.X): not ours to check
            logger.warning("%s: %s names nothing in %s", obj.path, match.group(0), root.path)
            return f"`{title}`"
        return f"[`{title}`][{target}]"
