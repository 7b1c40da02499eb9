"""instrument_bot / uninstrument_bot / DiscordBotInstrumentor: the one table, reversibility,
idempotency, suppression, client kinds, and "the bot does not notice"."""

from __future__ import annotations

import asyncio
import importlib.metadata
import warnings
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider

import otel_bot
from otel_bot import _attributes as A
from otel_bot import _instrument, _roots, _state
from otel_bot._patching import _raw
from otel_bot.testing import CALLBACK, FOLLOWUP, OfflineDiscord
from tests.helpers_roots import assert_contained, assert_root, children, instrumented, roots, wait_roots

__all__ = ["instrumented"]


def snapshot() -> dict[tuple[int, str], Any]:
    """The raw object currently at every patch target (by owner id and name)."""
    found: dict[tuple[int, str], Any] = {}
    for patch in _instrument.patch_table():
        owner = patch.owner()
        if owner is None or not hasattr(owner, patch.name):
            continue
        found[(id(owner), patch.name)] = vars(owner).get(patch.name, _raw(owner, patch.name))
    return found


def test_table_covers_every_root_kind() -> None:
    names = {p.name for p in _instrument.patch_table()}
    for target in (
        "_from_interaction",
        "dispatch_view",
        "dispatch_modal",
        "schedule_dynamic_item_call",
        "_dispatch_item",
        "invoke",
        "dispatch_error",
        "_run_event",
        "_loop",
        "close",
    ):
        assert target in names


def test_public_api() -> None:
    assert otel_bot.instrument_bot is _instrument.instrument_bot
    assert otel_bot.uninstrument_bot is _instrument.uninstrument_bot
    assert otel_bot.DiscordBotInstrumentor is _instrument.DiscordBotInstrumentor
    assert otel_bot.__all__ == sorted(otel_bot.__all__)


async def test_uninstrument_restores_exact_originals_and_twice_warns(make_bot: Any) -> None:
    bot = await make_bot(ready=False)
    before = snapshot()
    otel_bot.instrument_bot(bot)
    try:
        during = snapshot()
        assert all(during[k] is not before[k] for k in before), "every target is wrapped"
        wrapped = [v for v in during.values() if callable(v)]
        assert all(getattr(w, "__otel_bot_original__", None) is not None for w in wrapped)
        # wrappers keep names
        for key, value in during.items():
            orig = before[key]
            if callable(orig):
                assert value.__name__ == orig.__name__ and value.__qualname__ == orig.__qualname__
        with pytest.warns(RuntimeWarning, match="already instrumented"):
            otel_bot.instrument_bot(bot)
        again = snapshot()
        assert all(again[k] is during[k] for k in during)
    finally:
        otel_bot.uninstrument_bot(bot)
    after = snapshot()
    assert all(after[k] is before[k] for k in before)
    assert not _instrument.is_patched()
    assert _state.settings() is None
    otel_bot.uninstrument_bot(bot)  # not instrumented: a no-op


async def test_second_bot_with_other_settings_warns_once_last_call_wins(make_bot: Any) -> None:
    """Settings are process-wide: a later call with different ones says so (once)."""
    bot1, bot2, bot3, bot4 = [await make_bot(ready=False) for _ in range(4)]
    provider = TracerProvider()
    try:
        otel_bot.instrument_bot(bot1, capture_user_ids=True)
        first = _state.settings()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            otel_bot.instrument_bot(bot2, capture_user_ids=True)  # the same settings: silent
        with pytest.warns(RuntimeWarning, match="one configuration per process, the last call wins") as caught:
            otel_bot.instrument_bot(bot3, tracer_provider=provider, capture_user_ids=False)
        (warning,) = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        message = str(warning.message)
        assert "capture_user_ids" in message and "tracer_provider" in message
        assert "max_attribute_length" not in message
        assert warning.filename == __file__  # points at the caller's line
        active = _state.settings()
        assert active is not None and active is not first
        assert active.capture_user_ids is False and active.tracer_provider is provider  # last call wins
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            otel_bot.instrument_bot(bot4, capture_user_ids=True)  # warned once already
        assert _state.settings() is not None and _state.settings().capture_user_ids is True  # type: ignore[union-attr]
    finally:
        for bot in (bot1, bot2, bot3, bot4):
            otel_bot.uninstrument_bot(bot)
    assert not _instrument.is_patched()
    # after everything is undone, a new process-wide configuration starts clean: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        otel_bot.instrument_bot(bot1)
        otel_bot.uninstrument_bot(bot1)
    assert "one configuration per process; the last call wins" in " ".join((otel_bot.instrument_bot.__doc__ or "").split())


