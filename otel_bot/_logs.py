"""Log correlation: trace and span ids on every log record, and (opt-in) WARNING+ as span events.

The record attributes are the ones the contrib logging instrumentation
(``opentelemetry-instrumentation-logging``) writes, so formats and log pipelines work with either:

* ``otelTraceID`` — 32 hex digits, ``"0"`` outside a span
* ``otelSpanID`` — 16 hex digits, ``"0"`` outside a span
* ``otelTraceSampled`` — ``True`` when the trace is sampled
* ``otelServiceName`` — the tracer provider's ``service.name`` (``""`` if unknown)

:func:`instrument_logging` installs a log record factory that stamps every record at creation
(so the ids are right even when a ``QueueHandler`` formats the record on another thread), plus a
default format when logging is not configured yet. :class:`TraceContextFilter` does the same as a
``logging.Filter`` for ``dictConfig`` users. Mirroring copies WARNING and above, logged inside a
recording span, onto that span as a ``log`` event; it is off by default and never mirrors
otel_bot's own loggers (the waterfall, the guard).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.trace import INVALID_SPAN_CONTEXT

from . import _attributes as A
from . import _privacy, _state
from ._guard import guard
from ._routes import redact

__all__ = [
    "DEFAULT_FORMAT",
    "SpanEventHandler",
    "TraceContextFilter",
    "instrument_logging",
    "uninstrument_logging",
]

#: The format :func:`instrument_logging` sets when logging is not configured yet.
DEFAULT_FORMAT = (
    "%(asctime)s %(levelname)s [%(name)s] [trace_id=%(otelTraceID)s span_id=%(otelSpanID)s] %(message)s"
)

_OWN_LOGGERS = "otel_bot"
_lock = threading.Lock()
_old_factory: Callable[..., logging.LogRecord] | None = None
_mirror: SpanEventHandler | None = None


_service_cache: tuple[int, str] | None = None


def _service() -> str:
    """``service.name`` of the provider in use (cached per provider object)."""
    global _service_cache
    provider = _state.settings_or_default().tracer_provider or trace.get_tracer_provider()
    cached = _service_cache
    if cached is not None and cached[0] == id(provider):
        return cached[1]
    resource = getattr(provider, "resource", None)
    attrs = getattr(resource, "attributes", None) or {}
    name = attrs.get(SERVICE_NAME) if hasattr(attrs, "get") else None
    value = str(name) if name else ""
    _service_cache = (id(provider), value)
    return value


def stamp(record: logging.LogRecord) -> logging.LogRecord:
    """Set the four ``otel*`` attributes on ``record`` from the current span."""
    ctx = trace.get_current_span().get_span_context()
    if ctx is INVALID_SPAN_CONTEXT or not ctx.is_valid:
        record.otelTraceID = "0"
        record.otelSpanID = "0"
        record.otelTraceSampled = False
    else:
        record.otelTraceID = format(ctx.trace_id, "032x")
        record.otelSpanID = format(ctx.span_id, "016x")
        record.otelTraceSampled = ctx.trace_flags.sampled
    record.otelServiceName = _service()
    return record


class TraceContextFilter(logging.Filter):
    """Adds ``otelTraceID``, ``otelSpanID``, ``otelTraceSampled`` and ``otelServiceName`` to
    every record it sees (never drops one). Records already stamped at creation (by
    :func:`instrument_logging` or the contrib instrumentation) keep their values, so a filter on
    a handler fed by a queue still shows the span the record was logged in.

    ::

        handler.addFilter(TraceContextFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s [trace_id=%(otelTraceID)s] %(message)s"))
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "otelTraceID", None) is None:
            with guard("logs.filter"):
                stamp(record)
        return True


