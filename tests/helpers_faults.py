"""A tracer provider that fails the way a broken sampler or span processor does (audit finding 11)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from otel_bot import _guard

FAULTS = ("sampler", "processor")


class StartFault(RuntimeError):
    """What the broken sampler / processor raises."""


class FailingSampler(Sampler):
    """``should_sample`` raises for the span names ``fails`` picks; others are sampled."""

    def __init__(self, fails: Callable[[str], bool]) -> None:
        self.fails = fails

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if self.fails(name):
            raise StartFault(f"sampler failed for {name}")
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "FailingSampler"


class FailingProcessor(SpanProcessor):
    """``on_start`` raises for the span names ``fails`` picks."""

    def __init__(self, fails: Callable[[str], bool]) -> None:
        self.fails = fails

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.fails(span.name):
            raise StartFault(f"processor failed for {span.name}")

    def on_end(self, span: ReadableSpan) -> None:
        pass


def failing_provider(
    fault: str, exporter: SpanExporter, fails: Callable[[str], bool] = lambda name: True
) -> TracerProvider:
    """A provider whose sampler (``fault="sampler"``) or first processor (``"processor"``) raises
    when a span ``fails`` picks starts; finished spans go to ``exporter``."""
    if fault == "sampler":
        provider = TracerProvider(sampler=FailingSampler(fails))
    else:
        provider = TracerProvider()
        provider.add_span_processor(FailingProcessor(fails))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@contextmanager
def lenient() -> Iterator[None]:
    """Strict mode off (as in production): the guard logs and swallows."""
    _guard.set_strict(False)
    try:
        yield
    finally:
        _guard.set_strict(None)
