"""Executor offloads: spans, context into threads and processes, queue wait, errors, uninstrument."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_bot import _attributes as A
from otel_bot import _db, _executor, _guard, _patching, _state
from otel_bot._config import Settings
from tests.helpers_faults import FAULTS, failing_provider, lenient
from tests.helpers_patching import child_of, instrumenting, only, unit_root

THREAD_KEYS = {
    A.BOT_EXECUTOR_KIND,
    A.BOT_EXECUTOR_CLASS,
    A.CODE_FUNCTION_NAME,
    A.BOT_EXECUTOR_QUEUE_WAIT_MS,
    A.BOT_EXECUTOR_RUN_MS,
    A.BOT_EXECUTOR_WORKER,
    A.THREAD_NAME,
    A.THREAD_ID,
}


class SqliteStore:
    """A bot's own database layer over sqlite3 (each call its own in-memory connection)."""

    def fetch_all(self, sql: str) -> list[Any]:
        con = sqlite3.connect(":memory:")
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


@pytest.fixture
def instrument_executor(tracer_provider: TracerProvider) -> Iterator[Callable[..., Settings]]:
    with instrumenting(tracer_provider, _executor.PATCHES) as instrument:
        yield instrument





def compute_mmr(rows: list[int], bonus: int = 0) -> int:
    """Work a bot offloads: makes its own span and sees the unit of work."""
    with trace.get_tracer("worker").start_as_current_span("compute"):
        unit = _state.get_unit()
        assert unit is not None and unit.flow == "root"
        return sum(rows) + bonus


class Boom(Exception):
    pass


# --- threads ---------------------------------------------------------------------------------------


async def test_thread_pool_span_and_worker_spans_nest(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor()
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="mmr") as pool:
        with unit_root():
            assert await loop.run_in_executor(pool, compute_mmr, [1, 2, 3]) == 6
    spans = span_exporter.get_finished_spans()
    root, offload, inner = only(spans, "root"), only(spans, "executor compute_mmr"), only(spans, "compute")
    assert offload.kind is SpanKind.INTERNAL and child_of(offload, root)
    assert child_of(inner, offload)
    attrs = dict(offload.attributes or {})
    assert set(attrs) == THREAD_KEYS
    assert attrs[A.BOT_EXECUTOR_KIND] == "thread"
    assert attrs[A.BOT_EXECUTOR_CLASS] == "ThreadPoolExecutor"
    assert attrs[A.CODE_FUNCTION_NAME] == "tests.test_executor.compute_mmr"
    assert isinstance(attrs[A.BOT_EXECUTOR_QUEUE_WAIT_MS], float)
    assert isinstance(attrs[A.BOT_EXECUTOR_RUN_MS], float)
    assert str(attrs[A.THREAD_NAME]).startswith("mmr")
    assert attrs[A.BOT_EXECUTOR_WORKER] == attrs[A.THREAD_NAME]
    assert isinstance(attrs[A.THREAD_ID], int) and attrs[A.THREAD_ID] != threading.get_ident()
    assert offload.status.status_code is StatusCode.UNSET


