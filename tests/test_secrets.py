"""No tokens, ever: every REST scenario runs with canary tokens, then ALL exported telemetry is scanned.

Scanned: span names, attributes, event names and attributes, link attributes, status descriptions,
the resource and the instrumentation scope, plus every log record otel_bot's loggers wrote.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
import pytest
from discord.ext import commands
from discord.http import Route, handle_message_parameters
from discord.webhook.async_ import interaction_response_params
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from otel_bot import _routes
from otel_bot.testing import CHANNEL_MESSAGES, OfflineDiscord
from tests.helpers_secrets import assert_no_secrets, exported_text
from tests.rest_stub import (
    APP_ID,
    BOT_TOKEN,
    CANARIES,
    CHANNEL_ID,
    INTERACTION_ID,
    INTERACTION_TOKEN,
    PLAIN_INTERACTION_TOKEN,
    WEBHOOK_ID,
    WEBHOOK_TOKEN,
    Reply,
    adapter,
    bot_http,
    instrumented,
    stub_discord,
    webhook_session,
)

pytestmark = pytest.mark.timeout(40)


@pytest.fixture
def otel_bot_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="otel_bot")
    return caplog


def our_log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() + (r.exc_text or "") for r in caplog.records if r.name.startswith("otel_bot")]


async def test_canaries_never_exported_offline_discord(
    span_exporter: Any, otel_bot_logs: pytest.LogCaptureFixture
) -> None:
    """Every interaction-side REST scenario against the offline Discord, with a canary bot token."""
    seen_tokens: list[str] = []
    async with OfflineDiscord(token=BOT_TOKEN) as fake:
        bot = commands.Bot(
            command_prefix="!", intents=discord.Intents.default(), application_id=fake.application_id
        )
        tracer = trace.get_tracer("test")
        outcomes: list[str] = []
        done = asyncio.Event()

        @bot.tree.command(name="everything", description="Every REST path")
        async def everything(interaction: discord.Interaction) -> None:
            try:
                with tracer.start_as_current_span("handler"):
                    try:
                        await interaction.followup.send("before ack")  # 404 / 10015
                    except discord.NotFound as exc:
                        outcomes.append(str(exc.code))
                    await interaction.response.defer(thinking=True)
                    try:  # second ack through HTTPClient: 400 / 40060, token in the raw route
                        await interaction._state.http.request(
                            Route(
                                "POST",
                                "/interactions/{interaction_id}/{token}/callback",
                                interaction_id=interaction.id,
                                token=interaction.token,
                            ),
                            json={"type": 4, "data": {"content": "again"}},
                        )
                    except discord.HTTPException as exc:
                        outcomes.append(str(exc.code))
                    message = await interaction.followup.send("queued", wait=True)
                    await message.edit(content="edited followup")
                    await interaction.edit_original_response(content="done")
                    await interaction.original_response()
                    assert interaction.channel is not None
                    await interaction.channel.send("public")  # type: ignore[union-attr]
                    await interaction.channel.send("rate limited first")  # type: ignore[union-attr]
                    await interaction.delete_original_response()
                    # an exception whose message is the URL with the token (aiohttp InvalidURL)
                    old = Route.BASE
                    Route.BASE = "http://127.0.0.1:99999/api/v10"
                    try:
                        await interaction.followup.send("unreachable")
                    except Exception as exc:
                        outcomes.append(type(exc).__name__)
                        assert interaction.token in str(exc)  # discord.py's exception is untouched
                    finally:
                        Route.BASE = old
            finally:
                done.set()

        @bot.tree.command(name="late", description="Acknowledged too late")
        async def late(interaction: discord.Interaction) -> None:
            try:
                await interaction.response.send_message("late")
            except discord.NotFound as exc:
                outcomes.append(str(exc.code))
            done.set()

        with instrumented():
            await fake.login(bot, token=BOT_TOKEN)
            await fake.dispatch_ready(bot)
            try:
                fake.rate_limit("POST", CHANNEL_MESSAGES, retry_after=0.01, times=1)
                # the first channel send gets the 429; fine either way, the event is scanned
                payload = fake.payloads.slash_command("everything")
                seen_tokens.append(payload["token"])
                fake.inject(bot, "INTERACTION_CREATE", payload)
                await asyncio.wait_for(done.wait(), 15)
                done.clear()
                payload = fake.payloads.slash_command("late", age_ms=3500)
                seen_tokens.append(payload["token"])
                fake.inject(bot, "INTERACTION_CREATE", payload)
                await asyncio.wait_for(done.wait(), 15)
            finally:
                await bot.close()

    assert outcomes == ["10015", "40060", "InvalidUrlClientError", "10062"]
    spans = list(span_exporter.get_finished_spans())
    rest = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    assert len(rest) >= 12
    assert any(e.name == "discord.rate_limited" for s in rest for e in s.events)
    redacted = [
        (e.attributes or {})["exception.message"] for s in rest for e in s.events if e.name == "exception"
    ]
    assert any("/webhooks/" in m and "REDACTED" in m for m in redacted), redacted  # the InvalidURL text
    assert_no_secrets(exported_text(spans), [BOT_TOKEN, *seen_tokens])
    assert_no_secrets(our_log_lines(otel_bot_logs), [BOT_TOKEN, *seen_tokens])


async def test_canaries_never_exported_stub(
    span_exporter: Any, otel_bot_logs: pytest.LogCaptureFixture
) -> None:
    """Real webhooks, plain-looking interaction tokens, and error bodies that echo the token."""
    async with stub_discord() as stub, webhook_session() as session:
        echo = f"Invalid Webhook Token for /webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN} (Bot {BOT_TOKEN})"
        stub.script(
            "POST", f"/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}", Reply(401, {"message": echo, "code": 50027})
        )
        stub.script(
            "POST",
            f"/interactions/{INTERACTION_ID}/{PLAIN_INTERACTION_TOKEN}/callback",
            Reply(400, {"message": f"bad token {PLAIN_INTERACTION_TOKEN}", "code": 50035}),
        )
        stub.script(
            "GET", f"/channels/{CHANNEL_ID}", Reply(403, {"message": f"no: {BOT_TOKEN}", "code": 50001})
        )
        with instrumented():
            async with bot_http() as http:
                await http.send_message(CHANNEL_ID, params=handle_message_parameters(content="x"))
                with pytest.raises(discord.Forbidden):
                    await http.get_channel(CHANNEL_ID)
                # a hand-made route with the token as a literal segment
                await http.request(Route("GET", f"/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"))
            with pytest.raises(discord.HTTPException) as info:
                await adapter().execute_webhook(
                    WEBHOOK_ID, WEBHOOK_TOKEN, session=session, payload={"content": "x"}
                )
            assert WEBHOOK_TOKEN in str(info.value)  # untouched
            await adapter().fetch_webhook_with_token(WEBHOOK_ID, WEBHOOK_TOKEN, session=session)
            await adapter().edit_webhook_with_token(WEBHOOK_ID, WEBHOOK_TOKEN, {"name": "n"}, session=session)
            with pytest.raises(discord.HTTPException):
                await adapter().create_interaction_response(
                    INTERACTION_ID,
                    PLAIN_INTERACTION_TOKEN,
                    session=session,
                    params=interaction_response_params(5),
                )
            await adapter().create_interaction_response(
                INTERACTION_ID, INTERACTION_TOKEN, session=session, params=interaction_response_params(5)
            )
            await adapter().execute_webhook(
                APP_ID, PLAIN_INTERACTION_TOKEN, session=session, payload={"c": 1}, wait=True
            )
            await adapter().edit_original_interaction_response(
                APP_ID, INTERACTION_TOKEN, session=session, payload={}
            )
            # discord.SyncWebhook in a worker thread, including an error that echoes the token
            import requests

            stub.script(
                "PATCH",
                f"/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}",
                Reply(401, {"message": echo, "code": 50027}),
            )
            with requests.Session() as sync_session:
                hook = discord.SyncWebhook.partial(WEBHOOK_ID, WEBHOOK_TOKEN, session=sync_session)
                await asyncio.to_thread(hook.send, "sync", wait=True)
                with pytest.raises(discord.HTTPException):
                    await asyncio.to_thread(hook.edit, name="renamed")
        assert len(stub.received) == 13
    spans = list(span_exporter.get_finished_spans())
    assert len(spans) == 13
    names = {s.name for s in spans}
    assert "GET /webhooks/{id}/{token}" in names
    assert "POST /webhooks/{webhook_id}/{webhook_token}" in names
    assert "POST /webhooks/{application_id}/{interaction_token}" in names
    messages = [(e.attributes or {}).get("exception.message", "") for s in spans for e in s.events]
    assert any("Invalid Webhook Token for /webhooks/" in m and "REDACTED" in m for m in messages), messages
    assert_no_secrets(exported_text(spans), CANARIES)
    assert_no_secrets(our_log_lines(otel_bot_logs), CANARIES)


@pytest.mark.parametrize("secret", CANARIES)
def test_redact_scrubs_each_canary_in_free_text(secret: str) -> None:
    _routes.register_secret(BOT_TOKEN, bot=True)
    _routes.note_interaction_token(PLAIN_INTERACTION_TOKEN)
    texts = [
        f"plain {secret} text",
        f"https://discord.com/api/v10/webhooks/{WEBHOOK_ID}/{secret}?wait=1",
        f"Authorization: Bot {secret}",
        f"'{secret}'",
    ]
    for text in texts:
        assert_no_secrets([_routes.redact(text)], [secret])


class _CanaryView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Go", custom_id="canary:go")
    async def go(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.send_message("clicked", ephemeral=True)
        await interaction.followup.send("after click")


async def test_canaries_never_exported_whole_package(
    span_exporter: Any, otel_bot_logs: pytest.LogCaptureFixture
) -> None:
    """instrument_bot end to end: slash command (late and on time), component, prefix command and
    an event listener, each making REST calls (429 included); nothing escapes the handlers."""
    from otel_bot import instrument_bot, uninstrument_bot
    from tests.helpers_roots import waiter

    tokens: list[str] = []
    async with OfflineDiscord(token=BOT_TOKEN) as fake:
        intents = discord.Intents.default()
        intents.message_content = True
        bot = commands.Bot(command_prefix="!", intents=intents, application_id=fake.application_id)
        bot.add_view(_CanaryView())

        @bot.tree.command(name="flow", description="Defer, followup, edit")
        async def flow(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.followup.send("queued")
            await interaction.edit_original_response(content="done")

        @bot.tree.command(name="late", description="Too late")
        async def late(interaction: discord.Interaction) -> None:
            try:
                await interaction.response.send_message("late")
            except discord.NotFound:
                pass

        @bot.command(name="ping")
        async def ping(ctx: commands.Context[Any]) -> None:
            await ctx.send("pong")

        @bot.listen("on_message")
        async def echo(message: discord.Message) -> None:
            if message.content == "hello":
                await message.channel.send("hi")

        await fake.login(bot, token=BOT_TOKEN)
        await fake.dispatch_ready(bot)
        instrument_bot(bot)
        try:
            fake.rate_limit("POST", CHANNEL_MESSAGES, retry_after=0.01)
            for payload in (
                fake.payloads.slash_command("flow"),
                fake.payloads.slash_command("late", age_ms=3500),
                fake.payloads.button("canary:go"),
            ):
                tokens.append(payload["token"])
                fake.inject(bot, "INTERACTION_CREATE", payload)
            fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create("!ping"))
            fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create("hello"))

            def finished(spans: list[ReadableSpan]) -> bool:
                ended = {s.context.span_id for s in spans}
                rest = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
                return len(rest) >= 8 and all(
                    s.parent is not None and s.parent.span_id in ended for s in rest
                )

            spans = await waiter().wait(span_exporter, finished, timeout=10)
        finally:
            uninstrument_bot(bot)
            await bot.close()
    rest = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    names = sorted(s.name for s in rest)
    assert names.count("POST /interactions/{interaction_id}/{interaction_token}/callback") == 3
    assert names.count("POST /webhooks/{application_id}/{interaction_token}") == 2
    assert names.count("PATCH /webhooks/{application_id}/{interaction_token}/messages/@original") == 1
    assert names.count("POST /channels/{channel_id}/messages") == 2
    assert any(e.name == "discord.rate_limited" for s in rest for e in s.events)
    assert any((s.attributes or {}).get("discord.error.code") == 10062 for s in rest)
    assert_no_secrets(exported_text(spans), [BOT_TOKEN, *tokens])
    assert_no_secrets(our_log_lines(otel_bot_logs), [BOT_TOKEN, *tokens])


async def test_canaries_never_exported_through_instrument_bot(
    span_exporter: Any, otel_bot_logs: pytest.LogCaptureFixture
) -> None:
    """The whole package: interaction roots + REST children, and an exception carrying a token
    that escapes the user's command (recorded by the root, not by the REST wrapper)."""
    from otel_bot import instrument_bot, uninstrument_bot
    from tests.helpers_roots import wait_roots

    tokens: list[str] = []
    async with OfflineDiscord(token=BOT_TOKEN) as fake:
        bot = commands.Bot(
            command_prefix="!", intents=discord.Intents.default(), application_id=fake.application_id
        )

        @bot.tree.command(name="leaky", description="Lets an exception with a token escape")
        async def leaky(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            old = Route.BASE
            Route.BASE = "http://127.0.0.1:99999/api/v10"
            try:
                await interaction.followup.send("unreachable")  # InvalidUrlClientError(url with token)
            finally:
                Route.BASE = old

        @bot.tree.command(name="ok", description="Ordinary")
        async def ok(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("fine")
            await interaction.followup.send("more")

        await fake.login(bot, token=BOT_TOKEN)
        await fake.dispatch_ready(bot)
        instrument_bot(bot)
        try:
            for name in ("leaky", "ok"):
                payload = fake.payloads.slash_command(name)
                tokens.append(payload["token"])
                fake.inject(bot, "INTERACTION_CREATE", payload)
            spans = await wait_roots(span_exporter, 2)
        finally:
            uninstrument_bot(bot)
            await bot.close()
    names = {s.name for s in spans}
    assert {"/leaky", "/ok"} <= names
    assert any(s.name == "POST /webhooks/{application_id}/{interaction_token}" for s in spans)
    # the REST side is clean on its own (this part holds today)
    rest = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    assert_no_secrets(exported_text(rest), [BOT_TOKEN, *tokens])
    assert_no_secrets(exported_text(spans), [BOT_TOKEN, *tokens])
    assert_no_secrets(our_log_lines(otel_bot_logs), [BOT_TOKEN, *tokens])
