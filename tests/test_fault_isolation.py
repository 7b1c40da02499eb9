"""Guarantee 4: our own bugs stay ours.

With strict mode OFF (as in production), faults are injected into otel_bot's own code --
attribute extraction (interactions, components, prefix commands, event listeners, REST), the
threshold verdict, a user ``root_hook``, and the console waterfall (its formatter, and a stream
that raises). In every case:

* the bot's handler still runs and its response reaches Discord (the offline fake);
* the root span is still exported and ended (with less detail);
* the failure is logged once per kind (a WARNING on the ``otel_bot`` logger, however many times
  it happens) and counted in :func:`otel_bot._guard.error_counts` every time.

Each test fails without the guard around the faulty code: the injected exception would then
escape into discord.py (the handler would not run, or the parser would raise).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import discord
import pytest
from discord.ext import commands
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_bot import WaterfallProcessor, _guard
from otel_bot.testing import CALLBACK, CHANNEL_MESSAGES, FOLLOWUP, OfflineDiscord
from tests.helpers_roots import RootWaiter, instrumented, roots, wait_roots

__all__ = ["instrumented"]

pytestmark = pytest.mark.timeout(60)

REPEAT = 3  # each fault happens this many times: logged once, counted REPEAT times


class Boom(RuntimeError):
    """The injected fault."""


def boom(*_args: Any, **_kwargs: Any) -> Any:
    raise Boom("injected telemetry fault")


@pytest.fixture
def lenient() -> Iterator[None]:
    """Production mode: internal errors are logged and swallowed, not re-raised."""
    _guard.set_strict(False)
    _guard.reset()
    try:
        yield
    finally:
        _guard.set_strict(None)
        _guard.reset()


@pytest.fixture
def otel_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="otel_bot")
    return caplog


def internal_error_logs(caplog: pytest.LogCaptureFixture, kind: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("otel_bot")
        and "internal error" in r.getMessage()
        and f" {kind};" in r.getMessage()
    ]


def assert_isolated(caplog: pytest.LogCaptureFixture, kind: str, times: int = REPEAT) -> None:
    """Logged once (with the traceback), counted ``times``."""
    logged = internal_error_logs(caplog, kind)
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert logged[0].levelno == logging.WARNING
    assert logged[0].exc_info is not None and isinstance(logged[0].exc_info[1], Boom)
    assert _guard.error_counts().get(kind) == times, _guard.error_counts()


# --- scenarios: each runs a real handler REPEAT times and waits for its response at the fake ----


async def run_slash(fake: OfflineDiscord, bot: commands.Bot, exporter: InMemorySpanExporter) -> list[Any]:
    ran: list[int] = []

    @bot.tree.command(name="ping", description="Ping")
    async def ping(interaction: discord.Interaction) -> None:
        ran.append(interaction.id)
        await interaction.response.send_message("pong")

    fake.clear_requests()
    for _ in range(REPEAT):
        fake.inject(bot, "INTERACTION_CREATE", fake.payloads.slash_command("ping"))
    await fake.wait_for_request("POST", CALLBACK, count=REPEAT)
    spans = await wait_roots(exporter, REPEAT)
    assert len(ran) == REPEAT
    answers = fake.requests_for("POST", CALLBACK)
    assert [(r.json or {}).get("type") for r in answers] == [4] * REPEAT
    assert all(r.status is not None and 200 <= r.status < 300 for r in answers)
    return spans


class PingView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.clicks = 0

    @discord.ui.button(label="Go", custom_id="fault:go:1")
    async def go(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.clicks += 1
        await interaction.response.send_message("clicked")


async def run_button(fake: OfflineDiscord, bot: commands.Bot, exporter: InMemorySpanExporter) -> list[Any]:
    view = PingView()
    bot.add_view(view)
    fake.clear_requests()
    for _ in range(REPEAT):
        fake.inject(bot, "INTERACTION_CREATE", fake.payloads.button("fault:go:1"))
    await fake.wait_for_request("POST", CALLBACK, count=REPEAT)
    spans = await wait_roots(exporter, REPEAT)
    assert view.clicks == REPEAT
    return spans


async def run_prefix(fake: OfflineDiscord, bot: commands.Bot, exporter: InMemorySpanExporter) -> list[Any]:
    ran: list[str] = []

    @bot.command(name="hello")
    async def hello(ctx: commands.Context[Any]) -> None:
        ran.append(ctx.message.content)
        await ctx.send("hi")

    fake.clear_requests()
    for _ in range(REPEAT):
        fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create("!hello"))
    await fake.wait_for_request("POST", CHANNEL_MESSAGES, count=REPEAT)
    spans = await wait_roots(exporter, REPEAT, name="!hello")
    assert ran == ["!hello"] * REPEAT
    return spans


async def run_listener(fake: OfflineDiscord, bot: commands.Bot, exporter: InMemorySpanExporter) -> list[Any]:
    seen: list[int] = []

    async def on_message(message: discord.Message) -> None:
        if message.content == "echo":
            seen.append(message.id)
            await message.channel.send("echoed")

    bot.add_listener(on_message, "on_message")
    fake.clear_requests()
    for _ in range(REPEAT):
        fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create("echo"))
    await fake.wait_for_request("POST", CHANNEL_MESSAGES, count=REPEAT)
    # two listeners per message: commands.Bot's own on_message (process_commands) and this one
    spans = await wait_roots(exporter, 2 * REPEAT, name="event on_message")
    assert len(seen) == REPEAT
    return spans


Scenario = Callable[[OfflineDiscord, commands.Bot, InMemorySpanExporter], Any]

# (module, attribute to make raise, guard kind, scenario, expected root name)
EXTRACTION_FAULTS: list[tuple[str, str, str, Scenario, str]] = [
    ("otel_bot._interactions", "interaction_attributes", "interactions.attributes", run_slash, "/ping"),
    ("otel_bot._interactions", "_app_command_root_fields", "interactions.names", run_slash, "/?"),
    ("otel_bot._components", "item_identity", "components.item", run_button, "button"),
    ("otel_bot._commands", "_context_attributes", "commands.attributes", run_prefix, "!hello"),
    ("otel_bot._events", "_event_attributes", "events.attributes", run_listener, "event on_message"),
    ("otel_bot._rest", "_start_attributes", "rest.start", run_slash, "/ping"),
    ("otel_bot._sla", "evaluate", "roots.end", run_slash, "/ping"),
]


@pytest.mark.parametrize(
    ("module", "attr", "kind", "scenario", "root_name"),
    EXTRACTION_FAULTS,
    ids=[f"{m.rsplit('.', 1)[1]}.{a}" for m, a, *_ in EXTRACTION_FAULTS],
)
async def test_attribute_extraction_fault_never_reaches_the_handler(
    lenient: None,
    otel_logs: pytest.LogCaptureFixture,
    offline_discord: OfflineDiscord,
    discord_bot: commands.Bot,
    span_exporter: InMemorySpanExporter,
    instrumented: Any,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    attr: str,
    kind: str,
    scenario: Scenario,
    root_name: str,
) -> None:
    import importlib

    target = importlib.import_module(module)
    assert callable(getattr(target, attr)), f"{module}.{attr} is gone: update this fault table"
    monkeypatch.setattr(target, attr, boom)
    instrumented(discord_bot)
    spans = await scenario(offline_discord, discord_bot, span_exporter)
    found = [s for s in roots(spans) if s.name.startswith(root_name)]
    per_run = 2 if root_name == "event on_message" else 1
    assert len(found) == per_run * REPEAT, [s.name for s in roots(spans)]
    for root in found:
        assert root.kind is SpanKind.SERVER and root.end_time is not None
    assert_isolated(otel_logs, kind, times=per_run * REPEAT if kind.startswith("events") else REPEAT)


async def test_raising_root_hook_never_reaches_the_handler(
    lenient: None,
    otel_logs: pytest.LogCaptureFixture,
    offline_discord: OfflineDiscord,
    discord_bot: commands.Bot,
    span_exporter: InMemorySpanExporter,
    instrumented: Any,
) -> None:
    calls: list[Any] = []

    def raising_hook(span: Any, source: Any) -> None:
        calls.append(source)
        raise Boom("user hook bug")

    instrumented(discord_bot, root_hook=raising_hook)
    spans = await run_slash(offline_discord, discord_bot, span_exporter)
    assert len(calls) == REPEAT and all(isinstance(c, discord.Interaction) for c in calls)
    pings = [s for s in roots(spans) if s.name == "/ping"]
    assert len(pings) == REPEAT
    assert_isolated(otel_logs, "root_hook")


# --- the console waterfall ------------------------------------------------------------------------


class RaisingStream(io.StringIO):
    """A console whose writes fail (a closed pipe, a full disk)."""

    encoding = "utf-8"

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def write(self, text: str) -> int:
        self.attempts += 1
        raise Boom("console write failed")

    def flush(self) -> None:
        raise Boom("console flush failed")


@pytest.fixture
def own_provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter, RootWaiter]]:
    """A private provider (the waterfall processor is not left on the global one)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    waiter = RootWaiter()
    provider.add_span_processor(waiter)
    try:
        yield provider, exporter, waiter
    finally:
        provider.shutdown()


