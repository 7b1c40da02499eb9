"""The demo's span collector: groups finished spans per trace, feeds the per-flow summary table and
chooses which traces get a printed waterfall.

It is an ordinary :class:`~opentelemetry.sdk.trace.SpanProcessor` added next to the exporters, so
what the table says is exactly what was exported.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from .. import _attributes as A

TraceSink = Callable[[Sequence[ReadableSpan]], None]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _ms(span: ReadableSpan) -> float:
    if span.start_time is None or span.end_time is None:
        return 0.0
    return (span.end_time - span.start_time) / 1e6


@dataclass
class StepStats:
    """One step name (a child span name) within a flow, aggregated per trace."""

    traces: int = 0
    calls: int = 0
    total_ms: float = 0.0
    self_ms: float = 0.0  # minus the time of its child spans: where the time actually went
    max_ms: float = 0.0

    @property
    def mean_ms(self) -> float:
        """Mean time per trace the step appears in (all same-named spans of a trace summed)."""
        return self.total_ms / self.traces if self.traces else 0.0

    @property
    def mean_self_ms(self) -> float:
        """Mean self time per trace the step appears in."""
        return self.self_ms / self.traces if self.traces else 0.0

    @property
    def calls_per_trace(self) -> float:
        return self.calls / self.traces if self.traces else 0.0


@dataclass
class FlowStats:
    """Everything the summary table shows for one flow (one root span name)."""

    name: str
    durations_ms: list[float] = field(default_factory=list)
    errors: int = 0
    breaches: int = 0
    ack_misses: int = 0
    threshold_ms: float | None = None
    steps: dict[str, StepStats] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.durations_ms)

    def slowest_steps(self, n: int = 3) -> list[tuple[str, StepStats]]:
        """The ``n`` steps with the most self time per trace."""
        return sorted(self.steps.items(), key=lambda kv: (-kv[1].mean_self_ms, kv[0]))[:n]


@dataclass
class TraceInfo:
    """What the sampler knows about a finished trace."""

    flow: str
    spans: list[ReadableSpan]
    root: ReadableSpan
    error: bool
    breach: bool
    ack_missed: bool


class DemoCollector(SpanProcessor):
    """Collects finished spans per trace; on the root's end, records the trace into the flow table
    and hands it to ``sink`` when ``sample`` says so."""

    def __init__(
        self,
        *,
        sink: TraceSink | None = None,
        sample: Callable[[TraceInfo], bool] | None = None,
        max_pending_traces: int = 10_000,
    ) -> None:
        self.sink = sink
        self.sample = sample
        self.flows: dict[str, FlowStats] = {}
        self.traces = 0
        self.spans = 0
        self.other_roots = 0  # roots that are not units of bot work (e.g. REST calls at login)
        self.idle: dict[str, int] = {}  # task loop iterations that did nothing (root span only)
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._open_roots: set[int] = set()
        self._max_pending = max_pending_traces
        self._cond = threading.Condition(self._lock)

    # --- SpanProcessor ------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.parent is None:
            with self._lock:
                self._open_roots.add(span.context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        ready: list[ReadableSpan] | None = None
        with self._lock:
            self.spans += 1
            trace_id = span.context.trace_id
            bucket = self._pending.get(trace_id)
            if bucket is None:
                bucket = self._pending[trace_id] = []
                while len(self._pending) > self._max_pending:
                    self._pending.popitem(last=False)
            bucket.append(span)
            if span.parent is None:
                ready = self._pending.pop(trace_id)
                self._open_roots.discard(span.context.span_id)
                self._cond.notify_all()
        if ready is not None:
            self._finish(span, ready)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # --- bookkeeping ------------------------------------------------------------------------------
    def open_roots(self) -> int:
        """Root spans started and not yet ended."""
        with self._lock:
            return len(self._open_roots)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every started root has ended (or ``timeout`` s passed)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._open_roots, timeout)

    def _finish(self, root: ReadableSpan, spans: list[ReadableSpan]) -> None:
        if root.kind is not SpanKind.SERVER:
            with self._lock:
                self.other_roots += 1
            return
        attrs = root.attributes or {}
        error = root.status.status_code is StatusCode.ERROR
        breach = bool(attrs.get(A.BOT_FLOW_THRESHOLD_EXCEEDED, False))
        ack_missed = bool(attrs.get(A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED, False))
        info = TraceInfo(root.name, spans, root, error, breach, ack_missed)
        if len(spans) == 1 and not error and attrs.get(A.DISCORD_TASK_LOOP_NAME) is not None:
            with self._lock:
                self.traces += 1
                self.idle[root.name] = self.idle.get(root.name, 0) + 1
            return
        with self._lock:
            self.traces += 1
            flow = self.flows.get(root.name)
            if flow is None:
                flow = self.flows[root.name] = FlowStats(root.name)
            flow.durations_ms.append(_ms(root))
            flow.errors += error
            flow.breaches += breach
            flow.ack_misses += ack_missed
            threshold = attrs.get(A.BOT_FLOW_THRESHOLD_MS)
            if isinstance(threshold, (int, float)):
                flow.threshold_ms = float(threshold)
            child_ms: dict[int, float] = {}
            for span in spans:
                if span.parent is not None:
                    child_ms[span.parent.span_id] = child_ms.get(span.parent.span_id, 0.0) + _ms(span)
            per_trace: dict[str, tuple[int, float, float, float]] = {}
            for span in spans:
                if span is root:
                    continue
                calls, total, own, peak = per_trace.get(span.name, (0, 0.0, 0.0, 0.0))
                d = _ms(span)
                mine = max(0.0, d - child_ms.get(span.context.span_id, 0.0))
                per_trace[span.name] = (calls + 1, total + d, own + mine, max(peak, d))
            for name, (calls, total, own, peak) in per_trace.items():
                step = flow.steps.get(name)
                if step is None:
                    step = flow.steps[name] = StepStats()
                step.traces += 1
                step.calls += calls
                step.total_ms += total
                step.self_ms += own
                step.max_ms = max(step.max_ms, peak)
        if self.sink is not None and (self.sample is None or self.sample(info)):
            self.sink(spans)

    # --- the table ----------------------------------------------------------------------------------
    def table(self, *, ascii_only: bool = False) -> str:
        """The per-flow summary, one row per flow, busiest first."""
        with self._lock:
            flows = sorted(self.flows.values(), key=lambda f: (-f.count, f.name))
            footnote = None
            if self.idle:
                idle = ", ".join(f"{n} x {name}" for name, n in sorted(self.idle.items()))
                footnote = f"(not in the table: loop iterations with nothing to do: {idle})"
            return render_table(flows, ascii_only=ascii_only, footnote=footnote)


def _fmt_ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _short_step(name: str, limit: int = 40, *, ascii_only: bool = False) -> str:
    """Route templates lose their placeholder names (``POST /interactions/{…}/{…}/callback``)."""
    name = _PLACEHOLDER.sub("{}" if ascii_only else "{…}", name)
    if len(name) <= limit:
        return name
    return name[: limit - 3] + "..." if ascii_only else name[: limit - 1] + "…"


def render_table(flows: Sequence[FlowStats], *, ascii_only: bool = False, footnote: str | None = None) -> str:
    """Render ``flows`` as a fixed-width table, then each flow's slowest steps (by self time)."""
    headers = ["flow", "count", "errors", "p50 ms", "p95 ms", "max ms", "threshold", "breaches", "ack misses"]
    rows: list[list[str]] = []
    for f in flows:
        rows.append(
            [
                f.name,
                str(f.count),
                str(f.errors),
                _fmt_ms(percentile(f.durations_ms, 50)),
                _fmt_ms(percentile(f.durations_ms, 95)),
                _fmt_ms(max(f.durations_ms) if f.durations_ms else math.nan),
                f"{f.threshold_ms:.0f}" if f.threshold_ms is not None else "-",
                str(f.breaches),
                str(f.ack_misses),
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    rule = ("-" if ascii_only else "─") * (sum(widths) + 2 * (len(widths) - 1))
    text = [line(headers), rule, *(line(r) for r in rows)]
    if footnote:
        text.append(footnote)
    text.append("")
    text.append("slowest steps (self time: mean ms per trace, without child spans; xN: calls per trace)")
    sep = " | " if ascii_only else " · "
    for f in flows:
        steps = []
        for name, step in f.slowest_steps(3):
            mult = f" x{step.calls_per_trace:.0f}" if step.calls_per_trace >= 1.5 else ""
            steps.append(f"{_short_step(name, ascii_only=ascii_only)}{mult} {_fmt_ms(step.mean_self_ms)}")
        text.append(f"  {f.name.ljust(widths[0])}  {sep.join(steps) or '-'}")
    return "\n".join(text)


def summarize(collector: DemoCollector) -> dict[str, Any]:
    """Machine-readable totals (used by ``--json`` and the tests)."""
    with collector._lock:
        return {
            "traces": collector.traces,
            "spans": collector.spans,
            "flows": {
                f.name: {
                    "count": f.count,
                    "errors": f.errors,
                    "p50_ms": percentile(f.durations_ms, 50),
                    "p95_ms": percentile(f.durations_ms, 95),
                    "max_ms": max(f.durations_ms) if f.durations_ms else None,
                    "threshold_ms": f.threshold_ms,
                    "breaches": f.breaches,
                    "ack_misses": f.ack_misses,
                    "slowest_steps": [name for name, _ in f.slowest_steps(3)],
                }
                for f in collector.flows.values()
            },
        }
