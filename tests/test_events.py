"""Root spans for event listeners and task loop iterations; the flush on close."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from discord.ext import commands, tasks
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_bot import _attributes as A
from otel_bot import _guard, _tasks
from otel_bot.testing import CHANNEL_MESSAGES, OfflineDiscord
from tests.helpers_faults import FAULTS, failing_provider, lenient
from tests.helpers_roots import (
    assert_contained,
    assert_root,
    children,
    instrumented,
    roots,
    wait_roots,
    waiter,
)

__all__ = ["instrumented"]

SEND = f"POST {CHANNEL_MESSAGES}"


async def test_on_message_root(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)

    @discord_bot.listen("on_message")
    async def echo(msg: discord.Message) -> None:
        if not msg.author.bot:
            await msg.channel.send("echo")

    offline_discord.inject(
        discord_bot, "MESSAGE_CREATE", offline_discord.payloads.message_create("secret words")
    )
    spans = await wait_roots(span_exporter, 2)
    found = roots(spans)
    assert [s.name for s in found] == ["event on_message", "event on_message"]  # Bot.on_message + echo
    echo_root = next(s for s in found if s.attributes[A.DISCORD_LISTENER].endswith("echo"))
    assert_root(echo_root, "event on_message")
    assert_contained(spans, echo_root)
    attrs = echo_root.attributes
    assert attrs[A.DISCORD_EVENT_NAME] == "on_message"
    for key in (A.DISCORD_GUILD_ID, A.DISCORD_CHANNEL_ID, A.DISCORD_USER_ID, A.DISCORD_MESSAGE_ID):
        assert isinstance(attrs[key], str)
    assert isinstance(attrs[A.DISCORD_GATEWAY_LAG_MS], float)
    assert isinstance(attrs[A.DISCORD_MESSAGE_CREATED_AT], int)
    assert A.DISCORD_MESSAGE_CONTENT not in attrs  # opt-in only
    assert A.DISCORD_COMMAND_OUTCOME not in attrs
    assert [s.name for s in children(spans, echo_root)] == [SEND]


async def test_custom_event_error_and_on_error_inside_root(
    offline_discord: OfflineDiscord, make_bot: Any, span_exporter: Any, instrumented: Any
) -> None:
    seen: list[str] = []

    class MyBot(commands.Bot):
        async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
            seen.append(event_method)
            channel = self.get_channel(offline_discord.world.channel_id)
            assert isinstance(channel, discord.TextChannel)
            await channel.send("an event failed")

    bot = await make_bot(cls=MyBot)
    instrumented(bot)

    @bot.listen("on_ladder_update")
    async def broken(ladder_id: int) -> None:
        raise RuntimeError(f"ladder {ladder_id} broke")

    bot.dispatch("ladder_update", 7)
    spans = await wait_roots(span_exporter, 1, name="event on_ladder_update")
    root = roots(spans)[0]
    assert_root(root, "event on_ladder_update")
    assert seen == ["on_ladder_update"]
    assert root.status.status_code is StatusCode.ERROR
    assert [e.attributes[A.EXCEPTION_TYPE] for e in root.events if e.name == "exception"] == ["RuntimeError"]
    assert [s.name for s in children(spans, root)] == [SEND]
    assert_contained(spans, root)


async def test_event_selection(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, events={"on_wanted"})
    ran: list[str] = []

    for event in ("wanted", "unwanted", "typing"):

        async def listener(*args: Any, _event: str = event) -> None:
            ran.append(_event)

        discord_bot.add_listener(listener, f"on_{event}")
        discord_bot.dispatch(event)
    spans = await wait_roots(span_exporter, 1, name="event on_wanted")
    while len(ran) < 3:
        await asyncio.sleep(0)
    assert sorted(ran) == ["typing", "unwanted", "wanted"]
    assert [s.name for s in roots(span_exporter.get_finished_spans())] == ["event on_wanted"]
    assert spans


async def test_noisy_events_off_by_default(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    ran = asyncio.Event()

    @discord_bot.listen("on_typing")
    async def typing(*args: Any) -> None:
        ran.set()

    @discord_bot.listen("on_marker")
    async def marker() -> None:
        pass

    discord_bot.dispatch("typing", None, None, None)
    await ran.wait()
    discord_bot.dispatch("marker")
    spans = await wait_roots(span_exporter, 1, name="event on_marker")
    assert [s.name for s in roots(spans)] == ["event on_marker"]


async def test_event_dispatched_inside_a_unit_is_a_child(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, ignored_events=["message"])

    @discord_bot.command()
    async def announce(ctx: commands.Context[Any]) -> None:
        ctx.bot.dispatch("announcement", "hi")

    @discord_bot.listen("on_announcement")
    async def relay(text: str) -> None:
        channel = discord_bot.get_channel(offline_discord.world.channel_id)
        assert isinstance(channel, discord.TextChannel)
        await channel.send(text)

    offline_discord.inject(
        discord_bot, "MESSAGE_CREATE", offline_discord.payloads.message_create("!announce")
    )
    spans = await wait_roots(span_exporter, 1, name="!announce")
    assert [s.name for s in roots(spans)] == ["!announce"]
    root = roots(spans)[0]
    (child,) = children(spans, root)
    assert child.name == "event on_announcement" and child.kind is SpanKind.INTERNAL
    assert [s.name for s in children(spans, child)] == [SEND]
    assert_contained(spans, root)


# --- task loops ---------------------------------------------------------------------------------

ticks: list[int] = []


@tasks.loop(seconds=0.0, count=3)
async def refresh() -> None:  # created at import: long before instrument_bot
    ticks.append(refresh.current_loop)


async def test_task_loop_iterations_created_before_instrument(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    ticks.clear()
    original = refresh.coro
    instrumented(discord_bot)
    task = refresh.start()
    await task
    assert ticks == [0, 1, 2]
    spans = await wait_roots(span_exporter, 3, name="task refresh")
    found = roots(spans)
    assert len(found) == 3
    for root in found:
        assert_root(root, "task refresh")
        assert root.attributes[A.DISCORD_TASK_LOOP_NAME] == "refresh"
    assert sorted(r.attributes[A.DISCORD_TASK_LOOP_ITERATION] for r in found) == [0, 1, 2]
    assert refresh.coro is original  # put back when the loop stopped
    assert _tasks.original_coro(refresh) is original


async def test_task_loop_error_handler_inside_failed_iteration(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    channel = discord_bot.get_channel(offline_discord.world.channel_id)
    assert isinstance(channel, discord.TextChannel)
    handled: list[str] = []

    @tasks.loop(seconds=0.0, count=5)
    async def flaky() -> None:
        if flaky.current_loop == 1:
            raise ValueError("second iteration fails")

    @flaky.error
    async def flaky_error(error: BaseException) -> None:
        handled.append(type(error).__name__)
        await channel.send("loop failed")

    task = flaky.start()
    try:
        await task
    except ValueError:
        pass
    spans = await wait_roots(span_exporter, 2, name="task flaky")
    ok, failed = sorted(roots(spans), key=lambda s: s.start_time)
    assert handled == ["ValueError"]
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert [s.name for s in children(spans, failed)] == [SEND]
    assert_contained(spans, failed)


async def test_manual_loop_call_is_not_an_iteration(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    ticks.clear()
    await refresh()
    assert ticks == [0]
    assert not span_exporter.get_finished_spans()


async def test_close_flushes_pending_spans(
    offline_discord: OfflineDiscord, make_bot: Any, instrumented: Any
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    bot = await make_bot()
    instrumented(bot, tracer_provider=provider)
    done = asyncio.Event()

    @bot.listen("on_flush_me")
    async def flush_me() -> None:
        done.set()

    bot.dispatch("flush_me")
    await done.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not exporter.get_finished_spans()  # batched, not exported yet
    await bot.close()
    assert [s.name for s in exporter.get_finished_spans()] == ["event on_flush_me"]
    provider.shutdown()


class Refresher(commands.Cog):
    def __init__(self) -> None:
        self.runs = 0

    @tasks.loop(seconds=0.0, count=2)
    async def tick(self) -> None:
        self.runs += 1


async def test_cog_task_loop(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    cog = Refresher()
    await discord_bot.add_cog(cog)
    await cog.tick.start()
    assert cog.runs == 2
    spans = await wait_roots(span_exporter, 2, name="task tick")
    assert [s.attributes[A.DISCORD_TASK_LOOP_NAME] for s in roots(spans)] == [
        "Refresher.tick",
        "Refresher.tick",
    ]


# --- a failing sampler / span processor never reaches a nested listener (audit finding 11) -------


@pytest.mark.parametrize("fault", FAULTS)
async def test_failing_nested_event_span_never_reaches_the_listener(
    fault: str, offline_discord: OfflineDiscord, discord_bot: commands.Bot, instrumented: Any
) -> None:
    exporter = InMemorySpanExporter()
    provider = failing_provider(fault, exporter, fails=lambda name: name.startswith("event "))
    provider.add_span_processor(waiter())  # wakes wait_roots / waiter().wait on every span end
    instrumented(discord_bot, ignored_events=["message"], tracer_provider=provider)
    relayed: list[str] = []

    @discord_bot.command()
    async def announce(ctx: commands.Context[Any]) -> None:
        ctx.bot.dispatch("announcement", "hi")

    @discord_bot.listen("on_announcement")
    async def relay(text: str) -> None:
        channel = discord_bot.get_channel(offline_discord.world.channel_id)
        assert isinstance(channel, discord.TextChannel)
        await channel.send(text)
        relayed.append(text)

    with lenient():
        offline_discord.inject(
            discord_bot, "MESSAGE_CREATE", offline_discord.payloads.message_create("!announce")
        )
        await wait_roots(exporter, 1, name="!announce")
        spans = await waiter().wait(exporter, lambda spans: any(s.name == SEND for s in spans))
    assert relayed == ["hi"]
    (root,) = roots(spans)
    assert root.name == "!announce"
    assert not [s for s in spans if s.name.startswith("event ")]
    (send,) = [s for s in spans if s.name == SEND]
    assert send.parent is not None and root.context is not None
    assert send.parent.span_id == root.context.span_id and send.kind is SpanKind.CLIENT
    assert _guard.error_counts().get("events.start", 0) >= 1