async def _slash_with_provider(
    fake: OfflineDiscord, bot: commands.Bot, exporter: InMemorySpanExporter, waiter: RootWaiter
) -> list[Any]:
    ran: list[int] = []
    done = asyncio.Event()

    @bot.tree.command(name="ping", description="Ping")
    async def ping(interaction: discord.Interaction) -> None:
        ran.append(interaction.id)
        await interaction.response.send_message("pong")
        if len(ran) == REPEAT:
            done.set()

    fake.clear_requests()
    for _ in range(REPEAT):
        fake.inject(bot, "INTERACTION_CREATE", fake.payloads.slash_command("ping"))
    await fake.wait_for_request("POST", CALLBACK, count=REPEAT)
    await asyncio.wait_for(done.wait(), 5)
    spans = await waiter.wait(
        exporter, lambda spans: len([s for s in roots(spans) if s.name == "/ping"]) >= REPEAT
    )
    assert len(ran) == REPEAT
    return spans


async def test_raising_waterfall_formatter_never_reaches_the_handler(
    lenient: None,
    otel_logs: pytest.LogCaptureFixture,
    offline_discord: OfflineDiscord,
    discord_bot: commands.Bot,
    instrumented: Any,
    monkeypatch: pytest.MonkeyPatch,
    own_provider: tuple[TracerProvider, InMemorySpanExporter, RootWaiter],
) -> None:
    from otel_bot import _summary

    provider, exporter, waiter = own_provider
    stream = io.StringIO()
    waterfall = WaterfallProcessor(stream=stream, ascii=True, timer=False)
    provider.add_span_processor(waterfall)
    monkeypatch.setattr(_summary, "format_trace", boom)
    instrumented(discord_bot, tracer_provider=provider)
    spans = await _slash_with_provider(offline_discord, discord_bot, exporter, waiter)
    assert len([s for s in spans if s.name == "/ping" and s.parent is None]) == REPEAT  # export unaffected
    waterfall.force_flush()
    assert stream.getvalue() == ""
    assert_isolated(otel_logs, "waterfall.on_end")