async def test_invalid_options_change_nothing(make_bot: Any) -> None:
    bot = await make_bot(ready=False)
    before = snapshot()
    with pytest.raises(TypeError, match="unknown otel_bot option"):
        otel_bot.instrument_bot(bot, capture_userids=False)
    with pytest.raises(ValueError, match="max_attribute_length"):
        otel_bot.instrument_bot(bot, max_attribute_length=-1)
    with pytest.raises(TypeError, match="tracer_provider"):
        otel_bot.instrument_bot(bot, tracer_provider="not a provider")
    with pytest.raises(TypeError, match=r"discord\.Client"):
        otel_bot.instrument_bot(object())
    assert not _instrument.is_patched()
    assert bot not in _roots.CLIENTS
    assert all(snapshot()[k] is before[k] for k in before)


async def test_suppress_instrumentation_yields_no_spans(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    done = asyncio.Event()

    @discord_bot.tree.command(name="quiet", description="Quiet")
    async def quiet(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("shh")
        done.set()

    with suppress_instrumentation():
        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("quiet")
        )
        offline_discord.inject(discord_bot, "MESSAGE_CREATE", offline_discord.payloads.message_create("hi"))
    await done.wait()
    await offline_discord.wait_for_request("POST", CALLBACK)
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("quiet"))
    spans = await wait_roots(span_exporter, 1, name="/quiet")
    assert [s.name for s in roots(spans)] == ["/quiet"]  # only the unsuppressed one
    assert len(spans) == 2


