"""Root spans for application commands: slash (groups), context menus, autocomplete; the
acknowledgement clock; errors and outcomes. End to end over the offline Discord."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from otel_bot import _attributes as A
from otel_bot import _interactions
from otel_bot.testing import CALLBACK, FOLLOWUP, OfflineDiscord
from tests.helpers_roots import assert_contained, assert_root, children, instrumented, roots, tree, wait_roots

__all__ = ["instrumented"]

ROOT_KEYS_COMMON = {
    A.DISCORD_INTERACTION_ID: str,
    A.DISCORD_INTERACTION_TYPE: str,
    A.DISCORD_INTERACTION_CREATED_AT: int,
    A.DISCORD_GATEWAY_LAG_MS: float,
    A.DISCORD_GUILD_ID: str,
    A.DISCORD_CHANNEL_ID: str,
    A.DISCORD_USER_ID: str,
    A.DISCORD_LOCALE: str,
    A.DISCORD_GUILD_LOCALE: str,
    A.DISCORD_SHARD_ID: int,
    A.DISCORD_COMMAND_OUTCOME: str,
    A.DISCORD_INTERACTION_ACKNOWLEDGED: bool,
    A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED: bool,
    A.BOT_FLOW_SEVERITY: str,
}


def assert_types(attrs: Any, expected: dict[str, type]) -> None:
    for key, typ in expected.items():
        assert key in attrs, f"missing {key}"
        assert type(attrs[key]) is typ, f"{key}: {type(attrs[key]).__name__} is not {typ.__name__}"


def ladder_group(done: asyncio.Event, *, delay: float = 0.0) -> app_commands.Group:
    ladder = app_commands.Group(name="ladder", description="Ladder")

    @ladder.command(name="queue", description="Queue up")
    async def queue(interaction: discord.Interaction, region: str) -> None:
        await interaction.response.defer()
        await interaction.followup.send(f"queued in {region}")
        done.set()

    @queue.autocomplete("region")
    async def region_ac(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name="eu", value="eu")]

    return ladder


async def test_slash_subcommand_span_tree(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    done = asyncio.Event()
    discord_bot.tree.add_command(ladder_group(done))
    offline_discord.clear_requests()
    payload = offline_discord.payloads.slash_command("ladder", {"region": "eu"}, subcommand="queue")
    tracer = trace.get_tracer("user")
    with tracer.start_as_current_span("user bot.start()"):  # must not become the parent
        offline_discord.inject(discord_bot, "INTERACTION_CREATE", payload)
    spans = await wait_roots(span_exporter, 1, name="/ladder queue")
    root = next(s for s in roots(spans) if s.name == "/ladder queue")
    assert_root(root, "/ladder queue")
    assert_contained(spans, root)
    attrs = root.attributes
    assert_types(attrs, {**ROOT_KEYS_COMMON, A.DISCORD_COMMAND_NAME: str, A.DISCORD_COMMAND_TYPE: str})
    assert attrs[A.DISCORD_INTERACTION_ID] == payload["id"]
    assert attrs[A.DISCORD_INTERACTION_TYPE] == "application_command"
    assert attrs[A.DISCORD_COMMAND_NAME] == "ladder queue"
    assert attrs[A.DISCORD_COMMAND_TYPE] == "chat_input"
    assert attrs[A.DISCORD_COMMAND_OUTCOME] == "success"
    assert attrs[A.DISCORD_INTERACTION_ACKNOWLEDGED] is True
    assert attrs[A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED] is False
    assert attrs[A.DISCORD_INTERACTION_RESPONSE_TYPE] == "deferred"
    assert isinstance(attrs[A.DISCORD_INTERACTION_ACK_MS], float)
    assert attrs[A.DISCORD_GUILD_ID] == str(offline_discord.world.guild_id)
    assert attrs[A.DISCORD_USER_ID] == str(offline_discord.world.user_id)
    assert attrs[A.DISCORD_LOCALE] == "en-US"
    assert A.DISCORD_COMMAND_OPTIONS not in attrs  # option values are opt-in
    assert root.status.status_code is StatusCode.UNSET
    rest = sorted(s.name for s in children(spans, root))
    assert rest == [f"POST {CALLBACK}", f"POST {FOLLOWUP}"]
    assert all(s.kind is SpanKind.CLIENT for s in children(spans, root))
    # the user's span is its own trace
    outer = next(s for s in spans if s.name == "user bot.start()")
    assert outer.context.trace_id != root.context.trace_id
    assert _interactions.open_roots() == 0


async def test_ack_ms_follows_fake_latency(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)

    @discord_bot.tree.command(name="slow", description="Slow")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer()

    offline_discord.set_latency(100, "POST", CALLBACK)
    payload = offline_discord.payloads.slash_command("slow")
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", payload)
    spans = await wait_roots(span_exporter, 1, name="/slow")
    root = roots(spans)[0]
    ack_ms = root.attributes[A.DISCORD_INTERACTION_ACK_MS]
    record = offline_discord.interaction(payload["id"])
    fake_received = record.ack_ms - record.created_ms  # when the fake got the callback
    assert 80 <= ack_ms <= 2000
    assert fake_received + 80 <= ack_ms <= fake_received + 1000  # its answer came ~100 ms later
    assert root.attributes[A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED] is False


async def test_stale_interaction_misses_deadline(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    seen: list[type] = []

    @discord_bot.tree.command(name="late", description="Late")
    async def late(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.send_message("hi")
        except discord.NotFound as exc:
            seen.append(type(exc))

    payload = offline_discord.payloads.slash_command("late", age_ms=3500)
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", payload)
    spans = await wait_roots(span_exporter, 1, name="/late")
    root = roots(spans)[0]
    assert seen == [discord.NotFound]
    attrs = root.attributes
    assert attrs[A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED] is True
    assert attrs[A.DISCORD_INTERACTION_ACKNOWLEDGED] is False
    assert attrs[A.DISCORD_INTERACTION_ACK_MS] > 3500
    assert attrs[A.DISCORD_GATEWAY_LAG_MS] >= 3500
    events = [e for e in root.events if e.name == A.EVENT_ACK_DEADLINE_MISSED]
    assert len(events) == 1 and events[0].attributes[A.DISCORD_ERROR_CODE] == 10062
    callback = next(s for s in children(spans, root) if s.name == f"POST {CALLBACK}")
    assert callback.attributes[A.DISCORD_ERROR_CODE] == 10062
    assert_contained(spans, root)


async def test_user_error_recorded_and_handlers_inside_root(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    handled: list[str] = []

    @discord_bot.tree.command(name="boom", description="Boom")
    async def boom(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        raise ValueError("kaput")

    @boom.error
    async def boom_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        handled.append("local")
        await asyncio.sleep(0.01)

    @discord_bot.tree.error
    async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        handled.append(type(error).__name__)
        await interaction.followup.send("sorry")  # REST work of the error handler

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("boom"))
    spans = await wait_roots(span_exporter, 1, name="/boom")
    root = roots(spans)[0]
    assert handled == ["local", "CommandInvokeError"]
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes[A.DISCORD_COMMAND_OUTCOME] == "error"
    exc_events = [e for e in root.events if e.name == "exception"]
    assert len(exc_events) == 1
    assert exc_events[0].attributes[A.EXCEPTION_TYPE] == "ValueError"  # the original, unwrapped
    names = sorted(s.name for s in children(spans, root))
    assert names == [f"POST {CALLBACK}", f"POST {FOLLOWUP}"]  # the handler's followup nests inside
    assert_contained(spans, root)


@pytest.mark.parametrize(
    ("decorator", "outcome"),
    [
        (app_commands.check(lambda i: False), "check_failed"),
        (app_commands.checks.cooldown(1, 60.0), "cooldown"),
        (app_commands.checks.has_role("no such role"), "missing_permissions"),
    ],
)
async def test_check_outcomes_are_not_errors(
    offline_discord: OfflineDiscord,
    discord_bot: commands.Bot,
    span_exporter: Any,
    instrumented: Any,
    decorator: Any,
    outcome: str,
) -> None:
    instrumented(discord_bot)
    errors: list[str] = []

    @discord_bot.tree.command(name="guarded", description="Guarded")
    @decorator
    async def guarded(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok")

    @discord_bot.tree.error
    async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        errors.append(type(error).__name__)
        await interaction.response.send_message("no", ephemeral=True)

    count = 2 if outcome == "cooldown" else 1
    for _ in range(count):
        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("guarded")
        )
        await wait_roots(span_exporter, 1 if _ == 0 else 2, name="/guarded")
    spans = list(span_exporter.get_finished_spans())
    root = [s for s in roots(spans) if s.name == "/guarded"][-1]
    assert root.attributes[A.DISCORD_COMMAND_OUTCOME] == outcome
    assert root.status.status_code is StatusCode.UNSET
    events = [e for e in root.events if e.name == A.EVENT_COMMAND_OUTCOME]
    assert len(events) == 1 and events[0].attributes[A.DISCORD_COMMAND_OUTCOME] == outcome
    assert isinstance(events[0].attributes[A.EXCEPTION_TYPE], str)
    assert not [e for e in root.events if e.name == "exception"]
    assert len(errors) == 1  # the cooldown run: only the second one fails
    assert_contained(spans, root)


async def test_context_menus(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)

    @discord_bot.tree.context_menu(name="Report")
    async def report(interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.send_message("reported", ephemeral=True)

    @discord_bot.tree.context_menu(name="Bookmark")
    async def bookmark(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.defer(ephemeral=True)

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.user_command("Report"))
    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.message_command("Bookmark")
    )
    spans = await wait_roots(span_exporter, 2)
    by_name = {s.name: s for s in roots(spans)}
    assert set(by_name) == {"user Report", "message Bookmark"}
    user_root, msg_root = by_name["user Report"], by_name["message Bookmark"]
    for root in (user_root, msg_root):
        assert_root(root, root.name)
        assert_contained(spans, root)
        assert [s.name for s in children(spans, root)] == [f"POST {CALLBACK}"]
    assert user_root.attributes[A.DISCORD_COMMAND_TYPE] == "user"
    assert user_root.attributes[A.DISCORD_COMMAND_NAME] == "Report"
    assert user_root.attributes[A.DISCORD_INTERACTION_RESPONSE_TYPE] == "message"
    assert msg_root.attributes[A.DISCORD_COMMAND_TYPE] == "message"
    assert msg_root.attributes[A.DISCORD_INTERACTION_RESPONSE_TYPE] == "deferred"


async def test_autocomplete_one_root_per_request(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    discord_bot.tree.add_command(ladder_group(asyncio.Event()))
    for typed in ("e", "eu"):
        payload = offline_discord.payloads.autocomplete("ladder", "region", typed, subcommand="queue")
        offline_discord.inject(discord_bot, "INTERACTION_CREATE", payload)
    name = "autocomplete /ladder queue region"
    spans = await wait_roots(span_exporter, 2, name=name)
    found = [s for s in roots(spans) if s.name == name]
    assert len(found) == 2 and len(roots(spans)) == 2
    for root in found:
        assert_root(root, name)
        assert_contained(spans, root)
        assert root.attributes[A.DISCORD_INTERACTION_TYPE] == "autocomplete"
        assert root.attributes[A.DISCORD_AUTOCOMPLETE_OPTION] == "region"
        assert root.attributes[A.DISCORD_COMMAND_NAME] == "ladder queue"
        assert root.attributes[A.DISCORD_INTERACTION_RESPONSE_TYPE] == "autocomplete"
        assert [s.name for s in children(spans, root)] == [f"POST {CALLBACK}"]


async def test_autocomplete_error_is_recorded(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)

    @discord_bot.tree.command(name="pick", description="Pick")
    async def pick(interaction: discord.Interaction, thing: str) -> None:
        await interaction.response.send_message(thing)

    @pick.autocomplete("thing")
    async def thing_ac(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        raise KeyError("no choices")

    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.autocomplete("pick", "thing")
    )
    spans = await wait_roots(span_exporter, 1, name="autocomplete /pick thing")
    root = roots(spans)[0]
    assert root.status.status_code is StatusCode.ERROR
    assert [e.attributes[A.EXCEPTION_TYPE] for e in root.events if e.name == "exception"] == ["KeyError"]
    assert root.attributes[A.DISCORD_INTERACTION_ACKNOWLEDGED] is False  # never answered
    assert root.attributes[A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED] is True


async def test_root_waits_for_tasks_the_command_started(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    gate = asyncio.Event()
    background: list[asyncio.Task[Any]] = []

    async def later(channel: Any) -> None:
        await gate.wait()
        await channel.send("done later")

    @discord_bot.tree.command(name="spawn", description="Spawn")
    async def spawn(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("started")
        background.append(asyncio.create_task(later(interaction.channel)))

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("spawn"))
    await offline_discord.wait_for_request("POST", CALLBACK)
    while not background:
        await asyncio.sleep(0)
    for _ in range(20):  # let the command's own task finish
        await asyncio.sleep(0)
    assert not roots(span_exporter.get_finished_spans())  # still waiting for the task
    gate.set()
    spans = await wait_roots(span_exporter, 1, name="/spawn")
    root = roots(spans)[0]
    names = sorted(s.name for s in children(spans, root))
    assert names == sorted([f"POST {CALLBACK}", "POST /channels/{channel_id}/messages"])
    assert_contained(spans, root)


async def test_privacy_switches_and_opt_ins(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    key = b"secret-key"
    hooked: list[tuple[str, Any]] = []
    instrumented(
        discord_bot,
        user_id_hmac_key=key,
        capture_option_values=True,
        max_attribute_length=20,
        root_hook=lambda span, source: hooked.append((type(source).__name__, span.is_recording())),
    )

    @discord_bot.tree.command(name="say", description="Say")
    async def say(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message("ok")

    offline_discord.inject(
        discord_bot,
        "INTERACTION_CREATE",
        offline_discord.payloads.slash_command("say", {"text": "hello world, long"}),
    )
    spans = await wait_roots(span_exporter, 1, name="/say")
    attrs = roots(spans)[0].attributes
    expected = hmac.new(key, str(offline_discord.world.user_id).encode(), hashlib.sha256).hexdigest()
    assert attrs[A.DISCORD_USER_ID] == expected
    options = attrs[A.DISCORD_COMMAND_OPTIONS]
    assert isinstance(options, str) and len(options) == 20
    assert json.dumps({"text": "hello world, long"}).startswith(options)
    assert hooked == [("Interaction", True)]


async def test_user_ids_off(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, capture_user_ids=False)

    @discord_bot.tree.command(name="anon", description="Anon")
    async def anon(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok")

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("anon"))
    spans = await wait_roots(span_exporter, 1, name="/anon")
    for span in tree(spans, roots(spans)[0]):
        assert A.DISCORD_USER_ID not in span.attributes


async def test_uninstrumented_client_passes_through(
    offline_discord: OfflineDiscord, make_bot: Any, span_exporter: Any, instrumented: Any
) -> None:
    traced = await make_bot()
    untraced = await make_bot()
    instrumented(traced)
    for bot in (traced, untraced):

        @bot.tree.command(name="hello", description="Hello")
        async def hello(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("hi")

    offline_discord.inject(untraced, "INTERACTION_CREATE", offline_discord.payloads.slash_command("hello"))
    await offline_discord.wait_for_request("POST", CALLBACK)
    offline_discord.inject(traced, "INTERACTION_CREATE", offline_discord.payloads.slash_command("hello"))
    spans = await wait_roots(span_exporter, 1, name="/hello")
    assert len(roots(spans)) == 1


async def test_unit_of_work_is_current_in_handlers(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    from otel_bot import _state

    instrumented(discord_bot)
    seen: list[Any] = []

    @discord_bot.tree.command(name="unit", description="Unit")
    async def unit(interaction: discord.Interaction) -> None:
        seen.append(_state.get_unit())
        await interaction.response.send_message("ok")

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("unit"))
    spans = await wait_roots(span_exporter, 1, name="/unit")
    root = roots(spans)[0]
    (work,) = seen
    assert work is not None and work.kind == "interaction" and work.flow == "unit"
    assert work.span.get_span_context().span_id == root.context.span_id
    assert work.ended is True
    assert _state.get_unit() is None


async def test_root_timeout_ends_a_root_waiting_on_a_stuck_task(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, root_timeout_s=0.05)
    forever = asyncio.Event()
    stuck: list[asyncio.Task[Any]] = []

    @discord_bot.tree.command(name="stuck", description="Stuck")
    async def stuck_cmd(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok")
        stuck.append(asyncio.create_task(forever.wait()))

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("stuck"))
    spans = await wait_roots(span_exporter, 1, name="/stuck")
    root = roots(spans)[0]
    assert root.attributes[A.BOT_ROOT_TIMED_OUT] is True
    assert root.attributes[A.BOT_ROOT_PENDING_TASKS] == 1
    assert not stuck[0].done()
    forever.set()
    await stuck[0]


def test_record_callback_ignores_unknown_interactions() -> None:
    _interactions.record_callback(1234, status=204, discord_code=None, end_ns=0, callback_type=4)
    assert _interactions.open_roots() == 0


async def test_user_task_factory_is_chained_and_restored(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any
) -> None:
    import otel_bot

    loop = asyncio.get_running_loop()
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(getattr(coro, "__qualname__", "?"))
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        otel_bot.instrument_bot(discord_bot)

        @discord_bot.tree.command(name="chain", description="Chain")
        async def chain(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("ok")

        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("chain")
        )
        spans = await wait_roots(span_exporter, 1, name="/chain")
        assert_contained(spans, roots(spans)[0])
        assert any("_from_interaction" in name for name in made)  # the user's factory still ran
        otel_bot.uninstrument_bot(discord_bot)
        assert loop.get_task_factory() is factory
    finally:
        otel_bot.uninstrument_bot(discord_bot)
        loop.set_task_factory(None)


async def test_without_rest_spans_acknowledgement_comes_from_discord_py(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot, trace_rest=False)

    @discord_bot.tree.command(name="norest", description="No REST spans")
    async def norest(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok")

    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("norest")
    )
    spans = await wait_roots(span_exporter, 1, name="/norest")
    assert len(spans) == 1
    attrs = spans[0].attributes
    assert attrs[A.DISCORD_INTERACTION_ACKNOWLEDGED] is True
    assert attrs[A.DISCORD_INTERACTION_RESPONSE_TYPE] == "message"
    assert attrs[A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED] is False
    assert A.DISCORD_INTERACTION_ACK_MS not in attrs  # no clock without the callback span


async def test_cancellation_is_not_an_error(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)

    @discord_bot.tree.command(name="cancel", description="Cancelled")
    async def cancel(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        raise asyncio.CancelledError()

    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("cancel")
    )
    spans = await wait_roots(span_exporter, 1, name="/cancel")
    root = roots(spans)[0]
    assert root.status.status_code is StatusCode.UNSET
    assert root.attributes[A.DISCORD_COMMAND_OUTCOME] == "cancelled"
    assert not [e for e in root.events if e.name == "exception"]
    assert_contained(spans, root)


async def test_tree_interaction_check_refusal_is_an_outcome(
    offline_discord: OfflineDiscord, make_bot: Any, span_exporter: Any, instrumented: Any
) -> None:
    class Picky(app_commands.CommandTree[Any]):
        async def interaction_check(self, interaction: discord.Interaction) -> bool:
            return False

    bot = await make_bot(tree_cls=Picky)
    instrumented(bot)

    @bot.tree.command(name="refused", description="Refused")
    async def refused(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("never")

    offline_discord.inject(bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("refused"))
    spans = await wait_roots(span_exporter, 1, name="/refused")
    root = roots(spans)[0]
    assert root.attributes[A.DISCORD_COMMAND_OUTCOME] == "check_failed"
    assert root.status.status_code is StatusCode.UNSET
    assert [
        e.attributes[A.DISCORD_COMMAND_OUTCOME] for e in root.events if e.name == A.EVENT_COMMAND_OUTCOME
    ] == ["check_failed"]
