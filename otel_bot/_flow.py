"""Checkpoints, measurements and the FlowTracker: spans for the steps inside a unit of bot work.

* :func:`checkpoint` — an INTERNAL child span of the current span; a context manager (``with`` and
  ``async with``) and a decorator (sync and async functions).
* :func:`measure` — the same span, plus a :class:`Measurement` that carries the elapsed ms;
  :func:`measure_time` is the old helper's signature ``measure_time(name, metadata=None)``.
* :class:`FlowTracker` — a drop-in for the hand-rolled tracker: ``checkpoint("x_start")`` ...
  ``checkpoint("x_complete")`` becomes a child span ``x``; ``complete(status)`` ends the flow and
  returns its duration in ms; thresholds and severity are applied by :mod:`otel_bot._sla`.

Nothing here ever raises into the bot: our own bookkeeping runs under :func:`otel_bot._guard.guard`,
and a user's exception passes through untouched (recorded on the span, status ERROR).

This module holds checkpoint() / measure(); FlowTracker lives in :mod:`otel_bot._flowtracker` and
the shared value/span helpers in :mod:`otel_bot._flowcommon` (FlowTracker and FlowCheckpoint
are re-exported here).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind

from . import _attributes as A
from . import _state
from ._flowcommon import _is_noop, _parent_context, _record_error, clean_attributes
from ._flowtracker import FlowCheckpoint, FlowTracker
from ._guard import guard

__all__ = [
    "FlowCheckpoint",
    "FlowTracker",
    "Measurement",
    "checkpoint",
    "measure",
    "measure_time",
]

_F = TypeVar("_F", bound=Callable[..., Any])

# --- checkpoint() / measure() ---------------------------------------------------------------------


@dataclass
class Measurement:
    """What ``with measure(...) as m`` yields: ``m.elapsed_ms`` runs while inside and is fixed on exit."""

    name: str
    span: Span = INVALID_SPAN
    start_ns: int = 0
    end_ns: int | None = None
    error: BaseException | None = None
    _perf_start: int = 0
    _perf_end: int | None = None

    @property
    def elapsed_ms(self) -> float:
        end = self._perf_end if self._perf_end is not None else time.perf_counter_ns()
        return (end - self._perf_start) / 1e6

    @property
    def finished(self) -> bool:
        return self._perf_end is not None

    def set_attribute(self, key: str, value: Any) -> None:
        """Set an attribute on the measurement's span (cleaned and bounded like all others)."""
        with guard("flow.measure.attribute"):
            if self.span.is_recording():
                for k, v in clean_attributes({key: value}).items():
                    self.span.set_attribute(k, v)


@dataclass
class _Entry:
    span: Span
    token: object | None
    measurement: Measurement
    closed: bool = False


#: The open checkpoint entries of the current context (task), innermost last, each with the
#: :class:`_Timed` that opened it. One module-level object (``step = checkpoint("x")``) may be
#: entered by overlapping tasks: each task sees only its own entries, so ``__exit__`` closes the
#: entry its own ``__enter__`` opened (right span, right duration, right context token).
#: The off path (suppressed, or no SDK) pushes ``(self, None)``: nothing to time or end.
_OPEN: ContextVar[tuple[tuple[_Timed, _Entry | None], ...]] = ContextVar("otel_bot_open_checkpoints", default=())