async def test_raising_waterfall_stream_never_reaches_the_handler(
    lenient: None,
    otel_logs: pytest.LogCaptureFixture,
    offline_discord: OfflineDiscord,
    discord_bot: commands.Bot,
    instrumented: Any,
    own_provider: tuple[TracerProvider, InMemorySpanExporter, RootWaiter],
) -> None:
    """The console write fails on the waterfall's writer thread: the bot never sees it, the
    export is unaffected, and the failure is reported through the guard like any other."""
    provider, exporter, waiter = own_provider
    stream = RaisingStream()
    waterfall = WaterfallProcessor(stream=stream, ascii=True, timer=False)
    provider.add_span_processor(waterfall)
    instrumented(discord_bot, tracer_provider=provider)
    spans = await _slash_with_provider(offline_discord, discord_bot, exporter, waiter)
    assert len([s for s in spans if s.name == "/ping" and s.parent is None]) == REPEAT
    waterfall.force_flush()  # drains the writer thread
    assert stream.attempts >= REPEAT
    assert_isolated(otel_logs, "waterfall.write", times=_guard.error_counts().get("waterfall.write", -1))
    assert _guard.error_counts()["waterfall.write"] >= REPEAT


async def test_strict_mode_surfaces_the_same_fault(
    offline_discord: OfflineDiscord,
    discord_bot: commands.Bot,
    instrumented: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The counterpart: under the test suite (strict) the same fault re-raises, so bugs surface."""
    from otel_bot import _interactions

    assert _guard.is_strict()
    monkeypatch.setattr(_interactions, "interaction_attributes", boom)
    instrumented(discord_bot)

    @discord_bot.tree.command(name="ping", description="Ping")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    with pytest.raises(Boom):
        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("ping")
        )


class _BrokenTracer:
    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        raise Boom("tracer broken")

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        raise Boom("tracer broken")


class BrokenProvider:
    """A tracer provider whose tracers fail to start spans (a broken SDK or exporter plugin)."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> _BrokenTracer:
        return _BrokenTracer()


async def test_broken_tracer_provider_never_reaches_the_handler(
    lenient: None,
    otel_logs: pytest.LogCaptureFixture,
    offline_discord: OfflineDiscord,
    discord_bot: commands.Bot,
    instrumented: Any,
) -> None:
    """Even the SDK failing under us: the interaction runs untraced, the failure is reported."""
    ran: list[int] = []
    done = asyncio.Event()

    @discord_bot.tree.command(name="ping", description="Ping")
    async def ping(interaction: discord.Interaction) -> None:
        ran.append(interaction.id)
        await interaction.response.send_message("pong")
        await interaction.followup.send("more")
        if len(ran) == REPEAT:
            done.set()

    instrumented(discord_bot, tracer_provider=BrokenProvider())
    offline_discord.clear_requests()
    for _ in range(REPEAT):
        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("ping")
        )
    await asyncio.wait_for(done.wait(), 10)
    await offline_discord.wait_for_request("POST", FOLLOWUP, count=REPEAT)
    assert len(ran) == REPEAT
    assert len(offline_discord.requests_for("POST", CALLBACK)) == REPEAT
    assert_isolated(otel_logs, "roots.start")
    assert _guard.error_counts().get("rest.start") == 2 * REPEAT  # callback + followup
