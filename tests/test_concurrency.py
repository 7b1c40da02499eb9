"""Guarantee 6: concurrency.

500 slash-command interactions from 50 users are injected at once, while a ``tasks.loop`` runs.
Every handler opens a checkpoint, defers and sends a followup (the offline Discord answers each
request after a few ms, so all 500 are in flight together); "slow" ones send a second followup.
Spans go through a private provider to an in-memory exporter and to the console waterfall.

Proven:

* every trace is self-contained: each interaction has its own trace; every span's trace id is its
  root's and its parent chain ends at that root; the checkpoint of user U's interaction n sits in
  the trace whose root carries U's user id and interaction n; task-loop iterations are traces of
  their own with nothing of an interaction inside;
* every root ends exactly once (one ``on_end`` per span, no "already ended" warning from the SDK,
  no open interaction root left over);
* the waterfall stays per trace: one block per trace, each formatted from exactly that trace's
  spans (all of them, nothing else) and headed by its trace id; and thresholds stay per trace:
  ``/slow`` (threshold 1 ms) always breaches, ``/fast`` (60 s) never does, whatever runs next to it,
  and only ``/slow`` blocks print a breach line.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import discord
import pytest
from discord.ext import commands, tasks
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import otel_bot
from otel_bot import WaterfallProcessor, _interactions, _summary, checkpoint
from otel_bot import _attributes as A
from otel_bot.testing import CALLBACK, FOLLOWUP, OfflineDiscord
from otel_bot.testing.objects import user_payload
from tests.helpers_roots import RootWaiter

pytestmark = pytest.mark.timeout(120)

INTERACTIONS = 500
USERS = 50
USER_KEY = "test.user"  # the handler's own marker attributes (test data, not otel_bot keys)
N_KEY = "test.n"


class EndCounter(SpanProcessor):
    """How many times each span ended."""

    def __init__(self) -> None:
        self.ends: Counter[int] = Counter()
        self.starts = 0

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        self.starts += 1

    def on_end(self, span: ReadableSpan) -> None:
        self.ends[span.context.span_id] += 1


class SdkWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def sdk_warnings() -> Iterator[SdkWarnings]:
    handler = SdkWarnings()
    logger = logging.getLogger("opentelemetry")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def formatted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[ReadableSpan], str]]:
    """Every (spans, text) the waterfall formatted."""
    calls: list[tuple[list[ReadableSpan], str]] = []
    original = _summary.format_trace

    def spy(spans: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(spans, *args, **kwargs)
        calls.append((list(spans), result[0]))
        return result

    monkeypatch.setattr(_summary, "format_trace", spy)
    return calls


async def test_500_interactions_in_flight_stay_in_their_own_traces(
    sdk_warnings: SdkWarnings, formatted: list[tuple[list[ReadableSpan], str]]
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    ends = EndCounter()
    provider.add_span_processor(ends)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    console = io.StringIO()
    waterfall = WaterfallProcessor(stream=console, ascii=True, timer=False, grace_s=30.0, max_traces=5000)
    provider.add_span_processor(waterfall)
    waiter = RootWaiter()
    provider.add_span_processor(waiter)

    users = [user_payload(10_000_000_000_000_000 + i, f"user{i}") for i in range(USERS)]
    handled: list[tuple[str, int]] = []
    all_done = asyncio.Event()
    ticks = 0

    async with OfflineDiscord(default_latency_ms=3.0, bucket_limit=1_000_000) as fake:
        intents = discord.Intents.default()
        bot = commands.Bot(command_prefix="!", intents=intents, application_id=fake.application_id)
        await fake.login(bot)
        await fake.dispatch_ready(bot)

        async def work(interaction: discord.Interaction, n: int, slow: bool) -> None:
            with checkpoint("work", **{USER_KEY: str(interaction.user.id), N_KEY: n}):
                await interaction.response.defer()
                await interaction.followup.send(f"done {n}")
                if slow:
                    await interaction.followup.send(f"slow {n}")
            handled.append((str(interaction.user.id), n))
            if len(handled) == INTERACTIONS:
                all_done.set()

        @bot.tree.command(name="fast", description="Fast")
        async def fast(interaction: discord.Interaction, n: int) -> None:
            await work(interaction, n, slow=False)

        @bot.tree.command(name="slow", description="Slow")
        async def slow(interaction: discord.Interaction, n: int) -> None:
            await work(interaction, n, slow=True)

        @tasks.loop(seconds=0.005)
        async def heartbeat() -> None:
            nonlocal ticks
            with checkpoint("tick"):
                ticks += 1
                await asyncio.sleep(0)

        otel_bot.instrument_bot(bot, tracer_provider=provider, thresholds={"slow": 1.0, "fast": 60_000.0})
        try:
            heartbeat.start()
            # far-future creation times: the fake's 3 s acknowledgement window never closes under load
            created = fake.now_ms() + 120_000
            payloads = []
            for n in range(INTERACTIONS):
                user = users[n % USERS]
                name = "slow" if n % 2 else "fast"
                payloads.append(fake.payloads.slash_command(name, {"n": n}, user=user, created_ms=created))
            for payload in payloads:  # all in flight at once: nothing is awaited in between
                fake.inject(bot, "INTERACTION_CREATE", payload)
            assert _interactions.open_roots() >= INTERACTIONS // 2  # they really overlap
            await asyncio.wait_for(all_done.wait(), 90)
            loop_task = heartbeat.get_task()
            heartbeat.cancel()
            if loop_task is not None:
                await asyncio.gather(loop_task, return_exceptions=True)

            def finished(spans: list[ReadableSpan]) -> bool:
                interaction_roots = [s for s in spans if s.parent is None and s.name in ("/fast", "/slow")]
                return len(interaction_roots) >= INTERACTIONS

            await waiter.wait(exporter, finished, timeout=60)
        finally:
            otel_bot.uninstrument_bot(bot)
            await bot.close()
        assert len(fake.requests_for("POST", CALLBACK)) == INTERACTIONS
        assert len(fake.requests_for("POST", FOLLOWUP)) == INTERACTIONS + INTERACTIONS // 2

    waterfall.force_flush()
    spans = list(exporter.get_finished_spans())
    by_id = {s.context.span_id: s for s in spans}
    roots = [s for s in spans if s.parent is None]
    interaction_roots = [s for s in roots if s.name in ("/fast", "/slow")]
    loop_roots = [s for s in roots if s.name == "task heartbeat"]
    assert sorted(handled) == sorted(
        (u["id"], n) for n, u in ((n, users[n % USERS]) for n in range(INTERACTIONS))
    )
    assert len(interaction_roots) == INTERACTIONS
    assert ticks >= 1 and len(loop_roots) >= 1
    assert {s.name for s in roots} == {"/fast", "/slow", "task heartbeat"}

    # --- every root ends exactly once
    assert all(count == 1 for count in ends.ends.values())
    assert ends.starts == len(ends.ends) == len(spans)  # every started span ended and was exported
    assert not [m for m in sdk_warnings.messages if "ended span" in m or "already ended" in m], (
        sdk_warnings.messages
    )
    assert _interactions.open_roots() == 0
    assert len({r.context.trace_id for r in roots}) == len(roots)  # one trace per root

    # --- every trace is self-contained
    root_of_trace = {r.context.trace_id: r for r in roots}
    for span in spans:
        root = root_of_trace.get(span.context.trace_id)
        assert root is not None, f"{span.name} belongs to no root's trace"
        hop = span
        for _ in range(20):
            if hop.parent is None:
                break
            parent = by_id.get(hop.parent.span_id)
            assert parent is not None, f"{hop.name}: parent not exported"
            assert parent.context.trace_id == span.context.trace_id, f"{hop.name} parented into another trace"
            hop = parent
        assert hop is root
    interaction_ids = Counter()
    for root in interaction_roots:
        attrs = dict(root.attributes or {})
        assert root.kind is SpanKind.SERVER
        assert root.status.status_code is not StatusCode.ERROR
        members = [s for s in spans if s.context.trace_id == root.context.trace_id]
        works = [s for s in members if s.name == "work"]
        assert len(works) == 1, root.name
        work_attrs = dict(works[0].attributes or {})
        assert work_attrs[USER_KEY] == attrs[A.DISCORD_USER_ID]  # the user's own trace
        n = work_attrs[N_KEY]
        interaction_ids[n] += 1
        assert root.name == ("/slow" if n % 2 else "/fast")
        assert str(users[n % USERS]["id"]) == attrs[A.DISCORD_USER_ID]
        rest = [s for s in members if s.kind is SpanKind.CLIENT]
        assert len(rest) == (3 if n % 2 else 2), (root.name, [s.name for s in rest])
        assert all(s.parent is not None and s.parent.span_id == works[0].context.span_id for s in rest)
        assert len(members) == 1 + 1 + len(rest)
    assert sorted(interaction_ids) == list(range(INTERACTIONS)) and set(interaction_ids.values()) == {1}
    for root in loop_roots:
        members = [s for s in spans if s.context.trace_id == root.context.trace_id]
        assert sorted(s.name for s in members) == ["task heartbeat", "tick"]

    # --- thresholds stay per trace
    for root in interaction_roots:
        attrs = dict(root.attributes or {})
        slow_one = root.name == "/slow"
        assert attrs[A.BOT_FLOW_THRESHOLD_MS] == (1.0 if slow_one else 60_000.0)
        assert attrs[A.BOT_FLOW_THRESHOLD_EXCEEDED] is slow_one
        breach_events = [e for e in root.events if e.name == A.EVENT_THRESHOLD_EXCEEDED]
        assert len(breach_events) == (1 if slow_one else 0)

    # --- the waterfall stays per trace
    traces = {r.context.trace_id: r for r in roots}
    blocks: dict[int, str] = {}
    for given, text in formatted:
        trace_ids = {s.context.trace_id for s in given}
        assert len(trace_ids) == 1, "one waterfall block mixed spans of several traces"
        (tid,) = trace_ids
        assert tid not in blocks, "a trace was printed twice"
        expected = {s.context.span_id for s in spans if s.context.trace_id == tid}
        assert {s.context.span_id for s in given} == expected, "a block is missing spans of its trace"
        header = text.splitlines()[0]
        assert header.endswith(f"trace {tid:032x}"), header
        blocks[tid] = text
    assert set(blocks) == set(traces), "every trace printed exactly once"
    assert waterfall.evicted == 0
    for tid, text in blocks.items():
        root = traces[tid]
        if root.name == "task heartbeat":
            continue
        breach = [line for line in text.splitlines() if "threshold" in line and "took" in line]
        assert len(breach) == (1 if root.name == "/slow" else 0), text
        assert text.count("[rest]") == (3 if root.name == "/slow" else 2), text
    printed = console.getvalue()
    assert len(re.findall(r"trace [0-9a-f]{32}$", printed, flags=re.M)) == len(traces)
    provider.shutdown()