class SpanEventHandler(logging.Handler):
    """Mirrors records (WARNING and above by default) onto the current recording span as
    ``log`` events with ``log.severity``, ``log.message``, ``log.logger``, ``code.file.path``,
    ``code.line.number`` and, for ``exc_info``, ``exception.type``/``exception.message``.
    otel_bot's own loggers are never mirrored."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == _OWN_LOGGERS or record.name.startswith(_OWN_LOGGERS + "."):
            return
        span = trace.get_current_span()
        if not span.is_recording():
            return
        with guard("logs.mirror"):
            limit = _state.settings_or_default().max_attribute_length
            message = _privacy.clean_text(redact(record.getMessage()), None)
            attrs: dict[str, Any] = {
                A.LOG_SEVERITY: record.levelname,
                A.LOG_MESSAGE: message if len(message) <= limit else message[: limit - 1] + "…",
                A.LOG_LOGGER: record.name,
                A.CODE_FILE_PATH: record.pathname,
                A.CODE_LINE_NUMBER: record.lineno,
            }
            if record.exc_info and record.exc_info[0] is not None:
                exc_type, exc, _tb = record.exc_info
                attrs[A.EXCEPTION_TYPE] = _privacy.error_type(exc if exc is not None else exc_type)
                attrs[A.EXCEPTION_MESSAGE] = _privacy.clean_text(redact(str(exc)), limit)
            span.add_event(A.EVENT_LOG, attrs, timestamp=int(record.created * 1e9))

    def handleError(self, record: logging.LogRecord) -> None:  # pragma: no cover - never print
        pass


def instrument_logging(
    level: int | str | None = None,
    mirror_events: bool | None = None,
    *,
    fmt: str | None = DEFAULT_FORMAT,
    mirror_level: int = logging.WARNING,
) -> None:
    """Put trace and span ids on every log record; optionally mirror WARNING+ as span events.

    * Installs a log record factory (chaining the current one; idempotent) that stamps
      ``otelTraceID`` / ``otelSpanID`` / ``otelTraceSampled`` / ``otelServiceName``.
    * If the root logger has no handlers yet and ``fmt`` is not ``None``, calls
      ``logging.basicConfig(format=fmt, level=level or INFO)``. A configured root logger keeps
      its handlers and formats (add ``%(otelTraceID)s`` / ``%(otelSpanID)s`` to yours); ``level``
      is then applied to the root logger if given.
    * ``mirror_events``: ``True`` attaches a :class:`SpanEventHandler` (level ``mirror_level``) to
      the root logger; ``None`` follows ``Settings.mirror_logs_as_events`` of the active
      ``instrument_bot`` settings (off by default); ``False`` removes it.
    """
    global _old_factory, _mirror
    with _lock:
        if _old_factory is None:
            old = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = old(*args, **kwargs)
                try:
                    stamp(record)
                except Exception:  # pragma: no cover - stamping must never break logging
                    pass
                return record

            factory._otel_bot = True  # type: ignore[attr-defined]
            _old_factory = old
            logging.setLogRecordFactory(factory)
        root = logging.getLogger()
        resolved = _level(level)
        if fmt is not None and not root.handlers:
            logging.basicConfig(format=fmt, level=resolved if resolved is not None else logging.INFO)
        elif resolved is not None:
            root.setLevel(resolved)
        want = mirror_events if mirror_events is not None else _state.settings_or_default().mirror_logs_as_events
        if want and _mirror is None:
            _mirror = SpanEventHandler(mirror_level)
            root.addHandler(_mirror)
        elif want and _mirror is not None:
            _mirror.setLevel(mirror_level)
        elif not want and _mirror is not None:
            root.removeHandler(_mirror)
            _mirror = None


def uninstrument_logging() -> None:
    """Undo :func:`instrument_logging`: restore the record factory, remove the mirror handler.
    (A ``basicConfig`` handler it added stays: it is ordinary logging configuration.)"""
    global _old_factory, _mirror, _service_cache
    with _lock:
        if _old_factory is not None:
            current = logging.getLogRecordFactory()
            if getattr(current, "_otel_bot", False):
                logging.setLogRecordFactory(_old_factory)
            _old_factory = None
        if _mirror is not None:
            logging.getLogger().removeHandler(_mirror)
            _mirror = None
        _service_cache = None


def apply_settings(settings: Any) -> None:
    """Hook for ``instrument_bot``: mirror WARNING+ as span events iff
    ``settings.mirror_logs_as_events`` (touches nothing else: no factory, no format)."""
    global _mirror
    with _lock:
        root = logging.getLogger()
        if getattr(settings, "mirror_logs_as_events", False):
            if _mirror is None:
                _mirror = SpanEventHandler()
                root.addHandler(_mirror)
        elif _mirror is not None:
            root.removeHandler(_mirror)
            _mirror = None


def is_mirroring() -> bool:
    """True while WARNING+ records are mirrored as span events."""
    return _mirror is not None


def _level(level: int | str | None) -> int | None:
    if level is None:
        return None
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value
