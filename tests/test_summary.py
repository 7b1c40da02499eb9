"""The console waterfall: golden output (emoji and ASCII), ordering, grace, eviction, levels."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otel_bot import _attributes as A
from otel_bot import _guard, _privacy, _state
from otel_bot._config import Settings, SeverityBounds
from otel_bot._flow import FlowTracker, checkpoint
from otel_bot._summary import LOGGER_NAME, WaterfallProcessor, format_trace, wants_ascii
from tests.helpers_roots import instrumented  # noqa: F401  (fixture)

TRACE = 0x0AF7651916CD43DD8448EB211C80319C
BASE = 1_700_000_000_000_000_000
MS = 1_000_000


def ctx(span_id: int, trace_id: int = TRACE) -> SpanContext:
    return SpanContext(trace_id, span_id, False, TraceFlags(TraceFlags.SAMPLED))


def span(
    name: str,
    span_id: int,
    parent: int | None,
    start_ms: float,
    end_ms: float,
    attrs: dict[str, Any] | None = None,
    status: Status | None = None,
    events: Sequence[Event] = (),
    trace_id: int = TRACE,
) -> ReadableSpan:
    return ReadableSpan(
        name,
        ctx(span_id, trace_id),
        ctx(parent, trace_id) if parent else None,
        attributes=attrs or {},
        events=events,
        kind=SpanKind.INTERNAL if parent else SpanKind.SERVER,
        status=status or Status(StatusCode.UNSET),
        start_time=BASE + int(start_ms * MS),
        end_time=BASE + int(end_ms * MS),
    )


def queue_trace() -> list[ReadableSpan]:
    """A slow /queue interaction, children listed in the order they end."""
    return [
        span("guard_checks", 2, 1, 1, 13, {A.BOT_CHECKPOINT: True}),
        span("SELECT players", 4, 3, 20, 320, {A.DB_SYSTEM_NAME: "postgresql"}),
        span("compute_mmr", 5, 3, 400, 3200, {A.BOT_EXECUTOR_KIND: "thread"}),
        span(
            "queue_command",
            3,
            1,
            15,
            3400,
            {A.BOT_FLOW_NAME: "queue_command"},
            events=[Event("view_built", {A.BOT_CHECKPOINT: True}, timestamp=BASE + 3000 * MS)],
        ),
        span(
            "POST /interactions/{interaction_id}/{interaction_token}/callback",
            6,
            1,
            3300,
            3390,
            {A.HTTP_REQUEST_METHOD: "POST", A.ERROR_TYPE: "discord.errors.NotFound"},
            status=Status(StatusCode.ERROR, "404"),
        ),
        span(
            "/queue",
            1,
            None,
            0,
            3456,
            {
                A.BOT_FLOW_SEVERITY: "CRITICAL",
                A.BOT_FLOW_THRESHOLD_MS: 500.0,
                A.BOT_FLOW_THRESHOLD_EXCEEDED: True,
                A.DISCORD_INTERACTION_ACK_MS: 120.0,
            },
        ),
    ]


GOLDEN_EMOJI = """\
🔴 /queue  3456.0 ms  CRITICAL  ok  ack 120.0 ms  trace 0af7651916cd43dd8448eb211c80319c
├─ 📍 guard_checks                                12.0 ms     +1.0 ms  |█                   |
├─ 📍 queue_command                             3385.0 ms    +15.0 ms  |████████████████████|
│  ├─ 💾 SELECT players                          300.0 ms    +20.0 ms  |██                  |
│  ├─ 🧵 compute_mmr                            2800.0 ms   +400.0 ms  |  █████████████████ |
│  └─ 🔸 view_built                                        +3000.0 ms  |                 ▲  |
└─ 🌐 POST /interactions/{interaction_id}/{in…    90.0 ms  +3300.0 ms  |                   █|  ❌ discord.errors.NotFound
   🐢 slowest: compute_mmr 2800.0 ms (81% of 3456.0 ms)
   🚨 /queue took 3456 ms (threshold 500 ms, 591% over)"""

GOLDEN_ASCII = """\
[!] /queue  3456.0 ms  CRITICAL  ok  ack 120.0 ms  trace 0af7651916cd43dd8448eb211c80319c
|- [cp]   guard_checks                                12.0 ms     +1.0 ms  |#                   |
|- [cp]   queue_command                             3385.0 ms    +15.0 ms  |####################|
|  |- [db]   SELECT players                          300.0 ms    +20.0 ms  |##                  |
|  |- [exec] compute_mmr                            2800.0 ms   +400.0 ms  |  ################# |
|  `- *      view_built                                        +3000.0 ms  |                 ^  |
`- [rest] POST /interactions/{interaction_id}/{...    90.0 ms  +3300.0 ms  |                   #|  [ERROR] discord.errors.NotFound
   ~ slowest: compute_mmr 2800.0 ms (81% of 3456.0 ms)
   ! /queue took 3456 ms (threshold 500 ms, 591% over)"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, ListHandler]]:
    log = logging.getLogger("tests.waterfall.capture")
    handler = ListHandler()
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield log, handler
    finally:
        log.removeHandler(handler)


def make(logger: logging.Logger, clock: FakeClock | None = None, **kw: Any) -> WaterfallProcessor:
    return WaterfallProcessor(logger=logger, clock=clock or FakeClock(), ascii=kw.pop("ascii", False), timer=False, **kw)


# --- golden output ---------------------------------------------------------------------------------


def test_golden_emoji_through_the_stream() -> None:
    stream = io.StringIO()
    proc = WaterfallProcessor(stream=stream, ascii=False, clock=FakeClock(), timer=False, logger="tests.wf.emoji")
    try:
        for s in queue_trace():
            proc.on_end(s)
        proc.force_flush()
        assert stream.getvalue() == GOLDEN_EMOJI + "\n"
    finally:
        proc.shutdown()
    assert proc.printed == 1


def test_golden_ascii_through_the_stream() -> None:
    stream = io.StringIO()
    proc = WaterfallProcessor(stream=stream, ascii=True, clock=FakeClock(), timer=False, logger="tests.wf.ascii")
    try:
        for s in queue_trace():
            proc.on_end(s)
        proc.force_flush()
        assert stream.getvalue() == GOLDEN_ASCII + "\n"
    finally:
        proc.shutdown()


def test_format_trace_is_order_independent() -> None:
    spans = queue_trace()
    text, level = format_trace(list(reversed(spans)))
    assert text == GOLDEN_EMOJI
    assert level == logging.ERROR
    assert format_trace(spans, ascii=True)[0] == GOLDEN_ASCII


def test_fast_trace_header_and_level(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    proc = make(log)
    proc.on_end(span("lookup", 2, 1, 1, 3, {A.BOT_CHECKPOINT: True}))
    proc.on_end(span("/ping", 1, None, 0, 5, {A.BOT_FLOW_SEVERITY: "FAST", A.DISCORD_COMMAND_OUTCOME: "success"}))
    (record,) = handler.records
    assert record.levelno == logging.INFO
    assert record.name == "tests.waterfall.capture"
    assert record.getMessage() == (
        "⚡ /ping  5.0 ms  FAST  ok  outcome success  trace 0af7651916cd43dd8448eb211c80319c\n"
        "└─ 📍 lookup  2.0 ms  +1.0 ms  |    ████████        |\n"
        "   🐢 slowest: lookup 2.0 ms (40% of 5.0 ms)"
    )


@pytest.mark.parametrize(
    ("severity", "attrs", "status", "level"),
    [
        ("OK", {}, None, logging.INFO),
        ("SLOW", {}, None, logging.WARNING),
        ("CRITICAL", {}, None, logging.ERROR),
        ("OK", {A.BOT_FLOW_THRESHOLD_MS: 100.0, A.BOT_FLOW_THRESHOLD_EXCEEDED: True}, None, logging.WARNING),
        ("FAST", {}, Status(StatusCode.ERROR, "ValueError: x"), logging.WARNING),
    ],
)
def test_level_follows_severity(
    captured: tuple[logging.Logger, ListHandler],
    severity: str,
    attrs: dict[str, Any],
    status: Status | None,
    level: int,
) -> None:
    log, handler = captured
    proc = make(log)
    proc.on_end(span("/x", 1, None, 0, 200, {A.BOT_FLOW_SEVERITY: severity, **attrs}, status=status))
    (record,) = handler.records
    assert record.levelno == level
    first = record.getMessage().splitlines()[0]
    assert first.split("  ")[2] == severity
    if status is not None:
        assert "error: ValueError: x" in first


def test_severity_computed_when_root_has_none(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    proc = make(log, ascii=True)
    proc.on_end(span("on_message", 1, None, 0, 1500))
    (record,) = handler.records
    assert record.getMessage() == "[*] on_message  1500.0 ms  SLOW  ok  trace 0af7651916cd43dd8448eb211c80319c"
    assert record.levelno == logging.WARNING


# --- ordering, grace, eviction ----------------------------------------------------------------------


class _Started:
    """What on_start needs from a span."""

    def __init__(self, span_id: int, trace_id: int = TRACE) -> None:
        self._ctx = ctx(span_id, trace_id)

    def get_span_context(self) -> SpanContext:
        return self._ctx


def test_child_ending_after_root_waits_for_it(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    proc = make(log)
    proc.on_start(_Started(1))  # type: ignore[arg-type]
    proc.on_start(_Started(2))  # type: ignore[arg-type]
    proc.on_end(span("/queue", 1, None, 0, 100))
    assert handler.records == []  # the child is still running
    proc.on_end(span("followup", 2, 1, 50, 150, {A.HTTP_REQUEST_METHOD: "POST"}))
    (record,) = handler.records
    lines = record.getMessage().splitlines()
    assert lines[1] == "└─ 🌐 followup  100.0 ms  +50.0 ms  |      ██████████████|"  # scaled to 150 ms


def test_grace_period_then_late_child_dropped(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    clock = FakeClock()
    proc = make(log, clock, grace_s=0.5)
    proc.on_start(_Started(2))  # type: ignore[arg-type]
    proc.on_end(span("/queue", 1, None, 0, 100))
    assert proc.sweep() == 0 and handler.records == []
    clock.now += 0.6
    assert proc.sweep() == 1
    (record,) = handler.records
    assert record.getMessage().splitlines() == [
        "🟢 /queue  100.0 ms  OK  ok  trace 0af7651916cd43dd8448eb211c80319c"
    ]
    proc.on_end(span("late", 2, 1, 10, 200))  # its trace already printed: dropped
    proc.force_flush()
    assert len(handler.records) == 1


def test_orphans_flushed_on_shutdown(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    proc = make(log, ascii=True)
    proc.on_end(span("SELECT a", 4, 3, 10, 30, {A.DB_SYSTEM_NAME: "postgresql"}))
    proc.on_end(span("child of a", 5, 4, 12, 20))
    assert handler.records == []
    proc.shutdown()
    (record,) = handler.records
    assert record.getMessage() == (
        "[?] (root not seen)  20.0 ms  trace 0af7651916cd43dd8448eb211c80319c\n"
        "`- [db]   SELECT a       20.0 ms  +0.0 ms  |####################|\n"
        "   `- [-]    child of a   8.0 ms  +2.0 ms  |  ########          |\n"
        "   ~ slowest: SELECT a 12.0 ms self (60% of 20.0 ms)"
    )
    proc.on_end(span("/after", 9, None, 0, 1, trace_id=TRACE + 1))  # after shutdown: ignored
    assert len(handler.records) == 1


def test_orphans_evicted_after_timeout_and_bounded(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    clock = FakeClock()
    proc = make(log, clock, orphan_timeout_s=10, max_traces=3)
    for i in range(5):
        proc.on_end(span("orphan", 2, 1, 0, 1, trace_id=TRACE + i))
    assert len(proc._traces) == 3 and proc.evicted == 2
    clock.now += 11
    proc.sweep()
    assert proc._traces == {} and proc.evicted == 5
    proc.force_flush()
    assert handler.records == []


def test_max_spans_keeps_root(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    proc = make(log, max_spans=3)
    for i in range(2, 8):
        proc.on_end(span(f"step{i}", i, 1, i, i + 1))
    proc.on_end(span("/big", 1, None, 0, 10))
    (record,) = handler.records
    lines = record.getMessage().splitlines()
    assert lines[0].startswith("🟢 /big") or lines[0].startswith("⚡ /big")
    assert sum(1 for line in lines if "step" in line and "slowest" not in line) == 3
    assert "   … 3 more spans not shown" in lines


def test_min_duration_and_include(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    proc = make(log, min_duration_ms=50, include=lambda root: not root.name.startswith("on_"))
    proc.on_end(span("/fast", 1, None, 0, 10, trace_id=TRACE + 1))
    proc.on_end(span("on_message", 1, None, 0, 100, trace_id=TRACE + 2))
    proc.on_end(span("/slow", 1, None, 0, 100, trace_id=TRACE + 3))
    assert [r.getMessage().split("  ")[0] for r in handler.records] == ["🟢 /slow"]


def test_never_raises_when_not_strict(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    proc = make(log)
    _guard.set_strict(False)
    try:
        proc.on_end(object())  # type: ignore[arg-type]
        proc.on_start(object())  # type: ignore[arg-type]
    finally:
        _guard.set_strict(None)
        _guard.reset()
    assert handler.records == []


# --- symbols --------------------------------------------------------------------------------------------


def test_ascii_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    cp1252 = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    assert wants_ascii(utf8) is False
    assert wants_ascii(cp1252) is True
    assert wants_ascii(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert wants_ascii(utf8) is True
    proc = WaterfallProcessor(stream=io.StringIO(), timer=False, logger="tests.wf.nocolor")
    try:
        assert proc.ascii is True
    finally:
        proc.shutdown()
    proc = WaterfallProcessor(stream=io.StringIO(), ascii=False, timer=False, logger="tests.wf.nocolor2")
    try:
        assert proc.ascii is False
    finally:
        proc.shutdown()


def test_cp1252_stream_gets_ascii_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252", write_through=True)
    proc = WaterfallProcessor(stream=stream, clock=FakeClock(), timer=False, logger="tests.wf.cp1252")
    try:
        for s in queue_trace():
            proc.on_end(s)
        proc.force_flush()
    finally:
        proc.shutdown()
    assert raw.getvalue().decode("cp1252") == GOLDEN_ASCII + "\n"


# --- with the real SDK --------------------------------------------------------------------------------


def test_real_spans_from_flow_and_checkpoints(captured: tuple[logging.Logger, ListHandler]) -> None:
    log, handler = captured
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    proc = WaterfallProcessor(logger=log, ascii=True, timer=False)
    provider.add_span_processor(proc)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # FAST up to a minute, so the header does not depend on how busy the machine is.
    minute = SeverityBounds(fast_ms=60_000, ok_ms=60_000, slow_ms=60_000, critical_ms=60_000)
    _state.activate(Settings(tracer_provider=provider, thresholds={"report": 0}, severity_bounds=minute))
    try:
        flow = FlowTracker("report")
        with checkpoint("load"):
            pass
        flow.checkpoint("validate_start")
        flow.checkpoint("validate_complete")
        flow.checkpoint("sent")
        flow.complete()
    finally:
        _state.deactivate()
    provider.shutdown()
    (record,) = handler.records
    assert record.name == "tests.waterfall.capture"
    lines = record.getMessage().splitlines()
    assert lines[0].startswith("[>] report  ") and "  FAST  ok  trace " in lines[0]
    names = [line.split()[2] for line in lines[1:4]]
    assert names == ["load", "validate", "sent"]
    assert lines[1].startswith("|- [cp]   load")
    assert lines[3].startswith("`- *      sent")
    assert lines[-1].startswith("   ! report took ") and lines[-1].endswith("ms over)")
    assert record.levelno == logging.WARNING  # threshold 0: exceeded
    assert len(exporter.get_finished_spans()) == 3


def test_waterfall_lines_are_redacted_through_the_apps_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocks are logged to otel_bot.waterfall, a child of the otel_bot logger whose filter
    never sees them: a token in a status description is redacted on the way out all the same."""
    from tests.rest_stub import BOT_TOKEN, WEBHOOK_TOKEN

    app = logging.getLogger("otel_bot")  # the app's handler sits where the records propagate
    handler = ListHandler()
    app.addHandler(handler)
    wf = logging.getLogger(LOGGER_NAME)
    provider = TracerProvider()
    proc = WaterfallProcessor(ascii=True, timer=False)  # default logger, the app's handlers
    provider.add_span_processor(proc)
    try:
        assert proc._handler is None and wf.propagate
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("/leaky", kind=SpanKind.SERVER) as root:
            with tracer.start_as_current_span("step") as step:
                step.set_status(Status(StatusCode.ERROR, f"failed: /webhooks/{1234}/{WEBHOOK_TOKEN}/messages"))
            root.set_status(Status(StatusCode.ERROR, f"Bot {BOT_TOKEN} rejected"))
    finally:
        proc.shutdown()
        app.removeHandler(handler)
    records = [r for r in handler.records if r.name == LOGGER_NAME]
    assert len(records) == 1
    text = records[0].getMessage()
    assert "/leaky" in text and "step" in text and "REDACTED" in text
    assert BOT_TOKEN not in text and WEBHOOK_TOKEN not in text
    assert any(isinstance(f, _privacy.RedactingFilter) for f in wf.filters)


def test_waterfall_own_writer_and_custom_logger_redact(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.rest_stub import BOT_TOKEN

    stream = io.StringIO()
    name = "tests.wf.redact"
    log = logging.getLogger(name)
    provider = TracerProvider()
    proc = WaterfallProcessor(stream=stream, ascii=True, timer=False, logger=name)
    provider.add_span_processor(proc)
    try:
        with provider.get_tracer("test").start_as_current_span("/x", kind=SpanKind.SERVER) as root:
            root.set_status(Status(StatusCode.ERROR, f"token {BOT_TOKEN}"))
    finally:
        proc.shutdown()
    out = stream.getvalue()
    assert "/x" in out and "REDACTED" in out and BOT_TOKEN not in out
    assert not any(isinstance(f, _privacy.RedactingFilter) for f in log.filters)  # removed again


def test_default_output_goes_through_logging_without_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """No handler anywhere: the processor adds a queue-fed stderr writer to its own logger."""
    name = "tests.wf.default"
    log = logging.getLogger(name)
    monkeypatch.setattr(logging.Logger, "hasHandlers", lambda self: False)
    proc = WaterfallProcessor(logger=name, timer=False)
    try:
        assert any(isinstance(h, logging.handlers.QueueHandler) for h in log.handlers)
        assert proc._listener is not None
    finally:
        proc.shutdown()
    assert not any(isinstance(h, logging.handlers.QueueHandler) for h in log.handlers)
    assert LOGGER_NAME == "otel_bot.waterfall"


async def test_waterfall_of_a_real_interaction(
    offline_discord: Any, discord_bot: Any, instrumented: Any  # noqa: F811
) -> None:
    """A slash command through the offline Discord prints one block when its root ends."""
    import asyncio

    import discord

    from otel_bot.testing import CALLBACK, FOLLOWUP

    done = asyncio.Event()

    class Signal(ListHandler):
        def emit(self, record: logging.LogRecord) -> None:
            super().emit(record)
            done.set()  # the root ends on the loop thread: no cross-thread hop needed

    log = logging.getLogger("tests.waterfall.e2e")
    handler = Signal()
    log.addHandler(handler)
    log.propagate = False
    provider = TracerProvider()
    proc = WaterfallProcessor(logger=log, ascii=True, timer=False)
    provider.add_span_processor(proc)
    instrumented(discord_bot, tracer_provider=provider, thresholds={"queue": 0})

    @discord_bot.tree.command(name="queue", description="Join the queue")
    async def queue(interaction: discord.Interaction) -> None:
        flow = FlowTracker("queue_command")
        with checkpoint("guard_checks"):
            pass
        await interaction.response.defer()
        await interaction.followup.send("queued")
        flow.complete()

    try:
        offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("queue"))
        await asyncio.wait_for(done.wait(), 5)
    finally:
        log.removeHandler(handler)
        provider.shutdown()
    (record,) = handler.records
    lines = record.getMessage().splitlines()
    assert lines[0].startswith("[>] /queue  ") or lines[0].startswith("[+] /queue  ")
    assert "  outcome success  ack " in lines[0]
    assert lines[1].startswith("`- [cp]   queue_command")
    assert lines[2].startswith("   |- [cp]   guard_checks")
    assert lines[3].startswith(f"   |- [rest] POST {CALLBACK}"[:50])
    assert lines[4].startswith(f"   `- [rest] POST {FOLLOWUP}"[:50])
    assert lines[5].startswith("   ~ slowest: ")
    assert re.fullmatch(r"   ! /queue took [\d.]+ ms \(threshold 0 ms, [\d.]+ ms over\)", lines[6]), lines[6]
    assert record.levelno == logging.WARNING


def test_notices_for_other_modules_events() -> None:
    spans = [
        span(
            "POST /channels/{channel_id}/messages",
            2,
            1,
            10,
            90,
            {A.HTTP_REQUEST_METHOD: "POST"},
            events=[
                Event(
                    A.EVENT_RATE_LIMITED,
                    {A.DISCORD_RATELIMIT_RETRY_AFTER: 0.05, A.DISCORD_RATELIMIT_GLOBAL: False},
                    timestamp=BASE + 20 * MS,
                )
            ],
        ),
        span(
            "SELECT players",
            3,
            1,
            100,
            250,
            {A.DB_SYSTEM_NAME: "postgresql"},
            events=[Event(A.EVENT_SLOW_QUERY, {}, timestamp=BASE + 250 * MS)],
        ),
        span(
            "/queue",
            1,
            None,
            0,
            300,
            {A.BOT_FLOW_SEVERITY: "OK"},
            events=[
                Event(
                    A.EVENT_LOOP_BLOCKED,
                    {A.BOT_LOOP_BLOCKED_MS: 120.0, A.CODE_FUNCTION_NAME: "compute_mmr"},
                    timestamp=BASE + 95 * MS,
                ),
                Event(
                    A.EVENT_REPEATED_QUERY,
                    {A.BOT_DB_REPEAT_COUNT: 5, A.DB_OPERATION_NAME: "SELECT", A.DB_COLLECTION_NAME: "players"},
                    timestamp=BASE + 260 * MS,
                ),
            ],
        ),
    ]
    text, level = format_trace(spans, ascii=True)
    assert text.splitlines()[-4:] == [
        "   ! rate limited: POST /channels/{channel_id}/messages, retry after 0.05 s at +20.0 ms",
        "   ! event loop blocked 120.0 ms by compute_mmr at +95.0 ms",
        "   ! slow query: SELECT players 150.0 ms at +250.0 ms",
        "   ! query repeated 5x: SELECT players at +260.0 ms",
    ]
    assert level == logging.INFO


def test_legacy_convention_keys_get_their_symbols() -> None:
    spans = [
        span("SELECT x", 2, 1, 0, 5, {A.DB_LEGACY_SYSTEM: "postgresql"}),
        span("GET /users/@me", 3, 1, 5, 9, {A.HTTP_METHOD_LEGACY: "GET"}),
        span("/root", 1, None, 0, 10),
    ]
    lines = format_trace(spans, ascii=True)[0].splitlines()
    assert lines[1].startswith("|- [db]   SELECT x")
    assert lines[2].startswith("`- [rest] GET /users/@me")
