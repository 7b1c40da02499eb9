"""Log correlation: ids on records, the default format, and opt-in mirroring as span events."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_bot import _attributes as A
from otel_bot import _logs, _state
from otel_bot._config import Settings
from otel_bot._flow import checkpoint
from otel_bot._logs import DEFAULT_FORMAT, SpanEventHandler, TraceContextFilter, instrument_logging


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def installed() -> Iterator[None]:
    instrument_logging(fmt=None)
    try:
        yield
    finally:
        instrument_logging(fmt=None, mirror_events=False)
        _logs.uninstrument_logging()


@pytest.fixture
def app_logger() -> Iterator[tuple[logging.Logger, ListHandler]]:
    log = logging.getLogger("tests.logs.app")
    handler = ListHandler()
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield log, handler
    finally:
        log.removeHandler(handler)


def test_records_inside_a_span_carry_ids(
    installed: None, app_logger: tuple[logging.Logger, ListHandler], span_exporter: InMemorySpanExporter
) -> None:
    log, handler = app_logger
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("/queue") as span:
        log.info("queued")
        ctx = span.get_span_context()
    log.info("outside")
    inside, outside = handler.records
    assert inside.otelTraceID == format(ctx.trace_id, "032x")  # type: ignore[attr-defined]
    assert inside.otelSpanID == format(ctx.span_id, "016x")  # type: ignore[attr-defined]
    assert inside.otelTraceSampled is True  # type: ignore[attr-defined]
    assert isinstance(inside.otelServiceName, str)  # type: ignore[attr-defined]
    assert re.fullmatch(r"[0-9a-f]{32}", inside.otelTraceID)  # type: ignore[attr-defined]
    assert re.fullmatch(r"[0-9a-f]{16}", inside.otelSpanID)  # type: ignore[attr-defined]
    assert outside.otelTraceID == "0" and outside.otelSpanID == "0"  # type: ignore[attr-defined]
    assert outside.otelTraceSampled is False  # type: ignore[attr-defined]


def test_ids_follow_checkpoints(
    installed: None, app_logger: tuple[logging.Logger, ListHandler], span_exporter: InMemorySpanExporter
) -> None:
    log, handler = app_logger
    with checkpoint("guard_checks") as span:
        log.warning("inside checkpoint")
    (record,) = handler.records
    assert record.otelSpanID == format(span.get_span_context().span_id, "016x")  # type: ignore[attr-defined]


def test_unsampled_span_flag(installed: None, app_logger: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = app_logger
    ctx = SpanContext(0x1234, 0x99, False, TraceFlags(0))
    with trace.use_span(NonRecordingSpan(ctx)):
        log.info("x")
    (record,) = handler.records
    assert record.otelTraceID == f"{0x1234:032x}"  # type: ignore[attr-defined]
    assert record.otelTraceSampled is False  # type: ignore[attr-defined]


def test_default_format_shows_the_ids(installed: None, span_exporter: InMemorySpanExporter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(DEFAULT_FORMAT))
    log = logging.getLogger("tests.logs.format")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with trace.get_tracer("test").start_as_current_span("/ping") as span:
            log.info("pong")
        ctx = span.get_span_context()
    finally:
        log.removeHandler(handler)
    line = stream.getvalue().strip()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \[tests\.logs\.format\] "
        rf"\[trace_id={ctx.trace_id:032x} span_id={ctx.span_id:016x}\] pong",
        line,
    ), line


def test_filter_without_the_factory(span_exporter: InMemorySpanExporter) -> None:
    """dictConfig users attach the filter to a handler; no record factory involved."""
    assert not getattr(logging.getLogRecordFactory(), "_otel_bot", False)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(logging.Formatter("%(otelTraceID)s %(otelSpanID)s %(otelTraceSampled)s %(message)s"))
    log = logging.getLogger("tests.logs.filter")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        with trace.get_tracer("test").start_as_current_span("x") as span:
            log.info("hello")
        log.info("later")
    finally:
        log.removeHandler(handler)
    ctx = span.get_span_context()
    assert stream.getvalue().splitlines() == [
        f"{ctx.trace_id:032x} {ctx.span_id:016x} True hello",
        "0 0 False later",
    ]


def test_filter_keeps_values_stamped_at_creation(installed: None, span_exporter: InMemorySpanExporter) -> None:
    with trace.get_tracer("test").start_as_current_span("x") as span:
        record = logging.getLogger("tests.logs.keep").makeRecord("n", logging.INFO, "f", 1, "m", (), None)
    assert TraceContextFilter().filter(record) is True  # outside the span now: keeps the old ids
    assert record.otelSpanID == format(span.get_span_context().span_id, "016x")  # type: ignore[attr-defined]


def test_instrument_logging_is_idempotent_and_reversible() -> None:
    before = logging.getLogRecordFactory()
    instrument_logging(fmt=None)
    installed = logging.getLogRecordFactory()
    instrument_logging(fmt=None)
    assert logging.getLogRecordFactory() is installed is not before
    _logs.uninstrument_logging()
    assert logging.getLogRecordFactory() is before


def test_mirror_off_by_default(
    installed: None, app_logger: tuple[logging.Logger, ListHandler], span_exporter: InMemorySpanExporter
) -> None:
    log, _ = app_logger
    assert not _logs.is_mirroring()
    with trace.get_tracer("test").start_as_current_span("x"):
        log.error("not mirrored")
    (span,) = span_exporter.get_finished_spans()
    assert span.events == ()


def test_mirror_warning_and_above_as_events(
    installed: None, app_logger: tuple[logging.Logger, ListHandler], span_exporter: InMemorySpanExporter
) -> None:
    log, _ = app_logger
    instrument_logging(fmt=None, mirror_events=True)
    assert _logs.is_mirroring()
    with trace.get_tracer("test").start_as_current_span("x"):
        log.info("info stays a log")
        log.warning("slow reply %d ms", 1200)
        try:
            raise KeyError("player")
        except KeyError:
            log.exception("lookup failed")
        logging.getLogger("otel_bot.waterfall").warning("never mirrored")
        logging.getLogger("otel_bot").warning("never mirrored either")
    log.warning("outside any span: nothing to attach to")
    (span,) = span_exporter.get_finished_spans()
    assert [e.name for e in span.events] == [A.EVENT_LOG, A.EVENT_LOG]
    first, second = (dict(e.attributes or {}) for e in span.events)
    assert first[A.LOG_SEVERITY] == "WARNING"
    assert first[A.LOG_MESSAGE] == "slow reply 1200 ms"
    assert first[A.LOG_LOGGER] == "tests.logs.app"
    assert isinstance(first[A.CODE_LINE_NUMBER], int)
    assert first[A.CODE_FILE_PATH].endswith("test_logs.py")
    assert second[A.LOG_SEVERITY] == "ERROR"
    assert second[A.EXCEPTION_TYPE] == "KeyError"
    assert second[A.EXCEPTION_MESSAGE] == "'player'"
    instrument_logging(fmt=None, mirror_events=False)
    assert not _logs.is_mirroring()


def test_mirrored_exception_type_is_module_qualified(
    installed: None, app_logger: tuple[logging.Logger, ListHandler], span_exporter: InMemorySpanExporter
) -> None:
    """exception.type on a mirrored log event has the same form as everywhere else (error_type)."""
    import json

    log, _ = app_logger
    instrument_logging(fmt=None, mirror_events=True)
    try:
        with trace.get_tracer("test").start_as_current_span("x"):
            try:
                json.loads("{")
            except json.JSONDecodeError:
                log.exception("bad payload")
    finally:
        instrument_logging(fmt=None, mirror_events=False)
    (span,) = span_exporter.get_finished_spans()
    (event,) = span.events
    assert event.name == A.EVENT_LOG
    assert dict(event.attributes or {})[A.EXCEPTION_TYPE] == "json.decoder.JSONDecodeError"


def test_mirror_follows_settings(installed: None) -> None:
    _state.activate(Settings(mirror_logs_as_events=True))
    try:
        instrument_logging(fmt=None)
        assert _logs.is_mirroring()
        assert any(isinstance(h, SpanEventHandler) for h in logging.getLogger().handlers)
    finally:
        _state.deactivate()
        instrument_logging(fmt=None, mirror_events=False)
    assert not any(isinstance(h, SpanEventHandler) for h in logging.getLogger().handlers)


def test_mirror_message_bounded(
    installed: None, app_logger: tuple[logging.Logger, ListHandler], span_exporter: InMemorySpanExporter
) -> None:
    log, _ = app_logger
    _state.activate(Settings(max_attribute_length=10))
    instrument_logging(fmt=None, mirror_events=True)
    try:
        with trace.get_tracer("test").start_as_current_span("x"):
            log.warning("a" * 50)
    finally:
        _state.deactivate()
    (span,) = span_exporter.get_finished_spans()
    assert dict(span.events[0].attributes or {})[A.LOG_MESSAGE] == "a" * 9 + "…"


def test_level_argument(installed: None) -> None:
    root = logging.getLogger()
    old = root.level
    try:
        instrument_logging("warning", fmt=None)
        assert root.level == logging.WARNING
        with pytest.raises(ValueError):
            instrument_logging("loud", fmt=None)
    finally:
        root.setLevel(old)


def test_apply_settings_hook(span_exporter: InMemorySpanExporter) -> None:
    _logs.apply_settings(Settings(mirror_logs_as_events=True))
    try:
        assert _logs.is_mirroring()
        with trace.get_tracer("test").start_as_current_span("x"):
            logging.getLogger("tests.logs.hook").warning("mirrored")
    finally:
        _logs.apply_settings(Settings())
    assert not _logs.is_mirroring()
    (span,) = span_exporter.get_finished_spans()
    assert [dict(e.attributes or {})[A.LOG_MESSAGE] for e in span.events] == ["mirrored"]
