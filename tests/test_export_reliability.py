"""The collector misbehaves; the bot does not notice. Clean shutdown loses no finished span.

Every test runs configure_tracing's real pipeline against the loopback OTLP receiver with its fault
switches: down from the start, dies and comes back, 2 s per export, gRPC/HTTP errors, a flood.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind, Tracer

from otel_bot import ExportStats, _setup, export_stats
from otel_bot._setup import configure_tracing, flush, flush_async
from otel_bot.testing import OTLPReceiver

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WARNING = re.compile(
    r"otel_bot: (\d+) span\(s\) dropped \((\d+) because the export queue was full, (\d+) because"
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("OTEL_") and key != "OTEL_BOT_STRICT":
            monkeypatch.delenv(key)
    yield
    _setup._reset_for_tests(timeout_s=10)


def _configure(receiver: OTLPReceiver, protocol: str = "grpc", **kwargs: object) -> TracerProvider:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    return configure_tracing(
        service_name="reliability",
        endpoint=endpoint,
        protocol=protocol,
        set_global=False,
        handle_sigterm=False,
        **kwargs,  # type: ignore[arg-type]
    )


def _spans(tracer: Tracer, n: int, prefix: str = "span") -> None:
    for i in range(n):
        with tracer.start_as_current_span(f"{prefix}-{i % 3}"):
            pass


def _warnings(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int, int]]:
    out = []
    for record in caplog.records:
        match = _WARNING.match(record.getMessage())
        if match and record.levelno == logging.WARNING and record.name == "otel_bot":
            out.append((int(match[1]), int(match[2]), int(match[3])))
    return out


async def _interaction(tracer: Tracer, i: int) -> float:
    """A bot-shaped unit of work: a SERVER root and 9 children, yielding to the loop in between."""
    start = time.perf_counter()
    with tracer.start_as_current_span("/queue", kind=SpanKind.SERVER) as root:
        root.set_attribute("n", i)
        for step in range(9):
            with tracer.start_as_current_span(f"step-{step}"):
                await asyncio.sleep(0)
    return time.perf_counter() - start


class _LagProbe:
    """How late the event loop wakes a 10 ms sleeper: the bot's responsiveness."""

    def __init__(self) -> None:
        self.max_lag = 0.0
        self.ticks = 0
        self._stop = False
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self.max_lag = max(self.max_lag, time.perf_counter() - before - 0.01)
            self.ticks += 1

    def __enter__(self) -> _LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            await self._task


