"""Helpers for the root-span tests: wait for roots to end (no sleeps), inspect span trees."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_bot
from otel_bot import _instrument, _roots


class RootWaiter(SpanProcessor):
    """Wakes waiters whenever a span ends (installed once on the global provider)."""

    def __init__(self) -> None:
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        for loop, event in list(self._waiters):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass

    async def wait(
        self, exporter: InMemorySpanExporter, predicate: Any, timeout: float = 5.0
    ) -> list[ReadableSpan]:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        self._waiters.append(entry)
        try:
            deadline = loop.time() + timeout
            while True:
                spans = list(exporter.get_finished_spans())
                if predicate(spans):
                    return spans
                remaining = deadline - loop.time()
                if remaining <= 0:
                    names = [s.name for s in spans]
                    raise AssertionError(f"timed out waiting for spans; have {names}")
                event.clear()
                try:
                    await asyncio.wait_for(event.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
        finally:
            self._waiters.remove(entry)


_WAITER: RootWaiter | None = None


def waiter() -> RootWaiter:
    global _WAITER
    if _WAITER is None:
        _WAITER = RootWaiter()
        provider = trace.get_tracer_provider()
        provider.add_span_processor(_WAITER)  # type: ignore[attr-defined]
    return _WAITER


def roots(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is None]


async def wait_roots(
    exporter: InMemorySpanExporter, count: int = 1, *, name: str | None = None, timeout: float = 5.0
) -> list[ReadableSpan]:
    """Wait until ``count`` root spans (named ``name``, if given) ended; return all spans."""

    def ready(spans: list[ReadableSpan]) -> bool:
        found = [s for s in roots(spans) if name is None or s.name == name]
        return len(found) >= count

    return await waiter().wait(exporter, ready, timeout)


def tree(spans: Sequence[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    """Every span of ``root``'s trace."""
    tid = root.context.trace_id
    return [s for s in spans if s.context.trace_id == tid]


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def assert_root(span: ReadableSpan, name: str) -> None:
    assert span.name == name
    assert span.parent is None
    assert span.kind is SpanKind.SERVER
    assert span.end_time is not None


def assert_contained(spans: Sequence[ReadableSpan], root: ReadableSpan) -> None:
    """Every span of the trace ended, starts after and ends before the root, and has a parent
    inside the trace (no orphans)."""
    members = tree(spans, root)
    ids = {s.context.span_id for s in members}
    for span in members:
        assert span.end_time is not None, span.name
        if span is root:
            continue
        assert span.parent is not None and span.parent.span_id in ids, f"orphan {span.name}"
        assert span.start_time >= root.start_time, span.name
        assert span.end_time <= root.end_time, f"{span.name} ended after its root"


@pytest.fixture
def instrumented() -> Iterator[Any]:
    """Instrument bots via ``instrumented(bot, **options)``; everything uninstrumented after."""
    bots: list[Any] = []

    def do(bot: Any, **options: Any) -> Any:
        otel_bot.instrument_bot(bot, **options)
        bots.append(bot)
        return bot

    yield do
    for bot in bots:
        otel_bot.uninstrument_bot(bot)
    assert not _instrument.is_patched() or _roots.FLAGS.all_clients or len(_roots.CLIENTS) > 0
