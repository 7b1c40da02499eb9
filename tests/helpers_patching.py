"""Shared by the DB, executor and loop-watch tests: instrument a patch table, open a unit root,
find spans."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind

from otel_bot import _patching, _state
from otel_bot._config import Settings


@contextmanager
def instrumenting(
    tracer_provider: TracerProvider, patches: Sequence[_patching.Patch], module: Any = None
) -> Iterator[Callable[..., Settings]]:
    """Yield ``instrument(**settings)``: what instrument_bot does for ``patches`` (and
    ``module.instrument(settings)`` when given); undone on exit. Calling it again starts from a
    clean slate, so re-instrumenting with other settings never stacks patches."""
    applied: list[list[_patching.Applied]] = []

    def undo_all() -> None:
        if module is not None:
            module.uninstrument()
        while applied:
            _patching.revert(applied.pop())
        _state.deactivate()

    def instrument(**options: Any) -> Settings:
        undo_all()
        settings = Settings(tracer_provider=tracer_provider, **options)
        _state.activate(settings)
        applied.append(_patching.apply(patches))
        if module is not None:
            module.instrument(settings)
        return settings

    try:
        yield instrument
    finally:
        undo_all()


@contextmanager
def unit_root(
    name: str = "root", before_end: Callable[[_state.WorkUnit], None] | None = None
) -> Iterator[_state.WorkUnit]:
    """A SERVER root span with an empty parent and its unit of work, as the root helpers make;
    ``before_end(unit)`` runs while the root span is still open."""
    tracer = _state.get_tracer()
    with tracer.start_as_current_span(name, context=otel_context.Context(), kind=SpanKind.SERVER) as span:
        unit = _state.WorkUnit(span=span, flow=name, kind="interaction")
        token = _state.current_unit.set(unit)
        try:
            yield unit
        finally:
            if before_end is not None:
                before_end(unit)
            _state.current_unit.reset(token)


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    """The spans called ``name``."""
    return [s for s in spans if s.name == name]


def only(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    """The one span called ``name`` (asserts there is exactly one)."""
    found = by_name(spans, name)
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    """Whether ``span`` is a direct child of ``parent`` in the same trace."""
    return (
        span.parent is not None
        and span.parent.span_id == parent.context.span_id
        and span.context.trace_id == parent.context.trace_id
    )
