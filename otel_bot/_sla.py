"""Per-flow thresholds and severities.

Every root span (interaction, command, event, task iteration) and every :class:`FlowTracker`
flow is judged twice when it ends:

* **severity** — an absolute class from :class:`~otel_bot.SeverityBounds` (the same bounds for
  every flow): ``FAST`` below ``fast_ms`` (10 ms), ``OK`` below ``slow_ms`` (1000 ms; the old
  system's "moderate" band 500-1000 ms is ``OK`` too: only four severities exist), ``SLOW`` from
  ``slow_ms``, ``CRITICAL`` above ``critical_ms`` (3000 ms, Discord's acknowledgement deadline).
* **threshold** — a per-flow budget in ms (``Settings.thresholds`` by the name users see,
  ``/queue``, ``queue`` and ``ladder queue`` style, else ``Settings.default_threshold_ms``, or a
  ``FlowTracker(threshold_ms=...)`` override). A flow that takes *longer* than its threshold has
  exceeded it; the span then gets an event ``bot.flow.threshold_exceeded`` saying by how much.

The span gets ``bot.flow.severity`` always, and ``bot.flow.threshold_ms`` /
``bot.flow.threshold_exceeded`` when a threshold applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from . import _attributes as A
from ._config import Settings, SeverityBounds
from ._guard import guard

__all__ = ["Assessment", "Severity", "assess", "breach_text", "classify", "evaluate"]


class Severity(str, Enum):
    """How slow a flow was, by absolute bounds. A ``str``: ``Severity.SLOW == "SLOW"``."""

    FAST = "FAST"
    OK = "OK"
    SLOW = "SLOW"
    CRITICAL = "CRITICAL"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """0 for FAST up to 3 for CRITICAL (for comparisons)."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: Any) -> Severity | None:
        """The severity named by ``value`` (a member or its string), else ``None``."""
        if isinstance(value, Severity):
            return value
        if isinstance(value, str):
            try:
                return cls(value.upper())
            except ValueError:
                return None
        return None


_RANK = {Severity.FAST: 0, Severity.OK: 1, Severity.SLOW: 2, Severity.CRITICAL: 3}


def classify(duration_ms: float, bounds: SeverityBounds | None = None) -> Severity:
    """The severity of a duration.

    ``d < fast_ms`` FAST; ``d < slow_ms`` OK (this includes ``ok_ms <= d < slow_ms``);
    ``slow_ms <= d <= critical_ms`` SLOW; ``d > critical_ms`` CRITICAL. With the defaults:
    9.9 FAST, 10 OK, 999.9 OK, 1000 SLOW, 3000 SLOW, 3000.1 CRITICAL.
    """
    b = bounds if bounds is not None else _DEFAULT_BOUNDS
    if duration_ms > b.critical_ms:
        return Severity.CRITICAL
    if duration_ms >= b.slow_ms:
        return Severity.SLOW
    if duration_ms < b.fast_ms:
        return Severity.FAST
    return Severity.OK


_DEFAULT_BOUNDS = SeverityBounds()


class _Unset:
    pass


_UNSET: Any = _Unset()


@dataclass(frozen=True)
class Assessment:
    """The verdict on one flow run."""

    flow: str
    duration_ms: float
    severity: Severity
    threshold_ms: float | None
    exceeded: bool
    over_ms: float
    over_percent: float | None  # None when the threshold is 0

    def breach_text(self) -> str | None:
        """``"/queue took 3456 ms (threshold 500 ms, 591% over)"`` when exceeded, else None."""
        if not self.exceeded or self.threshold_ms is None:
            return None
        return breach_text(self.flow, self.duration_ms, self.threshold_ms)


def assess(
    flow_name: str,
    duration_ms: float,
    settings: Settings,
    *,
    threshold_ms: float | None = _UNSET,
) -> Assessment:
    """Judge a run of ``flow_name`` that took ``duration_ms``. ``threshold_ms`` overrides the
    settings' threshold for this run (``None`` there means: no threshold)."""
    threshold = settings.threshold_for(flow_name) if threshold_ms is _UNSET else threshold_ms
    if threshold is not None and (not isinstance(threshold, (int, float)) or math.isnan(threshold)):
        threshold = None
    severity = classify(duration_ms, settings.severity_bounds)
    exceeded = threshold is not None and duration_ms > threshold
    over_ms = max(0.0, duration_ms - threshold) if threshold is not None else 0.0
    over_percent: float | None = None
    if threshold is not None and threshold > 0:
        over_percent = max(0.0, over_ms / threshold * 100.0)
    return Assessment(
        flow=flow_name,
        duration_ms=float(duration_ms),
        severity=severity,
        threshold_ms=float(threshold) if threshold is not None else None,
        exceeded=exceeded,
        over_ms=over_ms,
        over_percent=over_percent,
    )


def evaluate(
    span: Any,
    flow_name: str,
    duration_ms: float,
    settings: Settings,
    *,
    threshold_ms: float | None = _UNSET,
) -> str | None:
    """Judge a finished flow and write the verdict onto ``span`` (call before ``span.end()``).

    Sets ``bot.flow.severity`` and, when a threshold applies, ``bot.flow.threshold_ms`` and
    ``bot.flow.threshold_exceeded``; when exceeded, adds the event ``bot.flow.threshold_exceeded``
    with ``bot.flow.over_ms`` and ``bot.flow.over_percent``. Returns the :class:`Severity` (a
    ``str``), or ``None`` if judging failed (never raises outside the test suite).
    """
    result: str | None = None
    with guard("sla.evaluate"):
        verdict = assess(flow_name, duration_ms, settings, threshold_ms=threshold_ms)
        result = verdict.severity
        if span is not None and span.is_recording():
            apply(span, verdict)
    return result


def apply(span: Any, verdict: Assessment) -> None:
    """Write an :class:`Assessment` onto a recording span."""
    span.set_attribute(A.BOT_FLOW_SEVERITY, verdict.severity.value)
    if verdict.threshold_ms is None:
        return
    span.set_attribute(A.BOT_FLOW_THRESHOLD_MS, verdict.threshold_ms)
    span.set_attribute(A.BOT_FLOW_THRESHOLD_EXCEEDED, verdict.exceeded)
    if verdict.exceeded:
        attrs: dict[str, Any] = {
            A.BOT_FLOW_NAME: verdict.flow,
            A.BOT_FLOW_DURATION_MS: round(verdict.duration_ms, 3),
            A.BOT_FLOW_THRESHOLD_MS: verdict.threshold_ms,
            A.BOT_FLOW_OVER_MS: round(verdict.over_ms, 3),
        }
        if verdict.over_percent is not None:
            attrs[A.BOT_FLOW_OVER_PERCENT] = round(verdict.over_percent, 1)
        span.add_event(A.EVENT_THRESHOLD_EXCEEDED, attrs)


def breach_text(flow_name: str, duration_ms: float, threshold_ms: float) -> str:
    """The one-line summary of a breach: ``/queue took 3456 ms (threshold 500 ms, 591% over)``."""
    over = duration_ms - threshold_ms
    if threshold_ms > 0:
        tail = f"{over / threshold_ms * 100:.0f}% over"
    else:
        tail = f"{_ms(over)} ms over"
    return f"{flow_name} took {_ms(duration_ms)} ms (threshold {_ms(threshold_ms)} ms, {tail})"


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
