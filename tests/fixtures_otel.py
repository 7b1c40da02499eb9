"""Tracing fixtures: a global provider installed once, whose exporter is fresh per test."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_bot.testing.otlp import OTLPReceiver


class _SwitchExporter(SpanExporter):
    """Forwards to whichever in-memory exporter the running test owns."""

    def __init__(self) -> None:
        self.target: InMemorySpanExporter | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.target is not None:
            return self.target.export(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


_SWITCH = _SwitchExporter()
_GLOBAL_PROVIDER = TracerProvider()
_GLOBAL_PROVIDER.add_span_processor(SimpleSpanProcessor(_SWITCH))
trace.set_tracer_provider(_GLOBAL_PROVIDER)


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """Every span finished during the test, through the global provider."""
    exporter = InMemorySpanExporter()
    _SWITCH.target = exporter
    try:
        yield exporter
    finally:
        _SWITCH.target = None
        exporter.clear()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> TracerProvider:
    """The global SDK provider (spans land in ``span_exporter``)."""
    return _GLOBAL_PROVIDER


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A real loopback OTLP receiver (gRPC + HTTP), started for the test and stopped after."""
    with OTLPReceiver() as receiver:
        yield receiver