# -- 1. collector down, dies, comes back, slow, errors ------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
async def test_collector_down_from_the_start(
    otlp_receiver: OTLPReceiver, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    otlp_receiver.down()
    provider = _configure(otlp_receiver, protocol, export_timeout_millis=500, schedule_delay_millis=50)
    tracer = provider.get_tracer("down")
    probe = _LagProbe()
    with probe, caplog.at_level(logging.WARNING, logger="otel_bot"):
        latencies = await asyncio.gather(*(_interaction(tracer, i) for i in range(20)))
        assert await asyncio.to_thread(flush, 10)
        await probe.stop()
    stats = export_stats()
    assert (stats.exported, stats.failed_export, stats.dropped_queue_full) == (0, 200, 0)
    assert stats.queue_size == 0
    assert max(latencies) < 1.0 and probe.max_lag < 0.5
    assert sum(w[2] for w in _warnings(caplog)) == 200  # every failure reported, in few warnings
    assert 1 <= len(_warnings(caplog)) <= 3
    assert otlp_receiver.export_requests == 0

    # It comes back: export resumes (what failed during the outage is gone, and counted).
    otlp_receiver.up()
    _spans(tracer, 7, "after")
    assert await asyncio.to_thread(flush, 10)
    received = await otlp_receiver.wait_for_spans_async(7, timeout=10)
    assert sorted({s.name for s in received}) == ["after-0", "after-1", "after-2"]
    assert export_stats().exported == 7 and export_stats().failed_export == 200


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_collector_dies_mid_run_and_comes_back(otlp_receiver: OTLPReceiver, protocol: str) -> None:
    # 3 s: room for the gRPC exporter's one reconnect retry (~1 s backoff) after the outage.
    provider = _configure(otlp_receiver, protocol, export_timeout_millis=3000, schedule_delay_millis=50)
    tracer = provider.get_tracer("mid-run")
    _spans(tracer, 5, "before")
    assert flush(10)
    assert len(otlp_receiver.wait_for_spans(5, timeout=10)) == 5

    otlp_receiver.down()
    _spans(tracer, 5, "during")
    assert flush(15)
    assert export_stats().failed_export == 5

    otlp_receiver.up()
    _spans(tracer, 5, "after")
    assert flush(15)
    spans = otlp_receiver.wait_for_spans(10, timeout=10)
    assert sorted(s.name.split("-")[0] for s in spans) == ["after"] * 5 + ["before"] * 5
    stats = export_stats()
    assert (stats.exported, stats.failed_export, stats.dropped_queue_full) == (10, 5, 0)


async def test_slow_collector_does_not_slow_the_bot(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.set_delay(2.0)
    provider = _configure(otlp_receiver, "grpc", schedule_delay_millis=20, max_export_batch_size=64)
    tracer = provider.get_tracer("slow")
    _spans(tracer, 1, "warmup")
    # An export is hanging in the collector for 2 s while the bot serves 300 interactions.
    await asyncio.to_thread(otlp_receiver.wait_for, lambda r: r.in_flight >= 1, 10, "an export in flight")
    probe = _LagProbe()
    with probe:
        start = time.perf_counter()
        latencies = await asyncio.gather(*(_interaction(tracer, i) for i in range(300)))
        served_in = time.perf_counter() - start
        await asyncio.sleep(0.3)  # keep probing while the exporter thread works through the backlog
        await probe.stop()
    assert otlp_receiver.in_flight >= 1  # the collector was still sitting on an export
    # If export ran on the loop, one export alone would stall it for 2 s; the bounds leave room
    # for a loaded 2-core machine and still tell the two apart.
    assert probe.max_lag < 1.0, probe.max_lag
    assert probe.ticks >= 10
    assert max(latencies) < 1.8 and served_in < 1.8, (max(latencies), served_in)
    otlp_receiver.set_delay(0)
    assert await asyncio.to_thread(flush, 30)
    assert len(await otlp_receiver.wait_for_spans_async(3001, timeout=30)) == 3001
    assert export_stats() == ExportStats(exported=3001, max_queue_size=_setup.DEFAULT_MAX_QUEUE_SIZE)


@pytest.mark.parametrize(
    ("protocol", "fault"),
    [
        ("grpc", {"grpc_code": grpc.StatusCode.UNAVAILABLE}),
        ("grpc", {"grpc_code": grpc.StatusCode.RESOURCE_EXHAUSTED}),
        ("http/protobuf", {"http_status": 500}),
        ("http/protobuf", {"http_status": 429, "retry_after": 1}),
    ],
    ids=["grpc-unavailable", "grpc-resource-exhausted", "http-500", "http-429-retry-after"],
)
def test_collector_errors_are_counted_failures(
    otlp_receiver: OTLPReceiver, protocol: str, fault: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    otlp_receiver.fail(**fault)  # type: ignore[arg-type]
    provider = _configure(otlp_receiver, protocol, export_timeout_millis=500, schedule_delay_millis=50)
    tracer = provider.get_tracer("errors")
    with caplog.at_level(logging.WARNING, logger="otel_bot"):
        _spans(tracer, 12)
        assert flush(10)
    stats = export_stats()
    assert (stats.exported, stats.failed_export, stats.dropped_queue_full) == (0, 12, 0)
    assert otlp_receiver.export_requests >= 1
    assert not any(r.accepted for r in otlp_receiver.requests) and otlp_receiver.spans == []
    assert sum(w[2] for w in _warnings(caplog)) == 12

    otlp_receiver.clear_faults()
    _spans(tracer, 4, "ok")
    assert flush(10)
    assert len(otlp_receiver.wait_for_spans(4, timeout=10)) == 4
    assert export_stats().exported == 4


# -- memory bounded, drops counted and reported -----------------------------------------------------


def _live_readable_spans() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is ReadableSpan)


def test_flood_with_collector_down_is_bounded_counted_and_reported(
    otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    otlp_receiver.down()
    # The exporter retries one batch for up to 10 s: the queue cannot drain during the flood.
    provider = _configure(
        otlp_receiver, "http/protobuf", max_queue_size=200, max_export_batch_size=50, schedule_delay_millis=20
    )
    tracer = provider.get_tracer("flood")
    baseline = _live_readable_spans()
    with caplog.at_level(logging.WARNING, logger="otel_bot"):
        _spans(tracer, 60)
        _spans(tracer, 20_000 - 60, "flood")
        stats = export_stats()
        retained = _live_readable_spans() - baseline
        flood_warnings = _warnings(caplog)
    assert stats.queue_size <= 200 and stats.max_queue_size == 200
    assert retained <= 200 + 50 + 10, retained  # the queue plus the batch being exported
    assert stats.dropped_queue_full >= 20_000 - 200 - 50
    assert len(flood_warnings) == 1  # rate-limited: not one per span
    assert flood_warnings[0][1] >= 1

    # The collector returns: what was queued goes out; every span is accounted for exactly once.
    otlp_receiver.up()
    with caplog.at_level(logging.WARNING, logger="otel_bot"):
        assert flush(20)
    final = export_stats()
    assert final.exported + final.failed_export + final.dropped_queue_full == 20_000
    assert final.queue_size == 0
    assert len(otlp_receiver.spans) == final.exported and final.exported >= 150
    # The flush reports what the rate limit held back: the warnings add up to every drop.
    reported = _warnings(caplog)
    assert sum(w[1] for w in reported) == final.dropped_queue_full
    assert sum(w[2] for w in reported) == final.failed_export


async def test_default_queue_holds_a_burst_of_1000_interactions(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.set_delay(30)  # the collector hangs for the whole burst
    provider = _configure(otlp_receiver, "grpc", export_timeout_millis=60_000)
    tracer = provider.get_tracer("burst")
    _spans(tracer, 1, "warmup")
    assert flush(0.2) is False  # the hung export does not hold us up
    await asyncio.to_thread(otlp_receiver.wait_for, lambda r: r.in_flight >= 1, 10, "an export in flight")
    await asyncio.gather(*(_interaction(tracer, i) for i in range(1000)))
    stats = export_stats()
    assert stats.dropped_queue_full == 0 and stats.failed_export == 0
    assert stats.queue_size == 10_000 and stats.max_queue_size == 16_384
    otlp_receiver.set_delay(0)
    assert await asyncio.to_thread(flush, 30)
    assert len(await otlp_receiver.wait_for_spans_async(10_001, timeout=30)) == 10_001
    assert export_stats().exported == 10_001


def test_export_stats_shape() -> None:
    stats = export_stats()  # nothing configured: zeros, never an error
    assert stats == ExportStats(0, 0, 0, 0, 0) and stats.dropped == 0
    assert ExportStats(exported=1, dropped_queue_full=2, failed_export=3).dropped == 5
    with pytest.raises(AttributeError):
        stats.exported = 5  # type: ignore[misc]
    assert export_stats(TracerProvider()) == ExportStats()  # a provider we did not build


# -- 2. clean shutdown -------------------------------------------------------------------------------


def test_flush_exports_pending_spans(otlp_receiver: OTLPReceiver) -> None:
    provider = _configure(otlp_receiver, "grpc", schedule_delay_millis=60_000)
    _spans(provider.get_tracer("flush"), 25)
    assert otlp_receiver.spans == [] and export_stats().queue_size == 25
    assert flush(10) is True
    assert len(otlp_receiver.wait_for_spans(25, timeout=10)) == 25
    assert export_stats().queue_size == 0 and export_stats().exported == 25


def test_flush_is_bounded_when_the_collector_hangs(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.set_delay(30)
    provider = _configure(otlp_receiver, "grpc", schedule_delay_millis=60_000, export_timeout_millis=60_000)
    _spans(provider.get_tracer("hang"), 3)
    start = time.monotonic()
    assert flush(0.5) is False
    assert time.monotonic() - start < 5  # loose: bounded by the timeout, not the 30 s hang
    otlp_receiver.set_delay(0)
    assert flush(10) is True
    assert len(otlp_receiver.wait_for_spans(3, timeout=10)) == 3


async def test_flush_async_keeps_the_loop_free_and_is_bounded(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.set_delay(30)  # the collector hangs
    provider = _configure(otlp_receiver, "grpc", schedule_delay_millis=60_000, export_timeout_millis=60_000)
    _spans(provider.get_tracer("close"), 4)
    probe = _LagProbe()
    with probe:
        start = time.perf_counter()
        assert await flush_async(0.5) is False
        elapsed = time.perf_counter() - start
        await probe.stop()
    assert 0.4 <= elapsed < 5 and probe.max_lag < 0.3 and probe.ticks >= 10
    otlp_receiver.set_delay(0)
    assert await flush_async(10) is True
    assert len(await otlp_receiver.wait_for_spans_async(4, timeout=10)) == 4


def test_flush_without_configure_tracing_flushes_the_given_provider() -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(memory, schedule_delay_millis=60_000))
    with provider.get_tracer("own").start_as_current_span("own-provider"):
        pass
    assert memory.get_finished_spans() == ()
    assert flush(5, tracer_provider=provider) is True
    assert [s.name for s in memory.get_finished_spans()] == ["own-provider"]
    provider.shutdown()


_SIGTERM_CHILD = """
    import signal, sys, time
    from opentelemetry import trace
    from otel_bot import configure_tracing

    {before}
    configure_tracing(
        service_name="sigterm-bot", endpoint=sys.argv[1], schedule_delay_millis=60_000,
        export_timeout_millis=30_000, shutdown_timeout_s={timeout},
    )
    tracer = trace.get_tracer("sigterm")
    for i in range(3):
        with tracer.start_as_current_span(f"finished-{{i}}"):
            pass
    print("ready", flush=True)
    for _ in range(600):
        time.sleep(0.1)
    print("not terminated", flush=True)
"""


def _start_child(receiver: OTLPReceiver, before: str = "", timeout: float = 5.0) -> subprocess.Popen[str]:
    code = textwrap.dedent(_SIGTERM_CHILD).format(before=before, timeout=timeout)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = REPO
    proc = subprocess.Popen(
        [sys.executable, "-c", code, receiver.grpc_endpoint],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"child did not start: {line!r} {proc.communicate()[1]}")
    return proc


def test_sigterm_flushes_then_terminates_as_by_default(otlp_receiver: OTLPReceiver) -> None:
    proc = _start_child(otlp_receiver)
    assert otlp_receiver.spans == []  # still queued in the child
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, err  # the default action still happens
    assert "not terminated" not in out
    spans = otlp_receiver.wait_for_spans(3, timeout=10)
    assert sorted(s.name for s in spans) == ["finished-0", "finished-1", "finished-2"]
    assert {s.resource["service.name"] for s in spans} == {"sigterm-bot"}


def test_sigterm_chains_to_the_previous_handler(otlp_receiver: OTLPReceiver) -> None:
    before = (
        "def previous(signum, frame):\n"
        "    print('previous handler', flush=True)\n"
        "    sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, previous)"
    )
    proc = _start_child(otlp_receiver, before=before)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, err
    assert "previous handler" in out
    assert len(otlp_receiver.wait_for_spans(3, timeout=10)) == 3


def test_sigterm_ignored_stays_ignored(otlp_receiver: OTLPReceiver) -> None:
    proc = _start_child(otlp_receiver, before="signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    try:
        proc.send_signal(signal.SIGTERM)
        assert len(otlp_receiver.wait_for_spans(3, timeout=15)) == 3  # flushed anyway
        assert proc.poll() is None  # and still running, as SIG_IGN wants
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_sigterm_flush_is_bounded_when_the_collector_hangs(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.set_delay(60)
    proc = _start_child(otlp_receiver, timeout=1.0)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode == -signal.SIGTERM
    assert elapsed < 8, elapsed  # loose: bounded by shutdown_timeout_s=1, not the 30 s export timeout
    otlp_receiver.set_delay(0)


def test_interpreter_exit_flushes(otlp_receiver: OTLPReceiver) -> None:
    code = """
        import sys
        from opentelemetry import trace
        from otel_bot import configure_tracing
        configure_tracing(endpoint=sys.argv[1], schedule_delay_millis=60_000)
        with trace.get_tracer("exit").start_as_current_span("at-exit"):
            pass
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = REPO
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), otlp_receiver.grpc_endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert [s.name for s in otlp_receiver.wait_for_spans(1, timeout=10)] == ["at-exit"]
