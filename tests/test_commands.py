"""Root spans for prefix and hybrid commands (both ways a hybrid is invoked), over the offline Discord."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord.ext import commands
from opentelemetry.trace import SpanKind, StatusCode

from otel_bot import _attributes as A
from otel_bot.testing import CALLBACK, CHANNEL_MESSAGES, ORIGINAL, OfflineDiscord
from tests.helpers_roots import assert_contained, assert_root, children, instrumented, roots, tree, wait_roots

__all__ = ["instrumented"]

SEND = f"POST {CHANNEL_MESSAGES}"


def message(fake: OfflineDiscord, content: str) -> Any:
    return fake.payloads.message_create(content)


async def test_prefix_command_tree(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, capture_message_content=True)

    @discord_bot.command()
    async def ping(ctx: commands.Context[Any]) -> None:
        await ctx.send("pong")

    offline_discord.inject(discord_bot, "MESSAGE_CREATE", message(offline_discord, "!ping"))
    spans = await wait_roots(span_exporter, 2)
    by_name = {s.name: s for s in roots(spans)}
    assert set(by_name) == {"!ping", "event on_message"}
    root = by_name["!ping"]
    assert_root(root, "!ping")
    assert_contained(spans, root)
    attrs = root.attributes
    assert attrs[A.DISCORD_COMMAND_NAME] == "ping"
    assert attrs[A.DISCORD_COMMAND_TYPE] == "prefix"
    assert attrs[A.DISCORD_COMMAND_PREFIX] == "!"
    assert attrs[A.DISCORD_COMMAND_OUTCOME] == "success"
    assert attrs[A.DISCORD_MESSAGE_CONTENT] == "!ping"
    for key in (A.DISCORD_GUILD_ID, A.DISCORD_CHANNEL_ID, A.DISCORD_USER_ID, A.DISCORD_MESSAGE_ID):
        assert isinstance(attrs[key], str)
    assert isinstance(attrs[A.DISCORD_SHARD_ID], int)
    assert A.DISCORD_COMMAND_HYBRID not in attrs
    assert [s.name for s in children(spans, root)] == [SEND]
    # the command links to the on_message root it was invoked from
    event_root = by_name["event on_message"]
    assert [link.context.span_id for link in root.links] == [event_root.context.span_id]
    assert len(tree(spans, event_root)) == 1


async def test_errors_and_handlers_nest_inside_root(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, ignored_events=["message"])
    handled: list[str] = []

    @discord_bot.command()
    async def boom(ctx: commands.Context[Any]) -> None:
        raise ZeroDivisionError("bad math")

    @boom.error
    async def boom_error(ctx: commands.Context[Any], error: commands.CommandError) -> None:
        handled.append("local")
        await ctx.send("local handler")

    @discord_bot.listen("on_command_error")
    async def global_handler(ctx: commands.Context[Any], error: commands.CommandError) -> None:
        await asyncio.sleep(0.01)
        handled.append(type(error).__name__)
        await ctx.send("global handler")

    offline_discord.inject(discord_bot, "MESSAGE_CREATE", message(offline_discord, "!boom"))
    spans = await wait_roots(span_exporter, 1, name="!boom")
    root = roots(spans)[0]
    assert handled == ["local", "CommandInvokeError"]
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes[A.DISCORD_COMMAND_OUTCOME] == "error"
    assert [e.attributes[A.EXCEPTION_TYPE] for e in root.events if e.name == "exception"] == [
        "ZeroDivisionError"
    ]
    kids = {s.name: s for s in children(spans, root)}
    assert set(kids) == {SEND, "event on_command_error"}
    listener = kids["event on_command_error"]
    assert listener.kind is SpanKind.INTERNAL
    assert listener.attributes[A.DISCORD_LISTENER].endswith("global_handler")
    assert [s.name for s in children(spans, listener)] == [SEND]
    assert_contained(spans, root)
    assert len(roots(spans)) == 1


async def test_check_failure_and_cooldown_outcomes(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, ignored_events=["message"])
    errors: list[str] = []

    @discord_bot.command()
    @commands.check(lambda ctx: False)
    async def locked(ctx: commands.Context[Any]) -> None:
        pass

    @discord_bot.command()
    @commands.cooldown(1, 60.0)
    async def once(ctx: commands.Context[Any]) -> None:
        pass

    @discord_bot.command()
    async def needs(ctx: commands.Context[Any], amount: int) -> None:
        pass

    @discord_bot.event
    async def on_command_error(ctx: commands.Context[Any], error: commands.CommandError) -> None:
        errors.append(type(error).__name__)

    for text in ("!locked", "!once", "!once", "!needs"):
        offline_discord.inject(discord_bot, "MESSAGE_CREATE", message(offline_discord, text))
    spans = await wait_roots(span_exporter, 4)
    outcomes = [
        (s.name, s.attributes[A.DISCORD_COMMAND_OUTCOME])
        for s in sorted(roots(spans), key=lambda s: s.start_time)
    ]
    assert outcomes == [
        ("!locked", "check_failed"),
        ("!once", "success"),
        ("!once", "cooldown"),
        ("!needs", "bad_argument"),
    ]
    for root in roots(spans):
        assert root.status.status_code is StatusCode.UNSET
        assert_contained(spans, root)
    assert sorted(errors) == sorted(["CheckFailure", "CommandOnCooldown", "MissingRequiredArgument"])


async def test_unknown_command_and_plain_messages_open_no_command_root(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    offline_discord.inject(discord_bot, "MESSAGE_CREATE", message(offline_discord, "!nope 123"))
    offline_discord.inject(discord_bot, "MESSAGE_CREATE", message(offline_discord, "hello there"))
    spans = await wait_roots(span_exporter, 2)
    assert [s.name for s in roots(spans)] == ["event on_message", "event on_message"]


class Ladder(commands.Cog):
    def __init__(self) -> None:
        self.errors: list[str] = []

    @commands.hybrid_command(name="rank", description="Your rank")
    async def rank(self, ctx: commands.Context[Any]) -> None:
        await ctx.send("rank 1")

    @commands.hybrid_command(name="crash", description="Crash")
    async def crash(self, ctx: commands.Context[Any]) -> None:
        await ctx.defer()
        raise KeyError("missing ladder")

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        self.errors.append(type(error).__name__)
        await ctx.send("cog handler")


async def test_hybrid_both_ways_one_root_each(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, ignored_events=["message"])
    await discord_bot.add_cog(Ladder())
    offline_discord.inject(discord_bot, "MESSAGE_CREATE", message(offline_discord, "!rank"))
    await wait_roots(span_exporter, 1, name="!rank")
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("rank"))
    spans = await wait_roots(span_exporter, 1, name="/rank")
    prefix, slash = sorted(roots(spans), key=lambda s: s.start_time)
    assert len(roots(spans)) == 2
    assert_root(prefix, "!rank")
    assert_root(slash, "/rank")
    assert prefix.attributes[A.DISCORD_COMMAND_HYBRID] is True
    assert slash.attributes[A.DISCORD_COMMAND_HYBRID] is True
    assert prefix.attributes[A.DISCORD_COG] == "Ladder"
    assert slash.attributes[A.DISCORD_COG] == "Ladder"
    assert prefix.attributes[A.DISCORD_COMMAND_TYPE] == "prefix"
    assert slash.attributes[A.DISCORD_COMMAND_TYPE] == "chat_input"
    assert [s.name for s in children(spans, prefix)] == [SEND]
    slash_kids = [s.name for s in children(spans, slash)]
    assert slash_kids[0] == f"POST {CALLBACK}"
    # discord.py < 2.5 also fetches the response message after ctx.send (GET .../@original)
    assert set(slash_kids[1:]) <= {f"GET {ORIGINAL}"}
    for root in (prefix, slash):
        assert_contained(spans, root)


async def test_hybrid_errors_both_ways(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, ignored_events=["message"])
    cog = Ladder()
    await discord_bot.add_cog(cog)
    offline_discord.inject(discord_bot, "MESSAGE_CREATE", message(offline_discord, "!crash"))
    await wait_roots(span_exporter, 1, name="!crash")
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("crash"))
    spans = await wait_roots(span_exporter, 1, name="/crash")
    assert cog.errors == ["CommandInvokeError", "HybridCommandError"]
    assert len(roots(spans)) == 2
    for root in roots(spans):
        assert root.status.status_code is StatusCode.ERROR
        assert root.attributes[A.DISCORD_COMMAND_OUTCOME] == "error"
        assert [e.attributes[A.EXCEPTION_TYPE] for e in root.events if e.name == "exception"] == ["KeyError"]
        assert_contained(spans, root)
        assert len(children(spans, root)) >= 1  # the cog handler's reply nests inside


async def test_command_started_from_own_listener_is_its_own_root(
    offline_discord: OfflineDiscord, make_bot: Any, span_exporter: Any, instrumented: Any
) -> None:
    """A bot overriding on_message and calling process_commands: still one command root."""

    class MyBot(commands.Bot):
        async def on_message(self, msg: discord.Message) -> None:
            if msg.author.bot:
                return
            await self.process_commands(msg)

    bot = await make_bot(cls=MyBot)
    instrumented(bot)

    @bot.command()
    async def hi(ctx: commands.Context[Any]) -> None:
        await ctx.send("hi")

    offline_discord.inject(bot, "MESSAGE_CREATE", message(offline_discord, "!hi"))
    spans = await wait_roots(span_exporter, 2)
    assert sorted(s.name for s in roots(spans)) == ["!hi", "event on_message"]
    event_root = next(s for s in roots(spans) if s.name == "event on_message")
    assert event_root.attributes[A.DISCORD_LISTENER] == "MyBot.on_message"