async def test_default_executor_to_thread_partial_and_lambda(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor()
    loop = asyncio.get_running_loop()
    with unit_root():
        assert await loop.run_in_executor(None, functools.partial(compute_mmr, [1], bonus=2)) == 3
        assert await asyncio.to_thread(compute_mmr, [4], bonus=1) == 5
        assert await loop.run_in_executor(None, lambda: 7) == 7
    spans = span_exporter.get_finished_spans()
    root = only(spans, "root")
    offloads = [s for s in spans if s.name.startswith("executor ")]
    assert [s.name for s in offloads] == ["executor compute_mmr", "executor compute_mmr", "executor <lambda>"]
    computes = [s for s in spans if s.name == "compute"]
    assert len(computes) == 2
    for offload, compute in zip(offloads[:2], computes, strict=True):
        assert child_of(offload, root)
        assert child_of(compute, offload)  # to_thread's own context copy nests too
    for offload in offloads:
        assert offload.attributes[A.BOT_EXECUTOR_KIND] == "thread"
        assert offload.attributes[A.BOT_EXECUTOR_CLASS] == "ThreadPoolExecutor"
        assert str(offload.attributes[A.THREAD_NAME]).startswith("asyncio")
    assert offloads[2].attributes[A.CODE_FUNCTION_NAME].endswith("<lambda>")


async def test_worker_sqlite_queries_nest_under_the_executor_span(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor()

    store = _db.trace_db_adapter(SqliteStore(), system="sqlite")

    def job() -> list[Any]:
        return store.fetch_all("SELECT 1")

    with unit_root() as unit:
        assert await asyncio.get_running_loop().run_in_executor(None, job) == [(1,)]
    spans = span_exporter.get_finished_spans()
    offload, query = only(spans, "executor job"), only(spans, "SELECT")
    assert child_of(query, offload)
    assert unit.query_counts["SELECT ?"] == 1  # the worker counted into the caller's unit (sanitised key)


async def test_queue_wait_with_one_worker_and_three_tasks(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor()
    loop = asyncio.get_running_loop()

    def slow(i: int) -> int:
        time.sleep(0.1)
        return i

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        with unit_root():
            assert await asyncio.gather(*(loop.run_in_executor(pool, slow, i) for i in range(3))) == [0, 1, 2]
    spans = sorted(
        (s for s in span_exporter.get_finished_spans() if s.name == "executor slow"), key=lambda s: s.start_time or 0
    )
    waits = [float(s.attributes[A.BOT_EXECUTOR_QUEUE_WAIT_MS]) for s in spans]
    runs = [float(s.attributes[A.BOT_EXECUTOR_RUN_MS]) for s in spans]
    assert len(spans) == 3
    assert waits[0] < 50
    assert 150 <= waits[2] <= 2000  # waited for the two before it
    assert waits[0] < waits[1] < waits[2]
    assert all(90 <= r <= 2000 for r in runs)


async def test_exception_propagates_unchanged_and_marks_error(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor()
    error = Boom("no mmr")

    def fail() -> None:
        raise error

    with unit_root():
        with pytest.raises(Boom) as caught:
            await asyncio.get_running_loop().run_in_executor(None, fail)
    assert caught.value is error
    span = only(span_exporter.get_finished_spans(), "executor fail")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "tests.test_executor.Boom"  # module-qualified (_privacy.error_type)
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes[A.EXCEPTION_TYPE].endswith("Boom")
    assert event.attributes[A.EXCEPTION_MESSAGE] == "no mmr"


async def test_cancelled_while_queued_is_not_an_error(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor()
    loop = asyncio.get_running_loop()
    release = threading.Event()

    def block() -> None:
        release.wait(5)

    def never() -> None:
        raise AssertionError("cancelled work must not run")

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        with unit_root():
            first = loop.run_in_executor(pool, block)
            queued = loop.run_in_executor(pool, never)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            # one loop turn: the cancellation reaches the concurrent future (its callbacks were
            # scheduled by cancel()) before the worker is free to pick the call up
            await asyncio.sleep(0)
            release.set()
            await first
    spans = span_exporter.get_finished_spans()
    span = only(spans, "executor never")
    assert span.status.status_code is StatusCode.UNSET
    assert A.BOT_EXECUTOR_RUN_MS not in (span.attributes or {})
    assert not span.events


async def test_no_span_outside_a_trace_or_when_suppressed(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor()
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, compute_mmr_unchecked, [2]) == 2
    with unit_root():
        token = otel_context.attach(otel_context.set_value(_suppress_key(), True))
        try:
            assert await loop.run_in_executor(None, compute_mmr_unchecked, [3]) == 3
        finally:
            otel_context.detach(token)
    assert [s.name for s in span_exporter.get_finished_spans()] == ["root"]


def compute_mmr_unchecked(rows: list[int]) -> int:
    return sum(rows)


def _suppress_key() -> Any:
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

    return _SUPPRESS_INSTRUMENTATION_KEY


async def test_trace_executor_off(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor(trace_executor=False)
    with unit_root():
        assert await asyncio.to_thread(compute_mmr_unchecked, [1]) == 1
    assert [s.name for s in span_exporter.get_finished_spans()] == ["root"]


async def test_uninstrument_restores_run_in_executor(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    original = vars(asyncio.BaseEventLoop)["run_in_executor"]
    _state.activate(Settings(tracer_provider=tracer_provider))
    applied = _patching.apply(_executor.PATCHES)
    assert vars(asyncio.BaseEventLoop)["run_in_executor"] is not original
    _patching.revert(applied)
    _state.deactivate()
    assert vars(asyncio.BaseEventLoop)["run_in_executor"] is original
    with unit_root():
        # behaviour as before: the result, and (without us) no context in the worker
        seen = await asyncio.get_running_loop().run_in_executor(None, trace.get_current_span)
    assert not seen.get_span_context().is_valid
    assert [s.name for s in span_exporter.get_finished_spans()] == ["root"]


# --- processes --------------------------------------------------------------------------------------


class FileSpanExporter(SpanExporter):
    """Appends one JSON line per span (what the parent test reads back)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a", encoding="utf-8") as fh:
            for span in spans:
                fh.write(json.dumps({
                    "name": span.name,
                    "trace_id": span.context.trace_id,
                    "span_id": span.context.span_id,
                    "parent_id": span.parent.span_id if span.parent else None,
                    "pid": os.getpid(),
                }) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def child_init(path: str) -> None:
    """Process-pool initializer: the child configures tracing as a user's worker would."""
    from otel_bot import configure_tracing

    configure_tracing("child-worker", exporter=FileSpanExporter(path), handle_sigterm=False)


def child_work(x: int) -> int:
    with trace.get_tracer("child").start_as_current_span("child compute"):
        result = x * 2
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    return result


def child_fail(message: str) -> None:
    raise ValueError(message)


@pytest.fixture(scope="module")
def process_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[concurrent.futures.ProcessPoolExecutor, Path]]:
    path = tmp_path_factory.mktemp("child") / "spans.jsonl"
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=child_init, initargs=(str(path),)
    )
    pool.submit(int, 0).result(timeout=60)  # start the worker before any timing test
    try:
        yield pool, path
    finally:
        pool.shutdown(wait=True)


async def test_process_pool_continues_the_trace_in_the_child(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter,
    process_pool: tuple[concurrent.futures.ProcessPoolExecutor, Path],
) -> None:
    pool, path = process_pool
    instrument_executor()
    loop = asyncio.get_running_loop()
    with unit_root():
        assert await loop.run_in_executor(pool, child_work, 21) == 42
    spans = span_exporter.get_finished_spans()
    root, offload = only(spans, "root"), only(spans, "executor child_work")
    assert child_of(offload, root)
    attrs = dict(offload.attributes or {})
    assert set(attrs) == {
        A.BOT_EXECUTOR_KIND, A.BOT_EXECUTOR_CLASS, A.CODE_FUNCTION_NAME, A.BOT_EXECUTOR_QUEUE_WAIT_MS,
        A.BOT_EXECUTOR_RUN_MS, A.BOT_EXECUTOR_WORKER, A.PROCESS_PID,
    }
    assert attrs[A.BOT_EXECUTOR_KIND] == "process"
    assert attrs[A.BOT_EXECUTOR_CLASS] == "ProcessPoolExecutor"
    assert isinstance(attrs[A.PROCESS_PID], int) and attrs[A.PROCESS_PID] != os.getpid()
    assert attrs[A.BOT_EXECUTOR_WORKER] == str(attrs[A.PROCESS_PID])
    assert isinstance(attrs[A.BOT_EXECUTOR_QUEUE_WAIT_MS], float)
    assert isinstance(attrs[A.BOT_EXECUTOR_RUN_MS], float)
    child = [json.loads(line) for line in path.read_text().splitlines()]
    (child_span,) = [c for c in child if c["name"] == "child compute"]
    assert child_span["trace_id"] == offload.context.trace_id
    assert child_span["parent_id"] == offload.context.span_id
    assert child_span["pid"] == attrs[A.PROCESS_PID]


async def test_process_pool_exception_reaches_the_caller(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter,
    process_pool: tuple[concurrent.futures.ProcessPoolExecutor, Path],
) -> None:
    pool, _ = process_pool
    instrument_executor()
    with unit_root():
        with pytest.raises(ValueError, match=r"^bad input$") as caught:
            await asyncio.get_running_loop().run_in_executor(pool, child_fail, "bad input")
    assert type(caught.value) is ValueError and caught.value.args == ("bad input",)
    span = only(span_exporter.get_finished_spans(), "executor child_fail")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "ValueError"


async def test_process_pool_queue_wait_and_picklability(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter,
    process_pool: tuple[concurrent.futures.ProcessPoolExecutor, Path],
) -> None:
    pool, _ = process_pool
    instrument_executor()
    loop = asyncio.get_running_loop()
    with unit_root():
        results = await asyncio.gather(
            loop.run_in_executor(pool, time.sleep, 0.1),
            loop.run_in_executor(pool, functools.partial(child_work, 2)),
        )
        with pytest.raises(Exception) as caught:  # an unpicklable callable fails as it would without us
            await loop.run_in_executor(pool, lambda: 1)
    assert results == [None, 4]
    assert "pickle" in type(caught.value).__name__.lower() or "pickle" in str(caught.value).lower()
    spans = span_exporter.get_finished_spans()
    second = only(spans, "executor child_work")
    assert second.attributes[A.BOT_EXECUTOR_QUEUE_WAIT_MS] >= 50  # waited for the sleep before it


# --- end to end: instrument_bot + the offline Discord ---------------------------------------------------

from tests.helpers_roots import instrumented, wait_roots  # noqa: E402

__all__ = ["instrumented"]


async def test_e2e_executor_spans_nest_under_the_interaction(
    offline_discord: Any, discord_bot: Any, span_exporter: InMemorySpanExporter, instrumented: Any,
) -> None:
    import discord

    instrumented(discord_bot)

    store = _db.trace_db_adapter(SqliteStore(), system="sqlite")

    def load_ladder() -> int:
        return len(store.fetch_all("SELECT 1 UNION ALL SELECT 2"))

    @discord_bot.tree.command(name="ladder", description="Ladder")
    async def ladder(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        count = await asyncio.get_running_loop().run_in_executor(None, load_ladder)
        total = await asyncio.to_thread(sum, [count, 1])
        await interaction.followup.send(f"{total}")

    span_exporter.clear()
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("ladder"))
    spans = await wait_roots(span_exporter, 1, name="/ladder")
    root = only(spans, "/ladder")
    offload = only(spans, "executor load_ladder")
    assert child_of(offload, root)
    assert child_of(only(spans, "SELECT"), offload)
    assert child_of(only(spans, "executor sum"), root)


async def test_debug_mode_still_rejects_coroutine_functions(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor()
    loop = asyncio.get_running_loop()

    async def not_for_threads() -> None:
        pass

    loop.set_debug(True)
    try:
        with unit_root():
            with pytest.raises(TypeError, match="coroutines cannot be used"):
                loop.run_in_executor(None, not_for_threads)
    finally:
        loop.set_debug(False)
    assert [s.name for s in span_exporter.get_finished_spans()] == ["root"]


async def test_exception_text_is_redacted_in_the_span_only(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_executor()
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GcAnRy.privacyCanaryBotToken_0123456789abcdefXYZ"

    def leak() -> None:
        raise RuntimeError(f"login failed with {token}")

    with unit_root():
        with pytest.raises(RuntimeError) as caught:
            await asyncio.get_running_loop().run_in_executor(None, leak)
    assert token in str(caught.value)  # the caller's exception is untouched
    span = only(span_exporter.get_finished_spans(), "executor leak")
    (event,) = [e for e in span.events if e.name == "exception"]
    assert token not in str(event.attributes[A.EXCEPTION_MESSAGE])
    assert token not in str(event.attributes[A.EXCEPTION_STACKTRACE])
    assert token not in str(span.status.description)


# --- a failing sampler / span processor never reaches the offload (audit finding 11) -------------


@pytest.mark.parametrize("fault", FAULTS)
async def test_failing_span_start_never_reaches_the_offload(
    fault: str, span_exporter: InMemorySpanExporter
) -> None:
    bad_exporter = InMemorySpanExporter()
    provider = failing_provider(fault, bad_exporter, fails=lambda name: name.startswith("executor "))
    _state.activate(Settings(tracer_provider=provider))
    applied = _patching.apply(_executor.PATCHES)
    loop = asyncio.get_running_loop()
    before = _guard.error_counts().get("executor.start", 0)
    try:
        with lenient(), trace.get_tracer("test").start_as_current_span("root", kind=SpanKind.SERVER) as root:
            assert await loop.run_in_executor(None, sum, [1, 2, 3]) == 6
            assert await asyncio.to_thread(str.upper, "ok") == "OK"
            with pytest.raises(Boom) as caught:
                await loop.run_in_executor(None, functools.partial(_raise, Boom("mine")))
            assert str(caught.value) == "mine"
            assert trace.get_current_span() is root
    finally:
        _patching.revert(applied)
        _state.deactivate()
    assert bad_exporter.get_finished_spans() == ()
    assert [s.name for s in span_exporter.get_finished_spans()] == ["root"]
    assert _guard.error_counts().get("executor.start", 0) - before == 3


def _raise(exc: BaseException) -> None:
    raise exc


async def test_failing_worker_bookkeeping_never_reaches_the_offload(
    instrument_executor: Callable[..., Settings], span_exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instrument_executor()

    def broken_begin(self: Any, queue_wait_ms: float | None = None) -> None:
        raise RuntimeError("bookkeeping bug")

    monkeypatch.setattr(_executor._Call, "begin", broken_begin)
    loop = asyncio.get_running_loop()
    with lenient(), unit_root():
        assert await loop.run_in_executor(None, sum, [4, 5]) == 9
    spans = span_exporter.get_finished_spans()
    offload = only(spans, "executor sum")
    assert child_of(offload, only(spans, "root"))
    assert offload.status.status_code is StatusCode.UNSET
