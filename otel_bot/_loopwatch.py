"""The blocked event loop detector.

A bot that calls ``time.sleep``, ``requests.get`` or a heavy computation inside an async handler
holds the whole event loop: every other interaction waits, and nothing in a trace says why. This
module times every callback the loop runs (``asyncio.events.Handle._run``, class-level, so every
``call_soon`` / ``call_later`` callback and every task step, on every loop in the process). When
one holds the loop for ``Settings.blocking_threshold_ms`` (default 100 ms) or longer and it ran
inside a traced unit of work, that unit's root span gets a ``bot.event_loop.blocked`` event
(timestamped when the callback started) with ``bot.event_loop.blocked_ms``,
``bot.event_loop.blocked_threshold_ms`` and ``code.function.name`` (the coroutine whose step
blocked).

The patch rides in ``_executor.PATCHES`` (group ``event_loop``, always applied); the
``instrument(settings)`` hook arms it, and while disarmed the wrapper is one global read and a call.

Why this design: the callback's own ``Handle._context`` names the unit exactly (no guessing which
task was running), the duration is exact, and the cost is two ``perf_counter()`` calls, two
thread-local stores, a try/finally and a comparison per callback: measured ~0.3 µs (``Handle._run``
of a no-op callback went from ~0.16 to ~0.47 µs; a whole ``call_soon`` round trip is ~1.9 µs), so
about 0.03 % of a core at a thousand callbacks a second. A watchdog thread with a loop heartbeat costs less per callback but can only
guess the culprit and measures the stall to the heartbeat's precision.

The unit is the one in the callback's context when it ends. A stall in the very task step that
ends the root (a blocking call as the last statement of a handler whose root ends in the same step)
is caught as the root ends: ``Root.end`` calls :func:`note_unit_ending`, which sees that the running callback has held the loop past the threshold and adds
the event while the span is still open (the duration is the stall up to the root's end).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from . import _attributes as A
from . import _state
from ._guard import guard
from ._patching import Patch

_threshold_s: float | None = None


def instrument(settings: Any) -> None:
    """Arm the detector with ``settings.blocking_threshold_ms`` (``None`` or 0 disarms it)."""
    global _threshold_s
    ms = settings.blocking_threshold_ms
    _threshold_s = ms / 1000.0 if ms else None


def uninstrument() -> None:
    """Disarm the detector."""
    global _threshold_s
    _threshold_s = None


def _describe(callback: Any) -> str:
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        name = getattr(coro, "__qualname__", None)
        if isinstance(name, str):
            return name
    name = getattr(callback, "__qualname__", None)
    return name if isinstance(name, str) else type(callback).__qualname__


#: Per loop thread: ``(start, handle)`` of the callback the loop is running, or absent/None.
_running = threading.local()
_REPORTED = "otel_bot.loopwatch.reported"  # WorkUnit.extra key: start of the callback reported


def _report(unit: Any, handle: Any, start: float, elapsed_s: float, threshold_s: float) -> None:
    span = unit.span
    if not span.is_recording() or unit.extra.get(_REPORTED) == start:
        return
    unit.extra[_REPORTED] = start
    span.add_event(
        A.EVENT_LOOP_BLOCKED,
        {
            A.BOT_LOOP_BLOCKED_MS: elapsed_s * 1000.0,
            A.BOT_LOOP_BLOCKED_THRESHOLD_MS: threshold_s * 1000.0,
            A.CODE_FUNCTION_NAME: _describe(getattr(handle, "_callback", None)),
        },
        timestamp=time.time_ns() - int(elapsed_s * 1e9),
    )


def note_unit_ending(unit: Any) -> None:
    """Call just before a unit's root span ends: if the callback running right now has already
    held the loop past the threshold (a blocking call as the last thing before the end), the event
    goes on the root while it can still take one. The root-span module calls this from
    ``Root.end``; a hand-made root may call it too."""
    threshold = _threshold_s
    current = getattr(_running, "current", None)
    if threshold is None or current is None:
        return
    start, handle = current
    elapsed = time.perf_counter() - start
    if elapsed >= threshold:
        with guard("loopwatch.report"):
            _report(unit, handle, start, elapsed, threshold)


def _wrap_handle_run(original: Any) -> Any:
    perf_counter = time.perf_counter
    unit_var = _state.current_unit
    running = _running

    def _run(self: Any) -> None:
        threshold = _threshold_s
        if threshold is None:
            return original(self)  # type: ignore[no-any-return]
        start = perf_counter()
        running.current = (start, self)
        try:
            original(self)
        finally:
            running.current = None
        elapsed = perf_counter() - start
        if elapsed >= threshold:
            unit = self._context.get(unit_var)
            if unit is not None:
                with guard("loopwatch.report"):
                    _report(unit, self, start, elapsed, threshold)
        return None

    return _run


def _handle_class() -> Any:
    return asyncio.events.Handle


PATCHES: tuple[Patch, ...] = (
    Patch(owner=_handle_class, name="_run", wrap=_wrap_handle_run, group="event_loop"),
)

__all__ = ["PATCHES", "instrument", "note_unit_ending", "uninstrument"]
