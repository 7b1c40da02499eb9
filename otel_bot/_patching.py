"""The patch record and the two functions that apply and revert a table of them.

Each instrumented module exports ``PATCHES: tuple[Patch, ...]``; ``_instrument`` concatenates
them into the one table that drives both patching and unpatching, so the two never drift.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Patch:
    """Replace ``owner().<name>`` with ``wrap(original)``.

    ``owner`` resolves the class or module lazily and returns ``None`` when the target does not
    exist (an optional dependency is missing, or this discord.py version lacks it); the patch is
    then skipped. ``group`` names the setting that can switch this patch off.
    """

    owner: Callable[[], Any]
    name: str
    wrap: Callable[[Any], Any]
    group: str = "core"


@dataclass
class Applied:
    owner: Any
    name: str
    original: Any  # the raw object from the owner's __dict__ (keeps staticmethod/classmethod)
    replacement: Any


def _raw(owner: Any, name: str) -> Any:
    for klass in getattr(owner, "__mro__", (owner,)):
        d = getattr(klass, "__dict__", {})
        if name in d:
            return d[name]
    return getattr(owner, name)


def module_owner(name: str) -> Callable[[], Any]:
    """A ``Patch.owner`` for module ``name``: the module, or ``None`` when it cannot be imported
    (an optional dependency that is not installed, a module this discord.py lacks)."""

    def owner() -> Any:
        try:
            return importlib.import_module(name)
        except ImportError:
            return None

    return owner


def attr_owner(module: str, name: str) -> Callable[[], Any]:
    """A ``Patch.owner`` for ``module.name`` (usually a class), or ``None`` when either is missing."""
    resolve = module_owner(module)

    def owner() -> Any:
        mod = resolve()
        return getattr(mod, name, None) if mod is not None else None

    return owner


def apply(patches: Iterable[Patch], enabled: Callable[[str], bool] = lambda g: True) -> list[Applied]:
    """Apply every patch whose target exists and whose group is enabled; return the undo list."""
    applied: list[Applied] = []
    for patch in patches:
        if not enabled(patch.group):
            continue
        owner = patch.owner()
        if owner is None or not hasattr(owner, patch.name):
            continue
        raw = _raw(owner, patch.name)
        if isinstance(raw, staticmethod):
            replacement: Any = staticmethod(_wrap(patch.wrap, raw.__func__))
        elif isinstance(raw, classmethod):
            replacement = classmethod(_wrap(patch.wrap, raw.__func__))
        else:
            replacement = _wrap(patch.wrap, raw)
        # Keep the exact original object (descriptor included) so revert restores it with `is`.
        # (a class __dict__ is a mappingproxy, a module's a dict: test membership, not the type)
        had_own = patch.name in getattr(owner, "__dict__", {})
        setattr(owner, patch.name, replacement)
        applied.append(Applied(owner, patch.name, raw if had_own else _MISSING, replacement))
    return applied


def revert(applied: list[Applied]) -> None:
    """Undo :func:`apply` in reverse order, restoring the exact original objects."""
    for item in reversed(applied):
        current = vars(item.owner).get(item.name) if hasattr(item.owner, "__dict__") else None
        if current is not item.replacement:
            # Someone patched over us; leave their patch in place rather than break it.
            continue
        if item.original is _MISSING:
            delattr(item.owner, item.name)
        else:
            setattr(item.owner, item.name, item.original)
    applied.clear()


def _wrap(factory: Callable[[Any], Any], original: Any) -> Any:
    replacement = factory(original)
    if replacement is not original and callable(original) and callable(replacement):
        try:
            functools.update_wrapper(replacement, original)
        except (AttributeError, TypeError):
            pass
        replacement.__otel_bot_original__ = original
    return replacement


def original_of(obj: Any) -> Any:
    """The function a replacement wraps (or ``obj`` itself)."""
    return getattr(obj, "__otel_bot_original__", obj)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
