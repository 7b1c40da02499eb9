"""checkpoint(), measure(), measure_time() and FlowTracker: spans, parentage, attributes, status."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_bot import _attributes as A
from otel_bot import _guard, _state
from otel_bot._config import Settings
from otel_bot._flow import FlowCheckpoint, FlowTracker, Measurement, checkpoint, measure, measure_time
from tests.helpers_roots import instrumented  # noqa: F401  (fixture)


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    spans = exporter.get_finished_spans()
    out = {s.name: s for s in spans}
    assert len(out) == len(spans), [s.name for s in spans]
    return out


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def sid(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


@pytest.fixture
def settings() -> Any:
    """Activate instrument_bot-style settings for one test."""
    applied: list[Settings] = []

    def activate(**kwargs: Any) -> Settings:
        s = Settings(**kwargs)
        _state.activate(s)
        applied.append(s)
        return s

    yield activate
    if applied:
        _state.deactivate()


# --- checkpoint() -----------------------------------------------------------------------------------


def test_checkpoint_context_manager_is_internal_child(span_exporter: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("/queue", kind=SpanKind.SERVER) as root:
        with checkpoint("guard_checks", players=3, ratio=0.5, ok=True, tags=["a", "b"]) as span:
            assert span is trace.get_current_span()
            with checkpoint("inner"):
                pass
        assert trace.get_current_span() is root
    spans = by_name(span_exporter)
    assert set(spans) == {"/queue", "guard_checks", "inner"}
    gc, inner, r = spans["guard_checks"], spans["inner"], spans["/queue"]
    assert gc.kind is SpanKind.INTERNAL and inner.kind is SpanKind.INTERNAL
    assert parent_id(gc) == sid(r)
    assert parent_id(inner) == sid(gc)
    assert gc.context is not None and r.context is not None
    assert gc.context.trace_id == r.context.trace_id
    assert dict(gc.attributes or {}) == {
        "players": 3,
        "ratio": 0.5,
        "ok": True,
        "tags": ("a", "b"),
        A.BOT_CHECKPOINT: True,
    }
    assert gc.status.status_code is StatusCode.UNSET


def test_checkpoint_outside_any_trace_is_a_root(span_exporter: InMemorySpanExporter) -> None:
    with checkpoint("standalone"):
        pass
    (span,) = span_exporter.get_finished_spans()
    assert span.name == "standalone"
    assert span.parent is None
    assert span.kind is SpanKind.INTERNAL


async def test_checkpoint_async_with(span_exporter: InMemorySpanExporter) -> None:
    async with checkpoint("load_preferences") as span:
        await asyncio.sleep(0)
        assert trace.get_current_span() is span
    assert [s.name for s in span_exporter.get_finished_spans()] == ["load_preferences"]


def test_checkpoint_attribute_values_are_cleaned(span_exporter: InMemorySpanExporter, settings: Any) -> None:
    settings(max_attribute_length=8)

    class Thing:
        def __str__(self) -> str:
            return "thing-with-a-long-name"

    with checkpoint("x", obj=Thing(), text="0123456789", none=None, big=2**70, mixed=[1, "a"]):
        pass
    (span,) = span_exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["obj"] == "thing-w…"
    assert attrs["text"] == "0123456…"
    assert "none" not in attrs
    assert attrs["big"] == "1180591…"
    assert attrs["mixed"] == ("1", "a")
    assert all(isinstance(v, (str, bool, int, float, tuple)) for v in attrs.values())


def test_checkpoint_attribute_lone_surrogates_become_replacement_chars(
    span_exporter: InMemorySpanExporter, settings: Any
) -> None:
    """A gateway string with a lone surrogate (json accepts "\\ud800") stays exportable."""
    from otel_bot import _privacy

    settings(max_attribute_length=8)

    class Odd:
        def __str__(self) -> str:
            return "o\udfffdd"

    with checkpoint("x", name="ab\ud800cd", long="\ud800" * 20, names=["ok", "b\udc00"], obj=Odd(),
                    many=list(range(100))):
        pass
    (span,) = span_exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["name"] == "ab\ufffdcd"
    assert attrs["long"] == "\ufffd" * 7 + "…"
    assert attrs["names"] == ("ok", "b\ufffd")
    assert attrs["obj"] == "o\ufffddd"
    assert attrs["many"] == tuple(range(_privacy.MAX_SEQUENCE_LENGTH))
    for value in attrs.values():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, str):
                item.encode("utf-8")


def test_checkpoint_exception_recorded_and_reraised_unchanged(span_exporter: InMemorySpanExporter) -> None:
    err = ValueError("bad mmr")
    with pytest.raises(ValueError) as info:
        with checkpoint("compute"):
            raise err
    assert info.value is err
    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError: bad mmr"
    assert dict(span.attributes or {})[A.ERROR_TYPE] == "ValueError"
    (event,) = span.events
    assert event.name == "exception"
    assert dict(event.attributes or {})[A.EXCEPTION_TYPE] == "ValueError"
    assert dict(event.attributes or {})[A.EXCEPTION_MESSAGE] == "bad mmr"
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_checkpoint_cancelled_is_not_an_error(span_exporter: InMemorySpanExporter) -> None:
    async def work() -> None:
        async with checkpoint("waiting"):
            await asyncio.sleep(10)

    task = asyncio.ensure_future(work())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert span.events == ()


def test_checkpoint_decorator_sync_keeps_metadata(span_exporter: InMemorySpanExporter) -> None:
    @checkpoint("compute_mmr", algo="glicko")
    def compute_mmr(rows: list[int], *, scale: float = 1.0) -> float:
        """Compute."""
        return sum(rows) * scale

    assert compute_mmr.__name__ == "compute_mmr"
    assert compute_mmr.__qualname__.endswith("compute_mmr")
    assert compute_mmr.__doc__ == "Compute."
    assert str(inspect.signature(compute_mmr)) == "(rows: 'list[int]', *, scale: 'float' = 1.0) -> 'float'"
    assert not inspect.iscoroutinefunction(compute_mmr)
    assert compute_mmr([1, 2], scale=2) == 6
    assert compute_mmr([1]) == 1
    spans = span_exporter.get_finished_spans()
    assert [s.name for s in spans] == ["compute_mmr", "compute_mmr"]
    assert all(dict(s.attributes or {}) == {"algo": "glicko", A.BOT_CHECKPOINT: True} for s in spans)
    assert spans[0].context is not None and spans[1].context is not None
    assert spans[0].context.span_id != spans[1].context.span_id


async def test_checkpoint_decorator_async_stays_coroutine_function(span_exporter: InMemorySpanExporter) -> None:
    @checkpoint("send_embed")
    async def send_embed(channel: int) -> str:
        await asyncio.sleep(0)
        with checkpoint("render"):
            pass
        return f"sent {channel}"

    assert inspect.iscoroutinefunction(send_embed)
    assert send_embed.__name__ == "send_embed"
    assert list(inspect.signature(send_embed).parameters) == ["channel"]
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("/queue", kind=SpanKind.SERVER):
        assert await asyncio.gather(send_embed(1), send_embed(2)) == ["sent 1", "sent 2"]
    spans = span_exporter.get_finished_spans()
    root = next(s for s in spans if s.name == "/queue")
    sends = [s for s in spans if s.name == "send_embed"]
    renders = [s for s in spans if s.name == "render"]
    assert len(sends) == 2 and len(renders) == 2
    assert all(parent_id(s) == sid(root) for s in sends)
    assert {parent_id(r) for r in renders} == {sid(s) for s in sends}


async def test_checkpoint_decorator_exception_async(span_exporter: InMemorySpanExporter) -> None:
    class Boom(RuntimeError):
        pass

    @checkpoint
    async def explode() -> None:
        raise Boom("x")

    with pytest.raises(Boom):
        await explode()
    (span,) = span_exporter.get_finished_spans()
    assert span.name.endswith("explode") and "<locals>" in span.name  # bare decorator: the qualname
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})[A.ERROR_TYPE].endswith("Boom")


def test_bare_decorator_and_method(span_exporter: InMemorySpanExporter) -> None:
    class Service:
        @checkpoint("service.fetch")
        def fetch(self, n: int) -> int:
            return n + 1

    assert Service().fetch(1) == 2
    assert [s.name for s in span_exporter.get_finished_spans()] == ["service.fetch"]


def test_checkpoint_suppressed_records_nothing(span_exporter: InMemorySpanExporter) -> None:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        with checkpoint("hidden") as span:
            assert not span.is_recording()
        with measure("hidden2") as m:
            pass
        assert m.elapsed_ms >= 0
        flow = FlowTracker("hidden_flow")
        flow.checkpoint("a_start")
        flow.checkpoint("a_complete")
        assert flow.complete() >= 0
    assert span_exporter.get_finished_spans() == ()


# --- measure() / measure_time() ------------------------------------------------------------------------


def test_measure_yields_elapsed(span_exporter: InMemorySpanExporter) -> None:
    with measure("db.fetch", rows=50) as m:
        assert isinstance(m, Measurement)
        assert not m.finished
        m.set_attribute("cache_hit", False)
    assert m.finished
    first = m.elapsed_ms
    assert first >= 0 and m.elapsed_ms == first  # fixed after exit
    (span,) = span_exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["rows"] == 50 and attrs["cache_hit"] is False and attrs[A.BOT_CHECKPOINT] is True
    assert isinstance(attrs[A.BOT_CHECKPOINT_ELAPSED_MS], float)
    assert attrs[A.BOT_CHECKPOINT_ELAPSED_MS] == pytest.approx(first, abs=0.001)
    assert span.end_time is not None and span.start_time is not None
    assert (span.end_time - span.start_time) / 1e6 == pytest.approx(first, abs=0.001)


def test_measure_time_old_signature(span_exporter: InMemorySpanExporter) -> None:
    with measure_time("database_query", {"query kind": "select", "table": "players"}):
        pass

    @measure_time("decorated")
    def f() -> int:
        return 1

    assert f() == 1
    a, b = span_exporter.get_finished_spans()
    assert a.name == "database_query" and b.name == "decorated"
    assert dict(a.attributes or {})["query kind"] == "select"
    assert isinstance(dict(b.attributes or {})[A.BOT_CHECKPOINT_ELAPSED_MS], float)


async def test_measure_async_exception(span_exporter: InMemorySpanExporter) -> None:
    with pytest.raises(KeyError):
        async with measure("lookup") as m:
            raise KeyError("k")
    assert isinstance(m.error, KeyError)
    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR


# --- FlowTracker ------------------------------------------------------------------------------------------


def test_flow_pairs_become_child_spans_with_timestamps(span_exporter: InMemorySpanExporter) -> None:
    flow = FlowTracker("queue_command", user_id=123456, mode="1v1")
    flow.checkpoint("guard_checks_start")
    flow.checkpoint("guard_checks_complete", {"passed": True})
    flow.checkpoint("load_prefs_begin")
    flow.checkpoint("load_prefs_done")
    flow.checkpoint("view_built", {"buttons": 4})
    flow.checkpoint("send.start")
    flow.checkpoint("send.finish")
    duration = flow.complete("success")

    spans = by_name(span_exporter)
    assert set(spans) == {"queue_command", "guard_checks", "load_prefs", "send"}
    root = spans["queue_command"]
    assert root.parent is None and root.kind is SpanKind.INTERNAL
    for name in ("guard_checks", "load_prefs", "send"):
        s = spans[name]
        assert parent_id(s) == sid(root)
        assert s.kind is SpanKind.INTERNAL
        assert dict(s.attributes or {})[A.BOT_CHECKPOINT] is True
        assert dict(s.attributes or {})[A.BOT_FLOW_NAME] == "queue_command"
        assert root.start_time is not None and root.end_time is not None
        assert s.start_time is not None and s.end_time is not None
        assert root.start_time <= s.start_time <= s.end_time <= root.end_time
    assert dict(spans["guard_checks"].attributes or {})["passed"] is True
    gc, lp, sd = spans["guard_checks"], spans["load_prefs"], spans["send"]
    assert gc.end_time is not None and lp.start_time is not None and lp.end_time is not None
    assert sd.start_time is not None
    assert gc.end_time <= lp.start_time and lp.end_time <= sd.start_time

    attrs = dict(root.attributes or {})
    assert attrs[A.BOT_FLOW_NAME] == "queue_command"
    assert attrs[A.BOT_FLOW_USER_ID] == "123456"
    assert attrs["mode"] == "1v1"
    assert attrs[A.BOT_FLOW_STATUS] == "success"
    assert attrs[A.BOT_FLOW_SEVERITY] in ("FAST", "OK")
    assert attrs[A.BOT_FLOW_THRESHOLD_MS] == 1000.0
    assert attrs[A.BOT_FLOW_THRESHOLD_EXCEEDED] is False
    assert attrs[A.BOT_FLOW_DURATION_MS] == pytest.approx(duration, abs=0.001)
    assert root.end_time is not None and root.start_time is not None
    assert (root.end_time - root.start_time) / 1e6 == pytest.approx(duration, abs=0.001)
    assert root.status.status_code is StatusCode.UNSET

    (event,) = root.events
    assert event.name == "view_built"
    ev = dict(event.attributes or {})
    assert ev["buttons"] == 4 and ev[A.BOT_CHECKPOINT] is True
    assert isinstance(ev[A.BOT_CHECKPOINT_ELAPSED_MS], float)
    assert isinstance(ev[A.BOT_CHECKPOINT_STEP_MS], float)
    assert event.timestamp is not None and lp.end_time is not None
    assert lp.end_time <= event.timestamp

    # the old tracker's data stays available
    assert [c.name for c in flow.checkpoints][:2] == ["guard_checks_start", "guard_checks_complete"]
    assert all(isinstance(c, FlowCheckpoint) for c in flow.checkpoints)
    assert flow.checkpoints[1].metadata == {"passed": True}
    assert flow.get_duration() == duration
    assert list(flow.steps()) == [c.name for c in flow.checkpoints]
    assert flow.get_checkpoint("view_built") is flow.checkpoints[4]
    assert flow.completed and flow.status == "success"


def test_flow_nesting(span_exporter: InMemorySpanExporter) -> None:
    flow = FlowTracker("match_report")
    flow.checkpoint("validate_start")
    flow.checkpoint("db_start")
    with checkpoint("inner_cp"):  # the open step is the current span
        pass
    flow.checkpoint("db_complete")
    flow.checkpoint("validate_complete")
    flow.complete()
    spans = by_name(span_exporter)
    assert parent_id(spans["validate"]) == sid(spans["match_report"])
    assert parent_id(spans["db"]) == sid(spans["validate"])
    assert parent_id(spans["inner_cp"]) == sid(spans["db"])
    assert trace.get_current_span() is trace.INVALID_SPAN  # every context detached


def test_flow_unclosed_and_mismatched(span_exporter: InMemorySpanExporter) -> None:
    flow = FlowTracker("setup_command")
    flow.checkpoint("outer_start")
    flow.checkpoint("inner_start")
    flow.checkpoint("outer_complete")  # closes inner too: mismatched
    flow.checkpoint("inner_complete")  # nothing open: an event, mismatched
    flow.checkpoint("tail_start")  # never closed: closed at complete(), unclosed
    flow.complete()
    spans = by_name(span_exporter)
    assert set(spans) == {"setup_command", "outer", "inner", "tail"}
    inner, outer, tail, root = spans["inner"], spans["outer"], spans["tail"], spans["setup_command"]
    assert dict(inner.attributes or {})[A.BOT_CHECKPOINT_MISMATCHED] is True
    assert A.BOT_CHECKPOINT_MISMATCHED not in dict(outer.attributes or {})
    assert inner.end_time == outer.end_time
    assert dict(tail.attributes or {})[A.BOT_CHECKPOINT_UNCLOSED] is True
    assert tail.end_time == root.end_time
    assert parent_id(tail) == sid(root)
    (event,) = root.events
    assert event.name == "inner_complete"
    assert dict(event.attributes or {})[A.BOT_CHECKPOINT_MISMATCHED] is True


def test_flow_complete_twice_and_error_status(span_exporter: InMemorySpanExporter) -> None:
    flow = FlowTracker("activate_command")
    first = flow.complete("error")
    assert flow.complete("success") == first
    flow.checkpoint("late")  # ignored after completion
    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})[A.BOT_FLOW_STATUS] == "error"
    assert span.events == ()
    assert flow.status == "error"


def test_flow_threshold_override_and_settings(span_exporter: InMemorySpanExporter, settings: Any) -> None:
    settings(thresholds={"queue_command": 500}, default_threshold_ms=None)
    FlowTracker("queue_command").complete()
    FlowTracker("other").complete()
    f = FlowTracker("queue_command", threshold_ms=0)
    f.complete()
    a, b, c = span_exporter.get_finished_spans()
    assert dict(a.attributes or {})[A.BOT_FLOW_THRESHOLD_MS] == 500.0
    assert A.BOT_FLOW_THRESHOLD_MS not in dict(b.attributes or {})
    assert dict(c.attributes or {})[A.BOT_FLOW_THRESHOLD_MS] == 0.0
    assert dict(c.attributes or {})[A.BOT_FLOW_THRESHOLD_EXCEEDED] is True
    assert [e.name for e in c.events] == [A.EVENT_THRESHOLD_EXCEEDED]
    assert f.severity == "FAST"


def test_flow_user_id_privacy(span_exporter: InMemorySpanExporter, settings: Any) -> None:
    settings(capture_user_ids=False)
    FlowTracker("a", user_id=42).complete()
    settings(user_id_hmac_key=b"k")
    FlowTracker("b", 42).complete()
    a, b = span_exporter.get_finished_spans()
    assert A.BOT_FLOW_USER_ID not in dict(a.attributes or {})
    hashed = dict(b.attributes or {})[A.BOT_FLOW_USER_ID]
    assert isinstance(hashed, str) and len(hashed) == 64 and hashed != "42"


def test_flow_inside_instrumented_interaction(span_exporter: InMemorySpanExporter) -> None:
    tracer = _state.get_tracer()
    root = tracer.start_span("/queue", kind=SpanKind.SERVER, context=otel_context.Context())
    unit = _state.WorkUnit(span=root, flow="queue", kind="interaction")
    unit_token = _state.current_unit.set(unit)
    ctx_token = otel_context.attach(trace.set_span_in_context(root))
    try:
        flow = FlowTracker("queue_command", user_id=1)
        flow.checkpoint("guard_checks_start")
        flow.checkpoint("guard_checks_complete")
        flow.complete()
    finally:
        otel_context.detach(ctx_token)
        _state.current_unit.reset(unit_token)
    root.end()
    spans = by_name(span_exporter)
    r = spans["/queue"]
    assert r.parent is None and r.kind is SpanKind.SERVER
    assert parent_id(spans["queue_command"]) == sid(r)
    assert parent_id(spans["guard_checks"]) == sid(spans["queue_command"])
    assert {s.context.trace_id for s in spans.values() if s.context} == {r.context.trace_id if r.context else 0}


async def test_flow_uses_unit_root_when_no_current_span(span_exporter: InMemorySpanExporter) -> None:
    """A flow started where the span context got lost (e.g. a callback) still joins the unit."""
    tracer = _state.get_tracer()
    root = tracer.start_span("/queue", kind=SpanKind.SERVER, context=otel_context.Context())
    token = _state.current_unit.set(_state.WorkUnit(span=root, flow="queue", kind="interaction"))
    try:
        flow = FlowTracker("callback_flow")
        with checkpoint("cp"):
            pass
        flow.complete()
    finally:
        _state.current_unit.reset(token)
    root.end()
    spans = by_name(span_exporter)
    assert parent_id(spans["callback_flow"]) == sid(spans["/queue"])
    assert parent_id(spans["cp"]) == sid(spans["callback_flow"])


def test_flow_outside_any_trace_is_root(span_exporter: InMemorySpanExporter) -> None:
    flow = FlowTracker(flow_name="leaderboard_command")
    with checkpoint("query"):
        pass
    flow.complete()
    spans = by_name(span_exporter)
    assert spans["leaderboard_command"].parent is None
    assert parent_id(spans["query"]) == sid(spans["leaderboard_command"])


async def test_flow_context_manager_and_step(span_exporter: InMemorySpanExporter) -> None:
    with pytest.raises(LookupError):
        async with FlowTracker("profile_command") as flow:
            with flow.step("fetch"):
                pass
            async with flow.step("render", size=2):
                raise LookupError("missing")
    spans = by_name(span_exporter)
    root = spans["profile_command"]
    assert root.status.status_code is StatusCode.ERROR
    assert dict(root.attributes or {})[A.BOT_FLOW_STATUS] == "error"
    assert spans["render"].status.status_code is StatusCode.ERROR
    assert dict(spans["render"].attributes or {})["size"] == 2
    assert spans["fetch"].status.status_code is StatusCode.UNSET
    assert [e.name for e in root.events] == ["exception"]

    with FlowTracker("ok_flow") as ok:
        pass
    assert ok.completed and ok.status == "success"


async def test_flow_completed_in_another_task_does_not_break_context(span_exporter: InMemorySpanExporter) -> None:
    flow = FlowTracker("cross_task")
    flow.checkpoint("wait_start")

    async def finish() -> float:
        flow.checkpoint("wait_complete")
        return flow.complete()

    assert await asyncio.create_task(finish()) >= 0
    spans = by_name(span_exporter)
    assert parent_id(spans["wait"]) == sid(spans["cross_task"])


def test_flow_never_raises_when_not_strict(span_exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_bot import _sla

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug in telemetry")

    monkeypatch.setattr(_sla, "assess", broken)
    _guard.set_strict(False)
    try:
        flow = FlowTracker("x")
        assert flow.complete() >= 0
    finally:
        _guard.set_strict(None)
        _guard.reset()
    (span,) = span_exporter.get_finished_spans()  # the span still ends
    assert span.name == "x"


# --- end to end: a real slash command through the offline Discord -----------------------------------


async def test_flow_in_a_real_interaction(
    offline_discord: Any, discord_bot: Any, span_exporter: InMemorySpanExporter, instrumented: Any  # noqa: F811
) -> None:
    import discord

    from otel_bot.testing import CALLBACK, FOLLOWUP
    from tests.helpers_roots import wait_roots

    instrumented(discord_bot, thresholds={"queue": 0})

    @discord_bot.tree.command(name="queue", description="Join the queue")
    async def queue(interaction: discord.Interaction) -> None:
        flow = FlowTracker("queue_command", user_id=interaction.user.id)
        flow.checkpoint("guard_checks_start")
        with checkpoint("load_preferences"):
            pass
        flow.checkpoint("guard_checks_complete")
        await interaction.response.defer()
        flow.checkpoint("deferred")
        await interaction.followup.send("queued")
        flow.complete()

    offline_discord.clear_requests()
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("queue"))
    spans = await wait_roots(span_exporter, name="/queue")
    named = by_name(span_exporter)
    root, flow_span = named["/queue"], named["queue_command"]
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert flow_span.kind is SpanKind.INTERNAL and parent_id(flow_span) == sid(root)
    assert parent_id(named["guard_checks"]) == sid(flow_span)
    assert parent_id(named["load_preferences"]) == sid(named["guard_checks"])
    # REST calls made while the flow is open nest under it
    assert parent_id(named[f"POST {CALLBACK}"]) == sid(flow_span)
    assert parent_id(named[f"POST {FOLLOWUP}"]) == sid(flow_span)
    assert {s.context.trace_id for s in spans if s.context} == {root.context.trace_id if root.context else 0}
    flow_attrs = dict(flow_span.attributes or {})
    assert flow_attrs[A.BOT_FLOW_STATUS] == "success"
    assert flow_attrs[A.BOT_FLOW_USER_ID] == str(offline_discord.world.user_id)
    assert [e.name for e in flow_span.events] == ["deferred"]
    # the root got the interaction's threshold (0 ms: always exceeded)
    root_attrs = dict(root.attributes or {})
    assert root_attrs[A.BOT_FLOW_THRESHOLD_MS] == 0.0
    assert root_attrs[A.BOT_FLOW_THRESHOLD_EXCEEDED] is True
    assert root_attrs[A.BOT_FLOW_SEVERITY] in ("FAST", "OK")
    assert [e.name for e in root.events if e.name == A.EVENT_THRESHOLD_EXCEEDED] == [A.EVENT_THRESHOLD_EXCEEDED]


async def test_flow_never_completed_is_closed_with_its_root(
    offline_discord: Any, discord_bot: Any, span_exporter: InMemorySpanExporter, instrumented: Any  # noqa: F811
) -> None:
    import discord

    from tests.helpers_roots import wait_roots

    instrumented(discord_bot)

    @discord_bot.tree.command(name="forgetful", description="Never completes its flow")
    async def forgetful(interaction: discord.Interaction) -> None:
        flow = FlowTracker("forgetful_flow")
        flow.checkpoint("work_start")
        await interaction.response.send_message("done")

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("forgetful"))
    await wait_roots(span_exporter, name="/forgetful")
    named = by_name(span_exporter)
    root, flow_span, work = named["/forgetful"], named["forgetful_flow"], named["work"]
    assert parent_id(flow_span) == sid(root) and parent_id(work) == sid(flow_span)
    attrs = dict(flow_span.attributes or {})
    assert attrs[A.BOT_FLOW_STATUS] == "unclosed"
    assert attrs[A.BOT_CHECKPOINT_UNCLOSED] is True
    assert dict(work.attributes or {})[A.BOT_CHECKPOINT_UNCLOSED] is True
    assert flow_span.end_time is not None and root.end_time is not None
    assert flow_span.end_time <= root.end_time


def test_noop_provider_records_nothing_but_still_times(span_exporter: InMemorySpanExporter, settings: Any) -> None:
    settings(tracer_provider=trace.NoOpTracerProvider())
    with checkpoint("x") as span:
        assert span is trace.INVALID_SPAN
    with measure("y") as m:
        pass
    assert m.finished and m.elapsed_ms >= 0
    flow = FlowTracker("z")
    flow.checkpoint("a_start")
    flow.checkpoint("a_done")
    assert flow.span is trace.INVALID_SPAN
    assert flow.complete() >= 0 and flow.severity == "FAST"
    assert span_exporter.get_finished_spans() == ()


# --- one shared checkpoint()/measure() object in overlapping tasks (audit finding 6) ---------------

SHARED_STEP = measure("shared_step")


async def test_shared_checkpoint_object_in_overlapping_tasks(
    span_exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    tracer = trace.get_tracer("test")
    a_entered, b_entered, a_exited = asyncio.Event(), asyncio.Event(), asyncio.Event()
    seen: dict[str, Any] = {}

    async def task_a() -> None:
        with tracer.start_as_current_span("root_a", kind=SpanKind.SERVER) as root:
            async with SHARED_STEP as m:
                seen["a_m"] = m
                a_entered.set()
                await b_entered.wait()
                seen["a_current_inside"] = trace.get_current_span()
            seen["a_current_after"] = trace.get_current_span() is root
            seen["b_finished_when_a_exited"] = seen["b_m"].finished
            a_exited.set()

    async def task_b() -> None:
        await a_entered.wait()
        with tracer.start_as_current_span("root_b", kind=SpanKind.SERVER) as root:
            with SHARED_STEP as m:
                seen["b_m"] = m
                b_entered.set()
                await a_exited.wait()
                seen["b_current_inside"] = trace.get_current_span()
                seen["b_finished_inside"] = m.finished
            seen["b_current_after"] = trace.get_current_span() is root

    with caplog.at_level("ERROR", logger="opentelemetry.context"):
        await asyncio.gather(task_a(), task_b())
    assert not [r for r in caplog.records if "Failed to detach context" in r.getMessage()]

    a_m, b_m = seen["a_m"], seen["b_m"]
    assert a_m is not b_m and a_m.finished and b_m.finished
    assert seen["b_finished_when_a_exited"] is False  # A's exit closed A's entry, not B's
    assert seen["b_finished_inside"] is False
    assert seen["a_current_inside"] is a_m.span and seen["b_current_inside"] is b_m.span
    assert seen["a_current_after"] is True and seen["b_current_after"] is True

    spans = span_exporter.get_finished_spans()
    assert [s.name for s in spans] == ["shared_step", "root_a", "shared_step", "root_b"]
    step_a, root_a, step_b, root_b = spans
    assert parent_id(step_a) == sid(root_a) and parent_id(step_b) == sid(root_b)
    assert root_a.parent is None and root_b.parent is None
    assert step_a.context is not None and step_b.context is not None
    assert sid(step_a) == a_m.span.get_span_context().span_id
    assert sid(step_b) == b_m.span.get_span_context().span_id
    for step, m in ((step_a, a_m), (step_b, m_b := b_m)):
        assert step.kind is SpanKind.INTERNAL
        assert step.start_time == m.start_ns and step.end_time == m.end_ns
        assert dict(step.attributes or {}) == {
            A.BOT_CHECKPOINT: True,
            A.BOT_CHECKPOINT_ELAPSED_MS: round(m.elapsed_ms, 3),
        }
    assert step_a.end_time is not None and step_b.end_time is not None
    assert step_a.end_time <= step_b.end_time and m_b.elapsed_ms > 0
    assert SHARED_STEP._stack == []


def test_shared_checkpoint_object_nested_in_itself(span_exporter: InMemorySpanExporter) -> None:
    step = checkpoint("again")
    with step as outer:
        with step as inner:
            assert trace.get_current_span() is inner
        assert trace.get_current_span() is outer
    assert trace.get_current_span() is trace.INVALID_SPAN
    outer_s, inner_s = sorted(span_exporter.get_finished_spans(), key=lambda s: s.start_time or 0)
    assert parent_id(inner_s) == sid(outer_s) and outer_s.parent is None
