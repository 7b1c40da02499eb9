"""Process-wide instrumentation state: the tracer, the active settings, the current unit of work.

A *unit of work* is what one root span stands for (an interaction, a command, an event, a task
loop iteration). It lives in a contextvar so it follows the work across awaits, tasks and executor
threads; the DB, executor, flow and event-loop modules attach what they learn to it.
"""

from __future__ import annotations

import contextvars
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Tracer

from ._config import Settings

try:  # opentelemetry-api >= 1.x keeps the key here
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY
except ImportError:  # pragma: no cover - very old API
    from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY

INSTRUMENTATION_NAME = "otel_bot"

_settings: Settings | None = None
_tracer: Tracer | None = None  # built from _settings' tracer_provider on first use


def activate(settings: Settings) -> None:
    """Make ``settings`` the active ones (called by instrument_bot / the instrumentor)."""
    global _settings, _tracer
    _settings = settings
    _tracer = None


def deactivate() -> None:
    global _settings, _tracer
    _settings = None
    _tracer = None


def settings() -> Settings | None:
    """The active settings, or ``None`` when nothing is instrumented."""
    return _settings


def settings_or_default() -> Settings:
    return _settings if _settings is not None else _DEFAULT_SETTINGS


def get_tracer() -> Tracer:
    """otel_bot's tracer: from instrument_bot's tracer_provider, else the global provider."""
    global _tracer
    tracer = _tracer
    if tracer is None:
        from ._version import __version__

        provider = _settings.tracer_provider if _settings is not None else None
        tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__, tracer_provider=provider)
        _tracer = tracer
    return tracer


def is_suppressed() -> bool:
    """True inside ``suppress_instrumentation()``: every wrapper's first check."""
    return bool(otel_context.get_value(_SUPPRESS_KEY))


@dataclass(eq=False)
class WorkUnit:
    """What one root span stands for. Shared by every task and thread that carries its context."""

    span: Span
    flow: str  # the name users see: command qualified name, event name, loop name
    kind: str  # interaction, command, event, task
    start_ns: int = field(default_factory=time.time_ns)
    query_counts: Counter[str] = field(default_factory=Counter)
    reported_queries: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)
    ended: bool = False


current_unit: contextvars.ContextVar[WorkUnit | None] = contextvars.ContextVar("otel_bot_unit", default=None)


def get_unit() -> WorkUnit | None:
    """The unit of work the caller runs inside, if any (and not yet ended)."""
    unit = current_unit.get()
    if unit is not None and unit.ended:
        return None
    return unit


_DEFAULT_SETTINGS = Settings()
