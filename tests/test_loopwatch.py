"""The blocked event loop detector."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_bot import _attributes as A
from otel_bot import _executor, _loopwatch, _patching, _state
from otel_bot._config import Settings
from tests.helpers_patching import instrumenting
from tests.helpers_patching import unit_root as _unit_root


@pytest.fixture
def watch(tracer_provider: TracerProvider) -> Iterator[Callable[..., Settings]]:
    with instrumenting(tracer_provider, _executor.PATCHES + _loopwatch.PATCHES, _loopwatch) as instrument:
        yield instrument


def _end_unit(unit: _state.WorkUnit) -> None:
    _loopwatch.note_unit_ending(unit)  # what Root.end does
    unit.ended = True


def unit_root(name: str = "root") -> AbstractContextManager[_state.WorkUnit]:
    return _unit_root(name, before_end=_end_unit)


async def blocking_handler(seconds: float) -> None:
    """A handler that blocks the loop, then goes on awaiting."""
    with unit_root():
        time.sleep(seconds)
        await asyncio.sleep(0)


def blocked_events(exporter: InMemorySpanExporter) -> list[Any]:
    (root,) = [s for s in exporter.get_finished_spans() if s.name == "root"]
    return [e for e in root.events if e.name == A.EVENT_LOOP_BLOCKED]


async def test_flags_a_300ms_sleep_in_a_handler(
    watch: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    watch()
    before = time.time_ns()
    await asyncio.create_task(blocking_handler(0.3))
    (event,) = blocked_events(span_exporter)
    assert set(event.attributes or {}) == {
        A.BOT_LOOP_BLOCKED_MS, A.BOT_LOOP_BLOCKED_THRESHOLD_MS, A.CODE_FUNCTION_NAME,
    }
    assert 280 <= event.attributes[A.BOT_LOOP_BLOCKED_MS] <= 3000
    assert event.attributes[A.BOT_LOOP_BLOCKED_THRESHOLD_MS] == 100.0
    assert event.attributes[A.CODE_FUNCTION_NAME] == "blocking_handler"
    assert event.timestamp >= before - 10_000_000  # stamped when the blocking callback started


async def test_does_not_flag_a_20ms_sleep(
    watch: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    watch()
    await asyncio.create_task(blocking_handler(0.02))
    assert blocked_events(span_exporter) == []


async def test_threshold_is_configurable_and_none_disarms(
    watch: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    watch(blocking_threshold_ms=10)
    await asyncio.create_task(blocking_handler(0.03))
    (event,) = blocked_events(span_exporter)
    assert event.attributes[A.BOT_LOOP_BLOCKED_THRESHOLD_MS] == 10.0
    span_exporter.clear()
    _loopwatch.instrument(Settings(blocking_threshold_ms=None))
    await asyncio.create_task(blocking_handler(0.15))
    assert blocked_events(span_exporter) == []


async def test_blocking_outside_a_unit_is_ignored(
    watch: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    watch()

    async def untraced() -> None:
        time.sleep(0.15)
        await asyncio.sleep(0)

    await asyncio.create_task(untraced())
    with unit_root():  # a unit active elsewhere does not get someone else's stall
        await asyncio.create_task(untraced_in_empty_context())
    assert blocked_events(span_exporter) == []


async def untraced_in_empty_context() -> None:
    token = _state.current_unit.set(None)
    try:
        time.sleep(0.15)
        await asyncio.sleep(0)
    finally:
        _state.current_unit.reset(token)


async def test_a_plain_callback_of_the_unit_is_flagged(
    watch: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    watch()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def callback() -> None:
        time.sleep(0.15)
        done.set()

    with unit_root():
        loop.call_soon(callback)  # carries the unit's context
        await done.wait()
    (event,) = blocked_events(span_exporter)
    assert event.attributes[A.CODE_FUNCTION_NAME].endswith("callback")


async def test_uninstrument_restores_handle_run(tracer_provider: TracerProvider) -> None:
    original = vars(asyncio.events.Handle)["_run"]
    applied = _patching.apply(_loopwatch.PATCHES)
    assert vars(asyncio.events.Handle)["_run"] is not original
    _patching.revert(applied)
    assert vars(asyncio.events.Handle)["_run"] is original
    assert await asyncio.sleep(0, result=5) == 5


# --- end to end: instrument_bot + the offline Discord ---------------------------------------------------

from tests.helpers_roots import instrumented, wait_roots  # noqa: E402

__all__ = ["instrumented"]


async def test_e2e_blocking_handler_flagged_on_the_interaction_root(
    offline_discord: Any, discord_bot: Any, span_exporter: InMemorySpanExporter, instrumented: Any,
) -> None:
    import discord

    instrumented(discord_bot)

    @discord_bot.tree.command(name="slow", description="Blocks the loop")
    async def slow(interaction: discord.Interaction, ms: int) -> None:
        time.sleep(ms / 1000)  # the bug the detector exists for
        await interaction.response.send_message("done")

    span_exporter.clear()
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("slow", {"ms": 300}))
    spans = await wait_roots(span_exporter, 1, name="/slow")
    (root,) = [s for s in spans if s.name == "/slow"]
    events = [e for e in root.events if e.name == A.EVENT_LOOP_BLOCKED]
    assert len(events) == 1
    assert 280 <= events[0].attributes[A.BOT_LOOP_BLOCKED_MS] <= 3000
    assert events[0].attributes[A.BOT_LOOP_BLOCKED_THRESHOLD_MS] == 100.0
    assert isinstance(events[0].attributes[A.CODE_FUNCTION_NAME], str)

    span_exporter.clear()
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("slow", {"ms": 20}))
    spans = await wait_roots(span_exporter, 1, name="/slow")
    (root,) = [s for s in spans if s.name == "/slow"]
    assert [e for e in root.events if e.name == A.EVENT_LOOP_BLOCKED] == []


async def test_stall_in_the_step_that_ends_the_root_is_caught_as_the_root_ends(
    watch: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    watch()

    async def handler() -> None:
        with unit_root():
            await asyncio.sleep(0)
            time.sleep(0.15)  # the last thing before the root ends, in the same step

    await asyncio.create_task(handler())
    (event,) = blocked_events(span_exporter)
    assert 140 <= event.attributes[A.BOT_LOOP_BLOCKED_MS] <= 3000
    assert event.attributes[A.CODE_FUNCTION_NAME] == "test_stall_in_the_step_that_ends_the_root_is_caught_as_the_root_ends.<locals>.handler"
    assert [s.name for s in span_exporter.get_finished_spans()] == ["root"]


async def test_e2e_listener_that_blocks_as_its_last_statement(
    offline_discord: Any, discord_bot: Any, span_exporter: InMemorySpanExporter, instrumented: Any,
) -> None:
    instrumented(discord_bot)

    @discord_bot.listen("on_message")
    async def tally(msg: Any) -> None:
        time.sleep(0.3)  # nothing after it: the root may end in this very step

    offline_discord.inject(discord_bot, "MESSAGE_CREATE", offline_discord.payloads.message_create("hello"))
    spans = await wait_roots(span_exporter, 2)
    (root,) = [s for s in spans if s.parent is None and str(s.attributes.get(A.DISCORD_LISTENER, "")).endswith("tally")]
    found = [e.attributes for e in root.events if e.name == A.EVENT_LOOP_BLOCKED]
    assert len(found) == 1
    assert 280 <= found[0][A.BOT_LOOP_BLOCKED_MS] <= 3000
