"""Tests for the offline Discord (otel_bot.testing): a real, unmodified discord.py against it."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import discord
import discord.gateway
import discord.http
import discord.webhook.async_
import pytest
from discord import app_commands
from discord.ext import commands

from otel_bot.testing import (
    CALLBACK,
    CHANNEL_MESSAGES,
    DISCORD_EPOCH_MS,
    FOLLOWUP,
    ORIGINAL,
    TYPING,
    OfflineDiscord,
    snowflake,
    snowflake_time_ms,
)

TOKEN = "offline.test.token"


def _intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


async def test_slash_command_login_defer_followup_exact_requests() -> None:
    """Done-when: login, INTERACTION_CREATE, defer, followup; exactly those requests, in order."""
    async with OfflineDiscord() as fake:
        bot = commands.Bot(command_prefix="!", intents=_intents(), application_id=fake.application_id)
        done = asyncio.Event()

        @bot.tree.command(name="ping", description="Ping")
        async def ping(interaction: discord.Interaction, count: int) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.followup.send(f"pong x{count}")
            done.set()

        try:
            await bot.login(TOKEN)
            await fake.dispatch_ready(bot)
            assert bot.user is not None and bot.user.id == fake.application_id
            payload = fake.payloads.slash_command("ping", {"count": 3})
            fake.inject(bot, "INTERACTION_CREATE", payload)
            await fake.wait_for_request("POST", FOLLOWUP)
            await asyncio.wait_for(done.wait(), 5)
        finally:
            await bot.close()

    assert fake.route_keys() == [
        "GET /users/@me",
        "GET /oauth2/applications/@me",
        f"POST {CALLBACK}",
        f"POST {FOLLOWUP}",
    ]
    me, app, callback, followup = fake.requests
    assert me.headers["Authorization"] == f"Bot {TOKEN}"
    assert app.headers["Authorization"] == f"Bot {TOKEN}"
    assert callback.params == {"interaction_id": payload["id"], "interaction_token": payload["token"]}
    assert callback.query == {"with_response": "1"}
    assert callback.json == {"type": 5}
    assert callback.status == 200
    assert callback.response["interaction"]["response_message_loading"] is True
    assert followup.params == {
        "application_id": str(fake.application_id),
        "interaction_token": payload["token"],
    }
    assert followup.query["wait"] == "1"
    assert followup.json["content"] == "pong x3"
    assert followup.status == 200
    assert followup.response["content"] == "pong x3"
    rec = fake.interaction(payload["id"])
    assert rec.ack_type == 5 and len(rec.followups) == 1


async def test_bot_start_unmodified_against_fake_gateway() -> None:
    """Done-when: ``bot.start()`` unmodified receives READY (on_ready fires), then closes cleanly."""
    async with OfflineDiscord(heartbeat_interval_ms=50) as fake:
        bot = commands.Bot(command_prefix="!", intents=_intents())
        ready = asyncio.Event()
        guilds: list[int] = []

        @bot.event
        async def on_ready() -> None:
            guilds.extend(g.id for g in bot.guilds)
            ready.set()

        task = asyncio.create_task(bot.start(TOKEN))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            session = await fake.gateway.wait_for_identify()
            assert session.identify is not None and session.identify["token"] == TOKEN
            assert session.query["v"] == "10" and session.query["encoding"] == "json"
            assert session.compression == session.query["compress"] == "zlib-stream"  # binary zlib frames
            assert guilds == [fake.world.guild_id]
            channel = bot.get_channel(fake.world.channel_id)
            assert isinstance(channel, discord.TextChannel)
            # a dispatch through the websocket reaches the bot's listeners
            got: asyncio.Future[discord.Message] = asyncio.get_running_loop().create_future()

            @bot.listen()
            async def on_message(message: discord.Message) -> None:
                if not got.done():
                    got.set_result(message)

            assert await fake.gateway_dispatch("MESSAGE_CREATE", fake.payloads.message_create("hello")) == 1
            msg = await asyncio.wait_for(got, 5)
            assert msg.content == "hello" and msg.channel.id == fake.world.channel_id

            @bot.tree.command(name="e2e", description="End to end")
            async def e2e(interaction: discord.Interaction) -> None:
                await interaction.response.send_message("over the websocket")

            await fake.gateway_dispatch("INTERACTION_CREATE", fake.payloads.slash_command("e2e"))
            callback = await fake.wait_for_request("POST", CALLBACK)
            assert callback.status == 200 and callback.json["data"]["content"] == "over the websocket"
            # heartbeats are ACKed
            await fake.gateway._wait(lambda: session.heartbeats >= 2, 5)
            assert bot.latency >= 0
        finally:
            await bot.close()
        assert await asyncio.wait_for(task, 5) is None
        await fake.gateway.wait_closed()
        # discord.py closes with 1000, but aiohttp lets the concurrent reader (poll_event, which
        # closes with 4000) send its close frame first; either way the session ended client-side.
        assert fake.gateway.sessions[0].close_code in (1000, 4000)
    assert fake.route_keys() == ["GET /users/@me", "GET /oauth2/applications/@me", f"POST {CALLBACK}"]


async def test_callback_after_three_seconds_gets_10062(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    """Done-when: a callback 3.5 s after the interaction's snowflake time gets 404 / 10062."""
    errors: list[BaseException] = []
    done = asyncio.Event()

    @discord_bot.tree.command(name="slow", description="Slow")
    async def slow(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.send_message("late")
        except discord.HTTPException as exc:
            errors.append(exc)
        done.set()

    payload = offline_discord.payloads.slash_command("slow", age_ms=3500)
    assert offline_discord.now_ms() - snowflake_time_ms(payload["id"]) >= 3500
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", payload)
    req = await offline_discord.wait_for_request("POST", CALLBACK)
    await asyncio.wait_for(done.wait(), 5)
    assert req.status == 404
    assert req.response == {"message": "Unknown interaction", "code": 10062}
    assert req.response_headers["Content-Type"] == "application/json"
    (exc,) = errors
    assert isinstance(exc, discord.NotFound) and exc.code == 10062
    assert offline_discord.interaction(payload["id"]).ack_type is None


async def test_second_ack_gets_40060(offline_discord: OfflineDiscord, discord_bot: commands.Bot) -> None:
    errors: list[discord.HTTPException] = []
    done = asyncio.Event()

    @discord_bot.tree.command(name="twice", description="Acks twice")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        # bypass discord.py's own InteractionResponded guard: a second raw callback
        try:
            await interaction._state.http.request(  # the raw REST path a buggy bot could take
                discord.http.Route(
                    "POST",
                    "/interactions/{interaction_id}/{token}/callback",
                    interaction_id=interaction.id,
                    token=interaction.token,
                ),
                json={"type": 4, "data": {"content": "again"}},
            )
        except discord.HTTPException as exc:
            errors.append(exc)
        done.set()

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("twice"))
    await asyncio.wait_for(done.wait(), 5)
    first, second = offline_discord.requests_for("POST", CALLBACK)
    assert first.status == 200 and second.status == 400
    assert second.response == {"message": "Interaction has already been acknowledged.", "code": 40060}
    (exc,) = errors
    assert exc.code == 40060 and exc.status == 400


