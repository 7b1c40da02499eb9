"""``FlowTracker``: one user flow as an INTERNAL span, its paired ``x_start``/``x_complete``
checkpoints as nested child spans, and ``complete(status)`` applying thresholds and severity.

A drop-in for the hand-rolled tracker (see :class:`FlowTracker`); the single-step spans
``checkpoint()`` / ``measure()`` are in :mod:`otel_bot._flow`, which re-exports FlowTracker and
FlowCheckpoint.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from . import _attributes as A
from . import _sla, _state
from ._flowcommon import _cut, _is_noop, _parent_context, _record_error, _user_id_value, clean_attributes
from ._guard import guard

__all__ = ["CLOSE_SUFFIXES", "ERROR_STATUSES", "OPEN_SUFFIXES", "FlowCheckpoint", "FlowTracker"]

#: ``complete(status)`` values that set the flow's status to ERROR (case-insensitive).
ERROR_STATUSES: frozenset[str] = frozenset({"error", "failed", "failure", "exception", "timeout"})

#: Suffixes that open / close a FlowTracker step: ``x_start`` ... ``x_complete``. The separator may
#: be ``_``, ``.``, ``-``, ``:`` or a space; matching is case-insensitive.
OPEN_SUFFIXES: tuple[str, ...] = ("start", "started", "begin")
CLOSE_SUFFIXES: tuple[str, ...] = ("complete", "completed", "end", "done", "finish", "finished", "stop")

_EDGE = re.compile(
    r"^(?P<base>.+?)[_.\-: ](?P<edge>" + "|".join(OPEN_SUFFIXES + CLOSE_SUFFIXES) + r")$",
    re.IGNORECASE,
)


# --- FlowTracker ------------------------------------------------------------------------------------


@dataclass
class FlowCheckpoint:
    """One ``flow.checkpoint(...)`` call (the old ``PerformanceCheckpoint``: same fields)."""

    name: str
    elapsed_ms: float
    timestamp: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Step:
    base: str
    span: Span
    token: object | None
    owner: tuple[int, int]  # (thread id, task id) that attached the token


_UNSET: Any = _sla._UNSET


class FlowTracker:
    """Track one user flow with checkpoints; a drop-in for the hand-rolled ``FlowTracker``.

    ::

        flow = FlowTracker("queue_command", user_id=interaction.user.id, mode="1v1")
        flow.checkpoint("guard_checks_start")
        ...                                     # becomes a child span "guard_checks"
        flow.checkpoint("guard_checks_complete")
        flow.checkpoint("view_built")           # no partner: a span event with its elapsed ms
        duration_ms = flow.complete("success")

    * Pairs: ``x_start``/``x_begin`` opens step ``x``; ``x_complete``/``_end``/``_done``/``_finish``
      (and ``_completed``/``_finished``/``_stop``) closes the innermost open ``x``. Steps nest: a
      step opened while another is open is its child. Closing ``x`` while steps opened after it
      are still open closes those too, marked ``bot.checkpoint.mismatched``; a close with no open
      partner becomes an event marked mismatched; steps still open at :meth:`complete` are closed
      there, marked ``bot.checkpoint.unclosed``.
    * The flow is an INTERNAL span, a child of the current span (inside an instrumented
      interaction: of its root), or a root of its own outside any trace. While open, the flow and
      its open steps are the current span in the task that opened them, so DB, REST and executor
      spans made in between nest under them (``set_current=False`` turns that off).
    * :meth:`complete` sets ``bot.flow.status`` (``"error"``, ``"failed"``, ``"failure"``,
      ``"exception"``, ``"timeout"`` set status ERROR), ``bot.flow.duration_ms``, and the
      threshold and severity attributes (``threshold_ms=`` overrides the settings' threshold for
      this flow's name). Completing twice is harmless and returns the first duration. A flow
      never completed inside an instrumented interaction is completed when the interaction's
      root ends, with status ``"unclosed"`` and ``bot.checkpoint.unclosed=True``.
    * Also a context manager (``with``/``async with``): completes ``"success"``, or ``"error"``
      with the exception recorded (and re-raised unchanged).

    Nothing here raises into the bot.
    """

    def __init__(
        self,
        name: str | None = None,
        /,
        user_id: Any = None,
        *,
        flow_name: str | None = None,
        threshold_ms: float | None = _UNSET,
        set_current: bool = True,
        **attributes: Any,
    ) -> None:
        self.flow_name: str = str(name if name is not None else (flow_name or "flow"))
        self.user_id = user_id
        self.metadata: dict[str, Any] = dict(attributes)
        self.checkpoints: list[FlowCheckpoint] = []
        self.status: str | None = None
        self.threshold_ms = threshold_ms
        self.severity: str | None = None
        self._start_ns = time.time_ns()
        self._perf_start = time.perf_counter_ns()
        self.start_time: float = self._perf_start / 1e9  # perf_counter seconds, like the old tracker
        self._perf_end: int | None = None
        self._completed = False
        self._lock = threading.Lock()
        self._span: Span = INVALID_SPAN
        self._token: object | None = None
        self._owner = _owner()
        self._set_current = set_current
        self._steps: list[_Step] = []
        if _state.is_suppressed() or _is_noop(_state.get_tracer()):
            return
        with guard("flow.start"):
            attrs = clean_attributes(self.metadata)
            attrs[A.BOT_FLOW_NAME] = _cut(self.flow_name, _state.settings_or_default().max_attribute_length)
            uid = _user_id_value(user_id)
            if uid is not None:
                attrs[A.BOT_FLOW_USER_ID] = uid
            self._span = _state.get_tracer().start_span(
                self.flow_name,
                context=_parent_context(),
                kind=SpanKind.INTERNAL,
                attributes=attrs,
                start_time=self._start_ns,
            )
            if set_current:
                self._token = otel_context.attach(trace.set_span_in_context(self._span))
        with guard("flow.root_finalizer"):
            from . import _roots  # the root-span machinery (imported late: it imports us indirectly)

            root = _roots.current_root()
            if root is not None:
                root.finalizers.append(self._at_root_end)

    def __repr__(self) -> str:
        state = f"completed {self.status}" if self._completed else "running"
        return f"<FlowTracker {self.flow_name!r} {state} {self.get_duration():.1f} ms>"

    # --- read-only views ---------------------------------------------------------------------
    @property
    def span(self) -> Span:
        """The flow's span (a non-recording span when tracing is off or suppressed)."""
        return self._span

    @property
    def completed(self) -> bool:
        return self._completed

    @property
    def duration_ms(self) -> float:
        """Elapsed ms: running while open, fixed at :meth:`complete`."""
        return self.get_duration()

    def get_duration(self) -> float:
        """Elapsed ms since the flow started (the final duration once completed)."""
        end = self._perf_end if self._perf_end is not None else time.perf_counter_ns()
        return (end - self._perf_start) / 1e6

    @property
    def open_steps(self) -> list[str]:
        """Names of the steps opened and not yet closed, outermost first."""
        return [s.base for s in self._steps]

    def get_checkpoint(self, name: str) -> FlowCheckpoint | None:
        """The last checkpoint called ``name``."""
        for cp in reversed(self.checkpoints):
            if cp.name == name:
                return cp
        return None

    def steps(self) -> dict[str, float]:
        """Old-style summary: each checkpoint's ms since the previous one (since start for the first)."""
        out: dict[str, float] = {}
        prev = 0.0
        for cp in self.checkpoints:
            out[cp.name] = cp.elapsed_ms - prev
            prev = cp.elapsed_ms
        return out

    # --- recording -----------------------------------------------------------------------------
    def add_metadata(self, key: str, value: Any) -> None:
        """Attach ``key=value`` to the flow (and its span, cleaned and bounded)."""
        with guard("flow.metadata"):
            self.metadata[key] = value
            if self._span.is_recording():
                for k, v in clean_attributes({key: value}).items():
                    self._span.set_attribute(k, v)

    set_attribute = add_metadata

    def checkpoint(self, name: str, metadata: Mapping[str, Any] | None = None, **attributes: Any) -> None:
        """Record a checkpoint: opens/closes a step for ``x_start``/``x_complete`` style names,
        otherwise adds a span event with the elapsed ms. Ignored after :meth:`complete`."""
        with guard("flow.checkpoint"):
            with self._lock:
                if self._completed:
                    return
                now_perf = time.perf_counter_ns()
                elapsed_ms = (now_perf - self._perf_start) / 1e6
                meta = {**(metadata or {}), **attributes}
                prev = self.checkpoints[-1].elapsed_ms if self.checkpoints else 0.0
                self.checkpoints.append(
                    FlowCheckpoint(
                        name=name,
                        elapsed_ms=elapsed_ms,
                        timestamp=datetime.now(timezone.utc),
                        metadata=meta,
                    )
                )
                ts = self._start_ns + (now_perf - self._perf_start)
                match = _EDGE.match(name)
                if match is None:
                    self._event(name, ts, elapsed_ms, elapsed_ms - prev, meta)
                    return
                base, edge = match.group("base"), match.group("edge").lower()
                if edge in OPEN_SUFFIXES:
                    self._open(base, ts, meta)
                else:
                    self._close(name, base, ts, elapsed_ms, elapsed_ms - prev, meta)

    def step(self, name: str, /, **attributes: Any) -> _FlowStep:
        """``with flow.step("guard_checks"):`` — the same as the ``_start``/``_complete`` pair."""
        return _FlowStep(self, name, attributes)

    def complete(self, status: str = "success") -> float:
        """End the flow: status attribute, thresholds, severity; returns the duration in ms.

        Steps still open are closed here (marked ``bot.checkpoint.unclosed``). A second call
        changes nothing and returns the first duration.
        """
        with self._lock:
            if self._completed:
                return self.get_duration()
            self._completed = True
            self._perf_end = time.perf_counter_ns()
        duration_ms = self.get_duration()
        self.status = str(status)
        with guard("flow.complete"):
            end_ns = self._start_ns + (self._perf_end - self._perf_start)
            while self._steps:
                step = self._steps.pop()
                if step.span.is_recording():
                    step.span.set_attribute(A.BOT_CHECKPOINT_UNCLOSED, True)
                self._finish_step(step, end_ns)
            span = self._span
            if self._token is not None:
                _detach(self._token, span, self._owner)
                self._token = None
            self.severity = _sla.evaluate(
                span,
                self.flow_name,
                duration_ms,
                _state.settings_or_default(),
                threshold_ms=self.threshold_ms,
            )
            if span.is_recording():
                span.set_attribute(A.BOT_FLOW_STATUS, _cut(self.status, 64))
                span.set_attribute(A.BOT_FLOW_DURATION_MS, round(duration_ms, 3))
                if self.status.lower() in ERROR_STATUSES:
                    span.set_status(Status(StatusCode.ERROR, f"flow status: {_cut(self.status, 64)}"))
            span.end(end_time=end_ns)
        return duration_ms

    def _at_root_end(self, root: Any) -> None:
        """The interaction's root is ending and the flow was never completed: close it there,
        marked ``bot.checkpoint.unclosed`` with status ``"unclosed"`` (so it is not lost)."""
        if self._completed:
            return
        if self._span.is_recording():
            self._span.set_attribute(A.BOT_CHECKPOINT_UNCLOSED, True)
        self.complete("unclosed")

    def fail(self, exc: BaseException | None = None, status: str = "error") -> float:
        """Record ``exc`` (if given) on the flow and complete it with ``status`` (ERROR)."""
        with guard("flow.fail"):
            if exc is not None and not self._completed:
                _record_error(self._span, exc)
        return self.complete(status)

    # --- context manager -----------------------------------------------------------------------
    def __enter__(self) -> FlowTracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._completed:
            return
        if exc is None:
            self.complete("success")
        elif isinstance(exc, asyncio.CancelledError):
            self.complete("cancelled")
        else:
            self.fail(exc)

    async def __aenter__(self) -> FlowTracker:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # --- internals -------------------------------------------------------------------------------
    def _parent(self) -> Span:
        return self._steps[-1].span if self._steps else self._span

    def _event(self, name: str, ts: int, elapsed_ms: float, step_ms: float, meta: Mapping[str, Any], **flags: bool) -> None:
        target = self._parent()
        if not target.is_recording():
            return
        attrs = clean_attributes(meta)
        attrs[A.BOT_CHECKPOINT] = True
        attrs[A.BOT_CHECKPOINT_ELAPSED_MS] = round(elapsed_ms, 3)
        attrs[A.BOT_CHECKPOINT_STEP_MS] = round(step_ms, 3)
        if flags.get("mismatched"):
            attrs[A.BOT_CHECKPOINT_MISMATCHED] = True
        target.add_event(name, attrs, timestamp=ts)

    def _open(self, base: str, ts: int, meta: Mapping[str, Any]) -> None:
        if self._span is INVALID_SPAN:
            self._steps.append(_Step(base, INVALID_SPAN, None, _owner()))
            return
        attrs = clean_attributes(meta)
        attrs[A.BOT_CHECKPOINT] = True
        attrs[A.BOT_FLOW_NAME] = _cut(self.flow_name, _state.settings_or_default().max_attribute_length)
        span = _state.get_tracer().start_span(
            base,
            context=trace.set_span_in_context(self._parent()),
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            start_time=ts,
        )
        token = otel_context.attach(trace.set_span_in_context(span)) if self._set_current else None
        self._steps.append(_Step(base, span, token, _owner()))

    def _close(
        self, name: str, base: str, ts: int, elapsed_ms: float, step_ms: float, meta: Mapping[str, Any]
    ) -> None:
        index = next((i for i in range(len(self._steps) - 1, -1, -1) if self._steps[i].base == base), None)
        if index is None:
            self._event(name, ts, elapsed_ms, step_ms, meta, mismatched=True)
            return
        while len(self._steps) > index + 1:  # opened after `base` and still open: close them here
            inner = self._steps.pop()
            if inner.span.is_recording():
                inner.span.set_attribute(A.BOT_CHECKPOINT_MISMATCHED, True)
            self._finish_step(inner, ts)
        step = self._steps.pop()
        if step.span.is_recording():
            for k, v in clean_attributes(meta).items():
                step.span.set_attribute(k, v)
        self._finish_step(step, ts)

    def _finish_step(self, step: _Step, end_ns: int) -> None:
        if step.token is not None:
            _detach(step.token, step.span, step.owner)
        step.span.end(end_time=end_ns)


class _FlowStep:
    """``with flow.step("x"):`` / ``async with``: a step with guaranteed pairing."""

    __slots__ = ("_attributes", "_flow", "_name")

    def __init__(self, flow: FlowTracker, name: str, attributes: Mapping[str, Any]) -> None:
        self._flow = flow
        self._name = name
        self._attributes = dict(attributes)

    def __enter__(self) -> FlowTracker:
        self._flow.checkpoint(f"{self._name}_start", self._attributes)
        return self._flow

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        flow = self._flow
        if exc is not None:
            with guard("flow.step.error"):
                for step in reversed(flow._steps):
                    if step.base == self._name:
                        _record_error(step.span, exc)
                        break
        flow.checkpoint(f"{self._name}_complete")

    async def __aenter__(self) -> FlowTracker:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _owner() -> tuple[int, int]:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return (threading.get_ident(), id(task) if task is not None else 0)


def _detach(token: object, span: Span, owner: tuple[int, int]) -> None:
    """Detach only where it is safe: same thread and task, and our span is still the current one
    (a ``with`` block that already restored an outer context, or another task, is left alone)."""
    if owner != _owner() or trace.get_current_span() is not span:
        return
    otel_context.detach(token)  # type: ignore[arg-type]