class _Timed:
    """The object :func:`checkpoint` / :func:`measure` return: context manager and decorator.

    Reentrant and task-safe: entries live in a context variable (:data:`_OPEN`), so one shared
    object used by concurrent tasks (or nested in itself) closes the right entry. ``_stack``
    holds every open entry of this object too, the fallback for an exit made in another context
    than its enter (then the most recent one is closed, as before).
    """

    __slots__ = ("_attributes", "_is_measure", "_name", "_stack")

    def __init__(self, name: str | None, attributes: Mapping[str, Any], is_measure: bool) -> None:
        self._name = name if name is None or type(name) is str else str(name)
        # Never mutated: checkpoint()/measure() hand over a fresh kwargs dict, measure_time a copy.
        self._attributes = attributes
        self._is_measure = is_measure
        self._stack: list[_Entry] = []

    def _push(self, entry: _Entry) -> None:
        self._stack.append(entry)
        _OPEN.set((*_OPEN.get(), (self, entry)))

    def _pop(self) -> _Entry | None:
        """The entry this context opened last on this object (else this object's latest)."""
        open_entries = _OPEN.get()
        found: _Entry | None = None
        for i in range(len(open_entries) - 1, -1, -1):
            owner, entry = open_entries[i]
            if owner is self and (entry is None or not entry.closed):
                _OPEN.set(open_entries[:i] + open_entries[i + 1 :])
                if entry is None:  # an entry the off path opened: nothing to end
                    return None
                found = entry
                break
        if found is None:
            if not self._stack:
                return None
            found = self._stack[-1]
        for j in range(len(self._stack) - 1, -1, -1):
            if self._stack[j] is found:
                del self._stack[j]
                break
        found.closed = True
        return found

    def __repr__(self) -> str:
        kind = "measure" if self._is_measure else "checkpoint"
        return f"<otel_bot.{kind} {self._name!r}>"

    # context manager ---------------------------------------------------------------------------
    def _enter(self) -> _Entry | None:
        tracer = None if _state.is_suppressed() else _state.get_tracer()
        off = tracer is None or _is_noop(tracer)
        if off and not self._is_measure:
            # The off path: a checkpoint that records nothing needs no clock and no entry.
            _OPEN.set((*_OPEN.get(), (self, None)))
            return None
        name = self._name or "checkpoint"
        m = Measurement(name=name, _perf_start=time.perf_counter_ns(), start_ns=time.time_ns())
        entry = _Entry(span=INVALID_SPAN, token=None, measurement=m)
        if tracer is None or off:  # suppressed or tracing off: a measure is timed, nothing recorded
            self._push(entry)
            return entry
        with guard("flow.checkpoint.start"):
            attrs = clean_attributes(self._attributes)
            attrs[A.BOT_CHECKPOINT] = True
            span = tracer.start_span(
                name,
                context=_parent_context(),
                kind=SpanKind.INTERNAL,
                attributes=attrs,
                start_time=m.start_ns,
            )
            entry.span = span
            m.span = span
            entry.token = otel_context.attach(trace.set_span_in_context(span))
        self._push(entry)
        return entry

    def _exit(self, exc: BaseException | None) -> None:
        entry = self._pop()
        if entry is None:
            return
        m = entry.measurement
        m._perf_end = time.perf_counter_ns()
        m.end_ns = m.start_ns + (m._perf_end - m._perf_start)
        m.error = exc
        with guard("flow.checkpoint.end"):
            if entry.token is not None:
                otel_context.detach(entry.token)  # type: ignore[arg-type]
            span = entry.span
            if span is INVALID_SPAN:
                return
            if exc is not None:
                _record_error(span, exc)
            if self._is_measure and span.is_recording():
                span.set_attribute(A.BOT_CHECKPOINT_ELAPSED_MS, round(m.elapsed_ms, 3))
            span.end(end_time=m.end_ns)

    def __enter__(self) -> Any:
        entry = self._enter()
        if entry is None:
            return INVALID_SPAN
        return entry.measurement if self._is_measure else entry.span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(exc)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(exc)

    # decorator -----------------------------------------------------------------------------------
    def __call__(self, func: _F) -> _F:
        name = self._name or getattr(func, "__qualname__", None) or getattr(func, "__name__", "checkpoint")
        # One object per decorated function: entries are per task (see _OPEN), so concurrent and
        # recursive calls each close their own span, and no call pays for a new object.
        timed = _Timed(name, self._attributes, self._is_measure)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with timed:
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with timed:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


@overload
def checkpoint(name: _F, /) -> _F: ...
@overload
def checkpoint(name: str | None = None, /, **attributes: Any) -> _Timed: ...
def checkpoint(name: Any = None, /, **attributes: Any) -> Any:
    """A span for one step of the current unit of work.

    ::

        with checkpoint("guard_checks", player_count=3):
            ...
        async with checkpoint("load_preferences") as span:   # the span itself
            ...

        @checkpoint("compute_mmr")          # sync or async; keeps name, qualname and signature
        def compute_mmr(rows): ...

        @checkpoint                          # bare: the span is named after the function's qualname
        async def send_embed(...): ...

    The span is INTERNAL, a child of the current span (or of the current interaction's root), and
    a root of its own outside any trace. It carries ``bot.checkpoint=True`` plus ``attributes``
    (values that OpenTelemetry cannot store are ``str()``-ed; strings are cut to
    ``Settings.max_attribute_length``). An exception is recorded, the status set to ERROR, and the
    exception re-raised unchanged; ``CancelledError`` is not recorded as an error. (A decorated
    generator function is timed only while the generator is created: use ``with checkpoint()``
    inside generators.)
    """
    if callable(name) and not isinstance(name, str):
        return _Timed(None, {}, is_measure=False)(name)
    return _Timed(name, attributes, is_measure=False)


def measure(name: str, /, **attributes: Any) -> _Timed:
    """Time one operation: the same span as :func:`checkpoint`, and ``with``/``async with``
    yields a :class:`Measurement` whose ``elapsed_ms`` is fixed when the block ends (the span also
    gets ``bot.checkpoint.elapsed_ms``). Usable as a decorator too (then nothing is yielded)::

        with measure("db.fetch_leaderboard", rows=50) as m:
            rows = await pool.fetch(...)
        log.info("leaderboard in %.1f ms", m.elapsed_ms)
    """
    return _Timed(name, attributes, is_measure=True)


def measure_time(operation_name: str, metadata: Mapping[str, Any] | None = None) -> _Timed:
    """The old helper's signature: ``with measure_time("database_query", {"table": "players"}):``.

    Same as ``measure(operation_name, **metadata)``; ``metadata`` keys need not be identifiers.
    """
    return _Timed(operation_name, dict(metadata or {}), is_measure=True)