@pytest.mark.parametrize(
    "cls", [discord.Client, commands.Bot, discord.AutoShardedClient, commands.AutoShardedBot]
)
async def test_every_client_kind_built_before_and_after(
    offline_discord: OfflineDiscord, make_bot: Any, span_exporter: Any, instrumented: Any, cls: type
) -> None:
    sharded = issubclass(cls, discord.AutoShardedClient)
    # The offline Discord's dispatch_ready speaks for one shard; sharded bots run without READY.
    kwargs: dict[str, Any] = {"shard_count": 2, "ready": False} if sharded else {}
    if issubclass(cls, commands.bot.BotBase):
        kwargs["command_prefix"] = "!"
    before = await make_bot(cls=cls, **kwargs)
    instrumented(before)
    after = await make_bot(cls=cls, **kwargs)  # built once the patches are in place
    instrumented(after)
    for bot in (before, after):
        tree = bot.tree if isinstance(bot, commands.bot.BotBase) else app_commands.CommandTree(bot)

        @tree.command(name="kind", description="Kind")
        async def kind(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("ok")

        offline_discord.inject(bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("kind"))
    spans = await wait_roots(span_exporter, 2, name="/kind")
    found = [s for s in roots(spans) if s.name == "/kind"]
    assert len(found) == 2
    guild_shard = (offline_discord.world.guild_id >> 22) % 2
    for root in found:
        assert_root(root, "/kind")
        assert_contained(spans, root)
        expected = guild_shard if sharded else 0
        assert root.attributes[A.DISCORD_SHARD_ID] == expected
        assert [s.name for s in children(spans, root)] == [f"POST {CALLBACK}"]


async def _scenario(fake: OfflineDiscord, bot: commands.Bot) -> tuple[list[str], list[str]]:
    """A bot that exercises slash, prefix, button, event and error paths; (requests, handler log)."""
    log: list[str] = []
    finished = asyncio.Event()
    pending = {"n": 4}

    def tick() -> None:
        pending["n"] -= 1
        if pending["n"] == 0:
            finished.set()

    @bot.tree.command(name="work", description="Work")
    async def work(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.followup.send("done")
        raise LookupError("after followup")

    @bot.tree.error
    async def tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.append(f"tree:{type(error).__name__}:{type(error.__cause__).__name__}")
        tick()

    @bot.command()
    async def fail(ctx: commands.Context[Any]) -> None:
        raise ArithmeticError("nope")

    @bot.event
    async def on_command_error(ctx: commands.Context[Any], error: commands.CommandError) -> None:
        log.append(f"command:{type(error).__name__}:{type(getattr(error, 'original', None)).__name__}")
        tick()

    class V(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="b", custom_id="scenario:b")
        async def b(self, interaction: discord.Interaction, button: Any) -> None:
            await interaction.response.send_message("clicked")
            raise KeyError("button")

        async def on_error(self, interaction: discord.Interaction, error: Exception, item: Any) -> None:
            log.append(f"view:{type(error).__name__}")
            tick()

    bot.add_view(V())

    @bot.listen("on_custom")
    async def custom(value: int) -> None:
        log.append(f"custom:{value}")
        tick()

    fake.clear_requests()
    fake.inject(bot, "INTERACTION_CREATE", fake.payloads.slash_command("work"))
    await fake.wait_for_request("POST", FOLLOWUP)
    fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create("!fail"))
    fake.inject(bot, "INTERACTION_CREATE", fake.payloads.button("scenario:b"))
    bot.dispatch("custom", 5)
    await asyncio.wait_for(finished.wait(), 5)
    return sorted(fake.route_keys()), sorted(log)


async def test_the_bot_does_not_notice(
    offline_discord: OfflineDiscord, make_bot: Any, span_exporter: Any, instrumented: Any
) -> None:
    plain = await make_bot()
    plain_requests, plain_log = await _scenario(offline_discord, plain)
    assert not span_exporter.get_finished_spans()
    traced = await make_bot()
    instrumented(traced)
    traced_requests, traced_log = await _scenario(offline_discord, traced)
    assert traced_requests == plain_requests
    assert traced_log == plain_log
    assert plain_log == sorted(
        [
            "tree:CommandInvokeError:LookupError",
            "command:CommandInvokeError:ArithmeticError",
            "view:KeyError",
            "custom:5",
        ]
    )
    spans = await wait_roots(span_exporter, 4)
    names = {s.name for s in roots(spans)}
    assert {"/work", "!fail", "button V.b", "event on_custom"} <= names


async def test_zero_code_instrumentor_traces_every_client(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any
) -> None:
    instrumentor = otel_bot.DiscordBotInstrumentor()
    assert list(instrumentor.instrumentation_dependencies()) == ["discord.py >= 2.4, < 2.8"]
    before = snapshot()
    instrumentor.instrument()
    try:
        assert _instrument.is_patched()

        @discord_bot.tree.command(name="zero", description="Zero")
        async def zero(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("ok")

        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("zero")
        )
        spans = await wait_roots(span_exporter, 1, name="/zero")
        assert_root(roots(spans)[0], "/zero")
        # instrument_bot + uninstrument_bot while zero-code is on keeps the patches
        otel_bot.instrument_bot(discord_bot)
        otel_bot.uninstrument_bot(discord_bot)
        assert _instrument.is_patched()
    finally:
        instrumentor.uninstrument()
    assert not _instrument.is_patched()
    assert all(snapshot()[k] is before[k] for k in before)


async def test_tracer_provider_option(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    own = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(own))
    instrumented(discord_bot, tracer_provider=provider)
    done = asyncio.Event()

    @discord_bot.listen("on_mine")
    async def mine() -> None:
        done.set()

    discord_bot.dispatch("mine")
    await done.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert [s.name for s in own.get_finished_spans()] == ["event on_mine"]
    assert not span_exporter.get_finished_spans()


def test_entry_point_registered() -> None:
    eps = importlib.metadata.entry_points(group="opentelemetry_instrumentor")
    ours = [ep for ep in eps if ep.value == "otel_bot._instrument:DiscordBotInstrumentor"]
    assert ours, "the opentelemetry_instrumentor entry point is not registered (reinstall the package)"
    assert ours[0].load() is otel_bot.DiscordBotInstrumentor


def test_no_warnings_on_first_instrument() -> None:
    client = discord.Client(intents=discord.Intents.none())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        otel_bot.instrument_bot(client)
    otel_bot.uninstrument_bot(client)
    assert not _instrument.is_patched()


ZERO_CODE_BOT = '''
"""A bot with no otel_bot code at all: run under opentelemetry-instrument."""
import os

import discord
import yarl
from discord.ext import commands

# Test harness only: point discord.py at the offline Discord.
discord.http.Route.BASE = os.environ["OFFLINE_DISCORD_API"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["OFFLINE_GATEWAY"])

bot = commands.Bot(
    command_prefix="!", intents=discord.Intents.default(), application_id=int(os.environ["OFFLINE_APP_ID"])
)


@bot.tree.command(name="hello", description="Hello")
async def hello(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("hi")


bot.run(os.environ["OFFLINE_TOKEN"], log_handler=None)
'''


async def test_opentelemetry_instrument_runs_a_bot_unchanged(
    offline_discord: OfflineDiscord, tmp_path: Any
) -> None:
    import os
    import sys

    from otel_bot.testing import OTLPReceiver

    script = tmp_path / "zero_code_bot.py"
    script.write_text(ZERO_CODE_BOT)
    instrument = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
    receiver = OTLPReceiver().start()
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "zero-code-bot",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BOT_CAPTURE_USER_IDS": "false",  # options reach the zero-code instrumentor by env
        "OFFLINE_DISCORD_API": offline_discord.api_base,
        "OFFLINE_APP_ID": str(offline_discord.application_id),
        "OFFLINE_GATEWAY": offline_discord.gateway_url,
        "OFFLINE_TOKEN": "offline.zero-code-token",
    }
    env.pop("OTEL_BOT_STRICT", None)
    proc = await asyncio.create_subprocess_exec(
        instrument,
        sys.executable,
        str(script),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await offline_discord.gateway.wait_for_identify(timeout=30)
        for _ in range(100):  # READY goes out right after IDENTIFY; wait for the bot to process it
            if await offline_discord.gateway_dispatch(
                "INTERACTION_CREATE", offline_discord.payloads.slash_command("hello")
            ):
                break
            await asyncio.sleep(0.05)
        await offline_discord.wait_for_request("POST", CALLBACK, timeout=15)
        await asyncio.to_thread(
            receiver.wait_for, lambda r: bool(r.spans_named("/hello")), 20.0, "the /hello root"
        )
        (root,) = receiver.spans_named("/hello")
        assert root.parent_span_id is None
        assert root.kind.name == "SERVER"
        assert root.resource["service.name"] == "zero-code-bot"
        assert root.scope_name == "otel_bot"
        assert root.attributes[A.DISCORD_COMMAND_NAME] == "hello"
        assert root.attributes[A.DISCORD_INTERACTION_ACKNOWLEDGED] is True
        assert A.DISCORD_USER_ID not in root.attributes
        await asyncio.to_thread(
            receiver.wait_for,
            lambda r: any(s.parent_span_id == root.span_id for s in r.spans),
            20.0,
            "the callback span",
        )
        kids = [s.name for s in receiver.spans if s.parent_span_id == root.span_id]
        assert kids == [f"POST {CALLBACK}"]
    finally:
        if proc.returncode is None:
            proc.terminate()
        out, _ = await proc.communicate()
        receiver.stop()
        print(out.decode(errors="replace"))
    assert b"Traceback" not in out, out.decode(errors="replace")


async def test_a_failing_provider_never_reaches_the_bot(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, instrumented: Any
) -> None:
    from otel_bot import _guard

    class BrokenTracer:
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("exporter pipeline exploded")

    class BrokenProvider:
        def get_tracer(self, *args: Any, **kwargs: Any) -> BrokenTracer:
            return BrokenTracer()

    instrumented(discord_bot, tracer_provider=BrokenProvider())
    done = asyncio.Event()

    @discord_bot.tree.command(name="still", description="Still works")
    async def still(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("fine")
        done.set()

    _guard.set_strict(False)
    try:
        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("still")
        )
        await asyncio.wait_for(done.wait(), 5)
        await offline_discord.wait_for_request("POST", CALLBACK)
    finally:
        _guard.set_strict(None)
    assert _guard.error_counts().get("roots.start", 0) >= 1


def test_zero_code_options_from_env() -> None:
    env = {
        "OTEL_BOT_CAPTURE_USER_IDS": "false",
        "OTEL_BOT_CAPTURE_MESSAGE_CONTENT": "yes",
        "OTEL_BOT_IGNORED_EVENTS": "typing, presence_update",
        "OTEL_BOT_THRESHOLDS": "ladder queue=800,ping=100",
        "OTEL_BOT_MAX_ATTRIBUTE_LENGTH": "64",
        "OTEL_BOT_ROOT_TIMEOUT_S": "none",
        "OTEL_BOT_USER_ID_HMAC_KEY": "k",
        "OTEL_BOT_STRICT": "1",  # not an option: ignored
    }
    options = _instrument.options_from_env(env)
    assert options == {
        "capture_user_ids": False,
        "capture_message_content": True,
        "ignored_events": frozenset({"typing", "presence_update"}),
        "thresholds": {"ladder queue": 800.0, "ping": 100.0},
        "max_attribute_length": 64,
        "root_timeout_s": None,
        "user_id_hmac_key": b"k",
    }
    settings = _instrument.build_settings(None, **options)
    assert settings.threshold_for("/ladder queue") == 800.0
    assert not settings.event_enabled("on_typing")
    with pytest.raises(ValueError, match="OTEL_BOT_TRACE_EVENTS"):
        _instrument.options_from_env({"OTEL_BOT_TRACE_EVENTS": "maybe"})
    with pytest.raises(ValueError, match="OTEL_BOT_THRESHOLDS"):
        _instrument.options_from_env({"OTEL_BOT_THRESHOLDS": "oops"})
