"""Root spans for ``discord.ext.tasks.Loop`` iterations: ``task {coroutine name}``.

Where discord.py runs them: ``Loop.start()`` creates a task running ``Loop._loop``, which awaits
``self.coro(*args)`` once per iteration. ``Loop._loop`` is patched at class level (so loops
created before ``instrument_bot`` are covered once they start); while it runs, the loop's
``coro`` attribute is a traced stand-in (same ``__name__``/``__qualname__``/``__wrapped__``)
that opens one root per iteration, and the original is put back when the loop stops. A manual
``await loop()`` is not an iteration and is not traced.

An iteration that raises ends the loop: the loop's ``@loop.error`` handler runs inside the
failed iteration's root, which ends after it. Exceptions the loop retries (``reconnect=True``,
network errors) end the iteration's root with ERROR and the next iteration gets a new root.

Task loops are not tied to a client: they are traced while any client is instrumented (or the
zero-code instrumentor is active) and ``Settings.trace_tasks`` is on.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import weakref
from typing import Any

from . import _attributes as A
from . import _roots, _state, _values
from ._patching import Patch
from ._roots import Root

#: The Loop whose ``_loop`` the current task runs (iterations are traced only there).
_RUNNING: contextvars.ContextVar[Any] = contextvars.ContextVar("otel_bot_task_loop", default=None)
#: A failed iteration's root, kept open for the loop's error handler.
_FAILED: weakref.WeakKeyDictionary[Any, Root] = weakref.WeakKeyDictionary()

_MARK = "__otel_bot_iteration__"


def _enabled() -> Any:
    if _state.is_suppressed() or not _roots.any_enabled():
        return None
    settings = _state.settings()
    if settings is None or not settings.trace_tasks:
        return None
    return settings


def _make_iteration(loop: Any, inner: Any) -> Any:
    @functools.wraps(inner)
    async def iteration(*args: Any, **kwargs: Any) -> Any:
        settings = _enabled()
        if settings is None or _RUNNING.get() is not loop:
            return await inner(*args, **kwargs)
        name = getattr(inner, "__name__", "loop")
        attrs: dict[str, Any] = {
            A.DISCORD_TASK_LOOP_NAME: _values.code_name(inner) or name,
            A.DISCORD_TASK_LOOP_ITERATION: int(getattr(loop, "_current_loop", 0) or 0),
        }
        root = _roots.start_root(
            f"task {name}", kind="task", flow=name, settings=settings, source=loop, attributes=attrs
        )
        with root.activated():
            try:
                return await inner(*args, **kwargs)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                root.note_error(exc)
                valid = getattr(loop, "_valid_exception", ())
                if not (isinstance(exc, valid) and getattr(loop, "reconnect", False)):
                    # The loop ends and calls its error handler: keep the root open for it.
                    root.hold()
                    _FAILED[loop] = root
                raise
            finally:
                root.release()

    setattr(iteration, _MARK, inner)
    return iteration


def _wrap_loop(original: Any) -> Any:
    async def _loop(self: Any, *args: Any, **kwargs: Any) -> Any:
        inner = vars(self).get("coro")
        if inner is None or getattr(inner, _MARK, None) is not None or _enabled() is None:
            return await original(self, *args, **kwargs)
        traced = _make_iteration(self, inner)
        self.coro = traced
        token = _RUNNING.set(self)
        try:
            return await original(self, *args, **kwargs)
        finally:
            _RUNNING.reset(token)
            if vars(self).get("coro") is traced:
                self.coro = inner
            leftover = _FAILED.pop(self, None)
            if leftover is not None:
                leftover.release()

    return _loop


def _wrap_call_loop_function(original: Any) -> Any:
    async def _call_loop_function(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        root = _FAILED.pop(self, None) if name == "error" else None
        if root is None:
            return await original(self, name, *args, **kwargs)
        try:
            with root.activated():
                return await original(self, name, *args, **kwargs)
        finally:
            root.release()

    return _call_loop_function


def _loop_class() -> Any:
    from discord.ext.tasks import Loop

    return Loop


def original_coro(loop: Any) -> Any:
    """A loop's own coroutine function, even while it runs traced."""
    coro = loop.coro
    return getattr(coro, _MARK, coro)


PATCHES: tuple[Patch, ...] = (
    Patch(owner=_loop_class, name="_loop", wrap=_wrap_loop, group="tasks"),
    Patch(owner=_loop_class, name="_call_loop_function", wrap=_wrap_call_loop_function, group="tasks"),
)