async def test_followup_before_ack_is_unknown_webhook(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    errors: list[discord.HTTPException] = []
    done = asyncio.Event()

    @discord_bot.tree.command(name="early", description="Followup first")
    async def early(interaction: discord.Interaction) -> None:
        try:
            await interaction.followup.send("too early")
        except discord.HTTPException as exc:
            errors.append(exc)
        await interaction.response.send_message("ok")
        done.set()

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("early"))
    await asyncio.wait_for(done.wait(), 5)
    (exc,) = errors
    assert isinstance(exc, discord.NotFound) and exc.code == 10015
    assert offline_discord.requests_for("POST", FOLLOWUP)[0].status == 404
    assert offline_discord.requests_for("POST", CALLBACK)[0].status == 200


async def test_rate_limit_429_then_success_retries(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    """Done-when: a 429 (with Via) makes discord.py wait retry_after and retry successfully."""
    channel = discord_bot.get_channel(offline_discord.world.channel_id)
    assert isinstance(channel, discord.TextChannel)
    offline_discord.bucket_window_s = 60.0  # one window for the whole test: Remaining only counts down
    fault = offline_discord.rate_limit("POST", CHANNEL_MESSAGES, retry_after=0.1)
    offline_discord.clear_requests()
    msg = await channel.send("hi")
    assert msg.content == "hi" and msg.channel.id == channel.id
    limited, ok = offline_discord.requests
    assert fault.hits == 1
    assert limited.status == 429 and ok.status == 200
    assert limited.response == {
        "message": "You are being rate limited.",
        "retry_after": 0.1,
        "global": False,
        "code": 0,
    }
    assert limited.response_headers["Via"] == "1.1 google"
    assert limited.response_headers["Retry-After"] == "1"
    assert limited.response_headers["X-RateLimit-Scope"] == "user"
    waited = ok.received_ms - limited.received_ms
    assert 80 <= waited < 2000
    bucket = ok.response_headers["X-RateLimit-Bucket"]
    assert len(bucket) == 32 and ok.response_headers["X-RateLimit-Limit"] == "50"
    await channel.send("again")
    again = offline_discord.requests[-1]
    assert again.response_headers["X-RateLimit-Bucket"] == bucket
    remaining = int(ok.response_headers["X-RateLimit-Remaining"])
    assert int(again.response_headers["X-RateLimit-Remaining"]) == remaining - 1
    assert 0 < float(again.response_headers["X-RateLimit-Reset-After"]) <= 60.0


async def test_global_rate_limit_and_cloudflare_ban(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    channel = discord_bot.get_channel(offline_discord.world.channel_id)
    assert isinstance(channel, discord.TextChannel)
    offline_discord.rate_limit(retry_after=0.05, is_global=True)
    await channel.typing()
    limited, ok = offline_discord.requests[-2:]
    assert limited.route == TYPING and limited.status == 429 and ok.status == 204
    assert limited.response["global"] is True
    assert limited.response_headers["X-RateLimit-Global"] == "true"
    assert limited.response_headers["X-RateLimit-Scope"] == "global"
    # without Via, discord.py treats the 429 as a Cloudflare ban and raises instead of retrying
    offline_discord.rate_limit("POST", CHANNEL_MESSAGES, via=False)
    with pytest.raises(discord.HTTPException) as info:
        await channel.send("banned")
    assert info.value.status == 429


async def test_server_error_then_success(offline_discord: OfflineDiscord, discord_bot: commands.Bot) -> None:
    channel = discord_bot.get_channel(offline_discord.world.channel_id)
    assert isinstance(channel, discord.TextChannel)
    offline_discord.server_error("POST", CHANNEL_MESSAGES, status=503)
    with pytest.raises(discord.DiscordServerError):
        await channel.send("x")
    assert offline_discord.requests[-1].status == 503


async def test_latency_per_route(offline_discord: OfflineDiscord, discord_bot: commands.Bot) -> None:
    channel = discord_bot.get_channel(offline_discord.world.channel_id)
    assert isinstance(channel, discord.TextChannel)
    offline_discord.set_latency(150, "POST", CHANNEL_MESSAGES)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await channel.send("slow")
    slow = loop.time() - start
    start = loop.time()
    await channel.typing()
    fast = loop.time() - start
    assert 0.14 <= slow < 2.0
    assert fast < slow


async def test_base_urls_point_at_fake_and_are_restored() -> None:
    """Done-when: the REST and gateway bases point at the fake while it runs, restored after exit."""
    rest = discord.http.Route.__dict__["BASE"]
    gateway = discord.gateway.DiscordWebSocket.__dict__["DEFAULT_GATEWAY"]
    webhook = discord.webhook.async_.Route.__dict__["BASE"]
    async with OfflineDiscord() as fake:
        assert discord.http.Route.BASE == fake.api_base
        assert discord.webhook.async_.Route.BASE == fake.api_base
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
        assert (
            discord.http.Route("GET", "/users/@me").url == f"http://127.0.0.1:{fake.port}/api/v10/users/@me"
        )
    assert discord.http.Route.__dict__["BASE"] is rest
    assert discord.gateway.DiscordWebSocket.__dict__["DEFAULT_GATEWAY"] is gateway
    assert discord.webhook.async_.Route.__dict__["BASE"] is webhook
    assert rest == "https://discord.com/api/v10"


async def test_unknown_route_is_discord_shaped_404(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    with pytest.raises(discord.NotFound) as info:
        await discord_bot.http.request(discord.http.Route("GET", "/nope/{x}", x=1))
    assert info.value.code == 0 and info.value.text == "404: Not Found"
    with pytest.raises(discord.NotFound) as info2:
        await discord_bot.http.get_message(offline_discord.world.channel_id, 1234)
    assert info2.value.code == 10008
    assert offline_discord.requests[-1].route == "/channels/{channel_id}/messages/{message_id}"


async def test_snowflakes() -> None:
    assert DISCORD_EPOCH_MS == 1420070400000
    at = 1_700_000_000_123
    a, b = snowflake(at), snowflake(at)
    assert a != b
    assert snowflake_time_ms(a) == at == snowflake_time_ms(str(b))
    # Discord's documented example: 175928847299117063 -> 2016-04-30 11:18:25.796 UTC
    assert snowflake_time_ms(175928847299117063) == 1462015105796
    with pytest.raises(ValueError):
        snowflake(0)


async def test_subcommand_group_options_and_original_edit(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    seen: dict[str, Any] = {}
    done = asyncio.Event()
    admin = app_commands.Group(name="admin", description="Admin")
    users = app_commands.Group(name="users", description="Users", parent=admin)

    @users.command(name="add", description="Add")
    async def add(interaction: discord.Interaction, name: str, level: int, verbose: bool) -> None:
        seen.update(name=name, level=level, verbose=verbose, cmd=interaction.command.qualified_name)  # type: ignore[union-attr]
        await interaction.response.send_message("added", ephemeral=True)
        msg = await interaction.original_response()
        seen["original"] = msg.content
        await interaction.edit_original_response(content="edited")
        done.set()

    discord_bot.tree.add_command(admin)
    offline_discord.clear_requests()
    payload = offline_discord.payloads.slash_command(
        "admin", {"name": "ann", "level": 3, "verbose": True}, group="users", subcommand="add"
    )
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", payload)
    await asyncio.wait_for(done.wait(), 5)
    assert seen == {"name": "ann", "level": 3, "verbose": True, "cmd": "admin users add", "original": "added"}
    assert offline_discord.route_keys() == [f"POST {CALLBACK}", f"GET {ORIGINAL}", f"PATCH {ORIGINAL}"]
    assert (
        offline_discord.requests[0].json
        == {"type": 4, "data": {"content": "added", "flags": 64, "tts": False}}
        or offline_discord.requests[0].json["data"]["content"] == "added"
    )
    edited = offline_discord.requests[2].response
    assert edited["content"] == "edited" and edited["flags"] & 64 and edited["edited_timestamp"]


async def test_context_menus(offline_discord: OfflineDiscord, discord_bot: commands.Bot) -> None:
    got: dict[str, Any] = {}
    both = asyncio.Event()

    @discord_bot.tree.context_menu(name="Inspect user")
    async def inspect_user(interaction: discord.Interaction, member: discord.Member) -> None:
        got["user"] = member.id
        await interaction.response.send_message("user ok")
        if len(got) == 2:
            both.set()

    @discord_bot.tree.context_menu(name="Quote")
    async def quote(interaction: discord.Interaction, message: discord.Message) -> None:
        got["message"] = message.content
        await interaction.response.send_message("quoted")
        if len(got) == 2:
            both.set()

    p = offline_discord.payloads
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", p.user_command("Inspect user"))
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", p.message_command("Quote"))
    await asyncio.wait_for(both.wait(), 5)
    assert got == {"user": offline_discord.world.user_id, "message": "hello there"}
    kinds = sorted(
        r.response["resource"]["message"]["type"] for r in offline_discord.requests_for("POST", CALLBACK)
    )
    assert kinds == [23, 23]


class _Counter(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"counter:(?P<n>\d+)"):
    def __init__(self, n: int) -> None:
        super().__init__(discord.ui.Button(label=str(n), custom_id=f"counter:{n}"))
        self.n = n

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: Any, match: Any) -> _Counter:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.edit_message(content=f"count {self.n + 1}")


async def test_components_buttons_dynamic_items_selects(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    clicks: list[str] = []
    done = asyncio.Event()

    class Menu(discord.ui.View):
        @discord.ui.button(label="Go", custom_id="menu:go")
        async def go(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
            clicks.append(f"button:{interaction.message.id if interaction.message else None}")
            await interaction.response.defer()

        @discord.ui.select(
            custom_id="menu:pick", options=[discord.SelectOption(label="a"), discord.SelectOption(label="b")]
        )
        async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
            clicks.append("pick:" + ",".join(select.values))
            await interaction.response.send_message("picked")

        @discord.ui.select(cls=discord.ui.UserSelect, custom_id="menu:user")
        async def who(self, interaction: discord.Interaction, select: discord.ui.UserSelect[Any]) -> None:
            clicks.append(f"user:{select.values[0].id}")
            await interaction.response.send_message("who")

        @discord.ui.select(cls=discord.ui.RoleSelect, custom_id="menu:role")
        async def role(self, interaction: discord.Interaction, select: discord.ui.RoleSelect[Any]) -> None:
            clicks.append(f"role:{select.values[0].id}")
            await interaction.response.send_message("role")

        @discord.ui.select(cls=discord.ui.ChannelSelect, custom_id="menu:chan")
        async def chan(self, interaction: discord.Interaction, select: discord.ui.ChannelSelect[Any]) -> None:
            clicks.append(f"chan:{select.values[0].id}")
            await interaction.response.send_message("chan")
            done.set()

    discord_bot.add_view(Menu(timeout=None))
    discord_bot.add_dynamic_items(_Counter)
    p, w = offline_discord.payloads, offline_discord.world
    button = p.button("menu:go")
    for payload in (
        button,
        p.button("counter:4"),
        p.select("menu:pick", ["a", "b"]),
        p.select("menu:user", [w.user_id], component_type=5),
        p.select("menu:role", [w.role_id], component_type=6),
    ):
        offline_discord.inject(discord_bot, "INTERACTION_CREATE", payload)
        await offline_discord.wait_for_request(
            "POST", CALLBACK, count=len(offline_discord.requests_for("POST", CALLBACK)) + 1
        )
    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", p.select("menu:chan", [w.channel_id], component_type=8)
    )
    await asyncio.wait_for(done.wait(), 5)
    assert clicks == [
        f"button:{button['message']['id']}",
        "pick:a,b",
        f"user:{w.user_id}",
        f"role:{w.role_id}",
        f"chan:{w.channel_id}",
    ]
    callbacks = offline_discord.requests_for("POST", CALLBACK)
    assert [c.json["type"] for c in callbacks] == [6, 7, 4, 4, 4, 4]
    assert callbacks[1].json["data"]["content"] == "count 5"
    assert callbacks[1].response["resource"]["message"]["content"] == "count 5"


async def test_modal_submit_and_autocomplete(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    got: dict[str, Any] = {}
    done = asyncio.Event()

    class Feedback(discord.ui.Modal, title="Feedback"):
        text: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Text", custom_id="fb:text")

        async def on_submit(self, interaction: discord.Interaction) -> None:
            got["modal"] = self.text.value
            await interaction.response.send_message("thanks")
            done.set()

    modal_sent = asyncio.Event()

    @discord_bot.tree.command(name="feedback", description="Feedback")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Feedback(custom_id="fb"))
        modal_sent.set()

    async def fruits(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        got["current"] = current
        return [app_commands.Choice(name=f, value=f) for f in ("apple", "apricot") if f.startswith(current)]

    @discord_bot.tree.command(name="fruit", description="Fruit")
    @app_commands.autocomplete(name=fruits)
    async def fruit(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(name)

    p = offline_discord.payloads
    offline_discord.clear_requests()
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", p.autocomplete("fruit", "name", "ap"))
    auto = await offline_discord.wait_for_request("POST", CALLBACK)
    assert auto.json == {
        "type": 8,
        "data": {"choices": [{"name": "apple", "value": "apple"}, {"name": "apricot", "value": "apricot"}]},
    }
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", p.slash_command("feedback"))
    modal = await offline_discord.wait_for_request("POST", CALLBACK, count=2)
    assert modal.json["type"] == 9 and modal.json["data"]["custom_id"] == "fb"
    # the fake has answered; wait until the bot has processed the answer (stored the modal)
    await asyncio.wait_for(modal_sent.wait(), 5)
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", p.modal_submit("fb", {"fb:text": "great"}))
    await asyncio.wait_for(done.wait(), 5)
    assert got == {"current": "ap", "modal": "great"}
    # Label-wrapped text inputs (component type 18), as newer clients send them
    done.clear()
    modal_sent.clear()
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", p.slash_command("feedback"))
    await asyncio.wait_for(modal_sent.wait(), 5)
    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", p.modal_submit("fb", {"fb:text": "labelled"}, labels=True)
    )
    await asyncio.wait_for(done.wait(), 5)
    assert got["modal"] == "labelled"


async def test_channel_messages_files_edit_delete_typing(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    channel = discord_bot.get_channel(offline_discord.world.channel_id)
    assert isinstance(channel, discord.TextChannel)
    offline_discord.clear_requests()
    msg = await channel.send(
        "with file",
        file=discord.File(io.BytesIO(b"hello bytes"), filename="a.txt"),
        embed=discord.Embed(title="T"),
    )
    assert (
        msg.content == "with file" and msg.attachments[0].filename == "a.txt" and msg.embeds[0].title == "T"
    )
    create = offline_discord.requests[-1]
    assert create.json["content"] == "with file"
    assert [(f.name, f.filename, f.data) for f in create.files] == [("files[0]", "a.txt", b"hello bytes")]
    assert create.headers["Authorization"].startswith("Bot ")
    edited = await msg.edit(content="changed")
    assert edited.content == "changed" and edited.edited_at is not None
    fetched = await channel.fetch_message(msg.id)
    assert fetched.content == "changed"
    async with channel.typing():
        pass
    await msg.delete()
    with pytest.raises(discord.NotFound):
        await channel.fetch_message(msg.id)
    assert offline_discord.route_keys() == [
        f"POST {CHANNEL_MESSAGES}",
        "PATCH /channels/{channel_id}/messages/{message_id}",
        "GET /channels/{channel_id}/messages/{message_id}",
        f"POST {TYPING}",
        "DELETE /channels/{channel_id}/messages/{message_id}",
        "GET /channels/{channel_id}/messages/{message_id}",
    ]


async def test_prefix_command_via_message_create(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    @discord_bot.command(name="hello")
    async def hello(ctx: commands.Context[commands.Bot], who: str) -> None:
        await ctx.reply(f"hi {who}")

    offline_discord.clear_requests()
    offline_discord.inject(
        discord_bot, "MESSAGE_CREATE", offline_discord.payloads.message_create("!hello bob")
    )
    req = await offline_discord.wait_for_request("POST", CHANNEL_MESSAGES)
    assert (
        req.json["content"] == "hi bob"
        and req.json["message_reference"]["channel_id"] == offline_discord.world.channel_id
    )
    assert req.response["type"] == 19


async def test_command_sync(offline_discord: OfflineDiscord, discord_bot: commands.Bot) -> None:
    @discord_bot.tree.command(name="one", description="One")
    async def one(interaction: discord.Interaction) -> None:
        pass

    synced = await discord_bot.tree.sync()
    assert [c.name for c in synced] == ["one"] and synced[0].id
    guild = discord.Object(offline_discord.world.guild_id)
    discord_bot.tree.copy_global_to(guild=guild)
    guild_synced = await discord_bot.tree.sync(guild=guild)
    assert [c.guild_id for c in guild_synced] == [offline_discord.world.guild_id]
    fetched = await discord_bot.tree.fetch_commands()
    assert [c.id for c in fetched] == [c.id for c in synced]
    assert (
        offline_discord.requests_for("PUT", "/applications/{application_id}/commands")[0].json[0]["name"]
        == "one"
    )


async def test_login_failure_with_wrong_token_and_wait_for_requests() -> None:
    async with OfflineDiscord(token="right") as fake:
        client = discord.Client(intents=discord.Intents.none())
        with pytest.raises(discord.LoginFailure):
            await client.login("wrong")
        await client.close()
        assert fake.requests[0].status == 401
        good = discord.Client(intents=discord.Intents.none())
        await fake.login(good)
        reqs = await fake.wait_for_requests(3)
        assert [r.status for r in reqs] == [401, 200, 200]
        await good.close()


async def test_dm_interaction(offline_discord: OfflineDiscord, discord_bot: commands.Bot) -> None:
    done = asyncio.Event()
    seen: dict[str, Any] = {}

    @discord_bot.tree.command(name="dm", description="DM")
    async def dm(interaction: discord.Interaction) -> None:
        seen.update(
            guild=interaction.guild_id, user=interaction.user.id, channel=type(interaction.channel).__name__
        )
        await interaction.response.send_message("dm ok")
        done.set()

    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("dm", dm=True)
    )
    await asyncio.wait_for(done.wait(), 5)
    assert seen == {"guild": None, "user": offline_discord.world.user_id, "channel": "DMChannel"}


async def test_raw_http_contract(offline_discord: OfflineDiscord) -> None:
    """Discord's documented shapes, seen by a plain HTTP client."""
    import aiohttp

    fake = offline_discord
    base = fake.api_base
    inter = fake.payloads.slash_command("raw")
    url = f"{base}/interactions/{inter['id']}/{inter['token']}/callback"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"type": 4, "data": {"content": "hi"}}) as resp:
            assert resp.status == 204  # no with_response: 204 No Content
        async with http.post(url, params={"with_response": "true"}, json={"type": 4}) as resp:
            assert resp.status == 400 and (await resp.json())["code"] == 40060
        second = fake.payloads.slash_command("raw")
        url2 = f"{base}/interactions/{second['id']}/{second['token']}/callback"
        async with http.post(
            url2, params={"with_response": "true"}, json={"type": 4, "data": {"content": "x"}}
        ) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
            body = await resp.json()
        assert body["interaction"] == {
            "id": second["id"],
            "type": 2,
            "response_message_id": body["resource"]["message"]["id"],
            "response_message_loading": False,
            "response_message_ephemeral": False,
        }
        assert body["resource"]["type"] == 4 and body["resource"]["message"]["content"] == "x"
        async with http.get(f"{base}/nothing/here") as resp:
            assert resp.status == 404 and await resp.json() == {"message": "404: Not Found", "code": 0}
            assert resp.headers["Content-Type"] == "application/json"
        async with http.delete(f"{base}/users/@me", headers={"Authorization": "Bot x"}) as resp:
            assert resp.status == 405 and (await resp.json())["code"] == 0
        async with http.get(f"{base}/users/@me") as resp:
            assert resp.status == 401  # no Authorization header
        async with http.get(f"{base}/gateway/bot", headers={"Authorization": "Bot x"}) as resp:
            data = await resp.json()
            assert data["url"] == fake.gateway_url and data["shards"] == 1
            for h in (
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "X-RateLimit-Reset-After",
                "X-RateLimit-Bucket",
            ):
                assert h in resp.headers
        async with http.post(
            f"{base}/interactions/{inter['id']}/not-the-token/callback", json={"type": 5}
        ) as resp:
            assert resp.status == 401 and (await resp.json())["code"] == 50027
        expired = fake.payloads.slash_command("raw")
        fake.advance(3001)
        async with http.post(
            f"{base}/interactions/{expired['id']}/{expired['token']}/callback", json={"type": 5}
        ) as resp:
            assert resp.status == 404 and await resp.json() == {
                "message": "Unknown interaction",
                "code": 10062,
            }
    assert [r.status for r in fake.requests] == [204, 400, 200, 404, 405, 401, 200, 401, 404]


async def test_gateway_reconnect_resumes() -> None:
    async with OfflineDiscord() as fake:
        # guild_ready_timeout: discord.py otherwise waits 2 s after the last GUILD_CREATE for READY
        client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        resumed = asyncio.Event()

        @client.event
        async def on_resumed() -> None:
            resumed.set()

        task = asyncio.create_task(client.start(TOKEN))
        try:
            first = await fake.gateway.wait_for_identify()
            await asyncio.wait_for(client.wait_until_ready(), 10)
            await fake.gateway.send_op(7)  # RECONNECT
            await asyncio.wait_for(resumed.wait(), 10)
            second = fake.gateway.sessions[-1]
            assert second is not first and second.resumed and second.identify is None
            assert second.received[0]["op"] in (1, 6)
            resume = next(f for f in second.received if f["op"] == 6)
            assert resume["d"]["session_id"] == first.session_id and resume["d"]["token"] == TOKEN
        finally:
            await client.close()
        assert await asyncio.wait_for(task, 5) is None


async def test_guild_fetches_dm_and_channel_webhook(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    w = offline_discord.world
    guild = discord_bot.get_guild(w.guild_id)
    assert guild is not None and guild.get_member(w.user_id) is not None and guild.me is not None
    member = await guild.fetch_member(w.user_id)
    assert member.id == w.user_id and [r.id for r in member.roles if not r.is_default()] == [w.role_id]
    fetched = await discord_bot.fetch_guild(w.guild_id)
    assert fetched.name == w.guild_name
    dm = await member.send("private hello")
    assert dm.content == "private hello" and isinstance(dm.channel, discord.DMChannel)
    assert offline_discord.requests_for("POST", "/users/@me/channels")[0].json == {"recipient_id": w.user_id}
    hook_data = offline_discord.create_webhook()
    hook = discord.Webhook.partial(int(hook_data["id"]), hook_data["token"], client=discord_bot)
    sent = await hook.send("from a webhook", username="Hooky", wait=True)
    assert (
        sent.content == "from a webhook"
        and sent.author.name == "Hooky"
        and sent.webhook_id == int(hook_data["id"])
    )
    assert [m["content"] for m in offline_discord.stored_messages()] == ["from a webhook"]


async def test_interaction_response_with_file_is_multipart(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    done = asyncio.Event()

    @discord_bot.tree.command(name="report", description="Report")
    async def report(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            "report", file=discord.File(io.BytesIO(b"a,b\n1,2\n"), "r.csv")
        )
        done.set()

    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("report")
    )
    await asyncio.wait_for(done.wait(), 5)
    (callback,) = offline_discord.requests_for("POST", CALLBACK)
    assert callback.headers["content-type"].startswith("multipart/form-data")
    assert callback.json["type"] == 4 and callback.json["data"]["content"] == "report"
    assert [(f.filename, f.data) for f in callback.files] == [("r.csv", b"a,b\n1,2\n")]
    (attachment,) = callback.response["resource"]["message"]["attachments"]
    assert attachment["filename"] == "r.csv" and attachment["size"] == 8


async def test_standalone_builders_and_inject(offline_discord: OfflineDiscord) -> None:
    """The module-level builders and ``inject`` work without the fake's helpers."""
    from otel_bot.testing import Payloads, World, inject, option

    world = World(application_id=offline_discord.application_id)
    payloads = Payloads(world, clock=offline_discord.now_ms)
    client = discord.Client(intents=discord.Intents.default())
    ready = asyncio.Event()
    seen: list[tuple[str, Any]] = []

    @client.event
    async def on_ready() -> None:
        ready.set()

    @client.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        seen.append((interaction.type.name, interaction.data))
        await interaction.response.send_message("ok")

    try:
        await offline_discord.login(client)
        client._connection.guild_ready_timeout = 0.01
        inject(client, "READY", payloads.ready())
        inject(client, "GUILD_CREATE", payloads.guild_create())
        await asyncio.wait_for(ready.wait(), 5)
        assert client.get_channel(world.channel_id) is not None
        user_opt = option("who", world.user_id, 6)
        payload = payloads.slash_command("pick", [user_opt], resolved=payloads.resolved(users=[world.user]))
        inject(client, "INTERACTION_CREATE", payload)
        req = await offline_discord.wait_for_request("POST", CALLBACK)
        assert req.status == 200  # the fake learned the interaction from the callback itself
        assert seen[0][0] == "application_command"
        assert seen[0][1]["options"] == [{"name": "who", "type": 6, "value": str(world.user_id)}]
    finally:
        await client.close()


async def test_gateway_identify_with_wrong_token_is_closed_4004() -> None:
    async with OfflineDiscord(token="right") as fake:
        client = discord.Client(intents=discord.Intents.default())
        await client.login("right")
        client.http.token = "wrong"  # the gateway sees a different token than REST did
        with pytest.raises(discord.ConnectionClosed) as info:
            await asyncio.wait_for(client.connect(reconnect=False), 5)
        await client.close()
        assert info.value.code == 4004 and fake.gateway.sessions[0].close_code == 4004


async def test_auto_sharded_bot_against_fake_gateway() -> None:
    async with OfflineDiscord() as fake:
        bot = commands.AutoShardedBot(command_prefix="!", intents=_intents(), guild_ready_timeout=0.05)
        ready = asyncio.Event()

        @bot.event
        async def on_ready() -> None:
            ready.set()

        task = asyncio.create_task(bot.start(TOKEN))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            assert bot.shard_count == 1 and bot.get_guild(fake.world.guild_id) is not None
            assert fake.gateway.sessions[0].identify["shard"] == [0, 1]  # type: ignore[index]
        finally:
            await bot.close()
        await asyncio.wait_for(task, 5)
    assert fake.route_keys() == ["GET /users/@me", "GET /oauth2/applications/@me", "GET /gateway/bot"]


async def test_dispatch_ready_with_extra_guild(offline_discord: OfflineDiscord, make_bot: Any) -> None:
    from otel_bot.testing.objects import channel_payload, guild_payload, member_payload, user_payload

    w = offline_discord.world
    other_id, chan_id = snowflake(), snowflake()
    owner = user_payload(username="owner")
    other = guild_payload(
        other_id,
        "Second",
        owner_id=int(owner["id"]),
        channels=[channel_payload(chan_id, other_id, "lobby")],
        members=[member_payload(owner), w.bot_member()],
    )
    bot = await make_bot(ready=False)
    await offline_discord.dispatch_ready(bot, guilds=[w.guild(), other])
    assert sorted(g.id for g in bot.guilds) == sorted([w.guild_id, other_id])
    second = bot.get_guild(other_id)
    assert second is not None and second.chunked and second.get_channel(chan_id) is not None
    assert second.get_member(int(owner["id"])) is not None and second.owner_id == int(owner["id"])
    assert bot._connection.guild_ready_timeout == 2.0  # restored after dispatch_ready
