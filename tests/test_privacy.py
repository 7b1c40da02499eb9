"""Guarantee 5: secrets and privacy, through the whole package (instrument_bot end to end).

A canary bot token (the offline Discord enforces it), interaction tokens (including plain-looking
ones that have no recognisable shape) and webhook tokens run through every scenario: success,
deferred responses, followups, followup-message edits, ``@original`` edits and fetches, channel
webhooks (partial and created through the API), 429s, 5xx retries, a late acknowledgement
(10062), and exceptions whose messages carry the callback URL, the webhook URL, the bare
interaction token and the ``Authorization`` header -- escaping a slash command, a prefix command
and an event listener, and raised inside a checkpoint and an executor offload.

Scanned: every exported span name, attribute, event name and attribute (exception messages and
stack traces included), link attribute, status description, the resource and the scope; every
line the console waterfall printed; every log record written under the ``otel_bot`` logger
hierarchy. A token counts as leaked if the whole token, its URL-quoted form, or any 16-character
middle slice of it appears.

Then the data switches: message content and option values are off by default and exported when
opted in (both settings tested, for slash options, prefix-command arguments and message content);
user ids are off, raw, or an HMAC-SHA256 of the id under a configured key (not the raw id, stable
across calls, different per key, the same value on every span of the user).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import discord
import pytest
from discord.ext import commands
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import otel_bot
from otel_bot import FlowTracker, WaterfallProcessor, checkpoint
from otel_bot import _attributes as A
from otel_bot.testing import CALLBACK, CHANNEL_MESSAGES, FOLLOWUP, OfflineDiscord
from tests.helpers_roots import RootWaiter, roots
from tests.helpers_secrets import exported_text, fragments, strings

pytestmark = pytest.mark.timeout(60)

BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GcAnRy.privacyCanaryBotToken_0123456789abcdefXYZ"
PLAIN_TOKEN = "plain-interaction-token-canary-31337"  # no base64 "interaction:" prefix, no shape


# --- what leaves the process ------------------------------------------------------------------------


def leaks(texts: Sequence[str], secrets: Iterable[str]) -> list[str]:
    blob = "\n".join(texts)
    return [f for s in secrets for f in fragments(s) if f and f in blob]


def leak_sites(spans: Iterable[ReadableSpan], secrets: Iterable[str]) -> list[str]:
    """Where each leak is: ``span name / field`` (for readable failures)."""
    secrets = list(secrets)
    sites: list[str] = []
    for span in spans:
        fields: list[tuple[str, str]] = [("name", span.name), ("status", span.status.description or "")]
        fields += [(f"attr {k}", "\n".join(strings(v))) for k, v in (span.attributes or {}).items()]
        fields += [
            (f"event {e.name} {k}", "\n".join(strings(v)))
            for e in span.events
            for k, v in (e.attributes or {}).items()
        ]
        fields += [(f"resource {k}", str(v)) for k, v in span.resource.attributes.items()]
        for where, text in fields:
            if leaks([text], secrets):
                sites.append(f"{span.name} / {where}")
    return sorted(set(sites))


class OwnLogs(logging.Handler):
    """Every record under the ``otel_bot`` logger hierarchy, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "otel_bot" or record.name.startswith("otel_bot."):
            self.lines.append(self.format(record))


@pytest.fixture
def own_logs() -> Iterator[OwnLogs]:
    handler = OwnLogs()
    logger = logging.getLogger("otel_bot")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


class Pipeline:
    """A private provider: in-memory export + the console waterfall + a span waiter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "privacy-bot"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.console = io.StringIO()
        self.waterfall = WaterfallProcessor(stream=self.console, ascii=True, timer=False, grace_s=0.0)
        self.provider.add_span_processor(self.waterfall)
        self.waiter = RootWaiter()
        self.provider.add_span_processor(self.waiter)

    async def roots(self, count: int, timeout: float = 15.0) -> list[ReadableSpan]:
        return await self.waiter.wait(self.exporter, lambda spans: len(roots(spans)) >= count, timeout)

    def console_text(self) -> str:
        self.waterfall.force_flush()
        return self.console.getvalue()


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    p = Pipeline()
    try:
        yield p
    finally:
        p.provider.shutdown()


@pytest.fixture
async def canary_discord() -> Any:
    async with OfflineDiscord(token=BOT_TOKEN) as fake:
        yield fake


async def _bot(fake: OfflineDiscord, **instrument: Any) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    bot = commands.Bot(command_prefix="!", intents=intents, application_id=fake.application_id)
    await fake.login(bot, token=BOT_TOKEN)
    await fake.dispatch_ready(bot)
    otel_bot.instrument_bot(bot, **instrument)
    return bot


def leaky_message(interaction: discord.Interaction, api_base: str, hook_url: str) -> str:
    return (
        f"POST {api_base}/interactions/{interaction.id}/{interaction.token}/callback failed; "
        f"token={interaction.token}; Authorization: Bot {BOT_TOKEN}; raw {BOT_TOKEN}; hook {hook_url}"
    )


# --- the scenario run ---------------------------------------------------------------------------------


class Scenario:
    """What one scenario run produced."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.secrets: list[str] = [BOT_TOKEN]
        self.errors: list[str] = []
        self.console = ""


async def run_scenarios(
    fake: OfflineDiscord, pipeline: Pipeline, *, plain_tokens: bool = False, inner: bool = False
) -> Scenario:
    """The REST/error scenarios (``inner``: only the checkpoint / FlowTracker / executor one).
    ``plain_tokens``: the escaping exceptions' interactions carry tokens with no recognisable
    shape, raised before any response (the redactor only knows them if the root registered them)."""
    out = Scenario()
    hook = fake.create_webhook(name="canary hook")
    hook_url = f"{fake.api_base}/webhooks/{hook['id']}/{hook['token']}"
    out.secrets.append(hook["token"])
    errors = out.errors
    done: dict[str, asyncio.Event] = {}

    def finished(name: str) -> asyncio.Event:
        return done.setdefault(name, asyncio.Event())

    bot = await _bot(fake, tracer_provider=pipeline.provider)
    try:

        @bot.tree.command(name="flow", description="Every success path")
        async def flow(interaction: discord.Interaction) -> None:
            try:
                await interaction.response.defer(thinking=True)  # CALLBACK, 429 once first
                message = await interaction.followup.send("queued", wait=True)  # FOLLOWUP, 429 first
                await message.edit(content="edited")  # followup message edit
                await interaction.edit_original_response(content="done")  # @original edit
                await interaction.original_response()  # @original fetch
                partial = discord.Webhook.partial(int(hook["id"]), hook["token"], client=bot)
                await partial.send("through a channel webhook", wait=True)
                assert isinstance(interaction.channel, discord.TextChannel)
                made = await interaction.channel.create_webhook(name="made here")
                assert made.token is not None
                out.secrets.append(made.token)
                await made.send("through a created webhook", wait=True)
                await interaction.channel.send("public")  # CHANNEL_MESSAGES, 429 once first
            finally:
                finished("flow").set()

        @bot.tree.command(name="retry", description="5xx then success")
        async def retry(interaction: discord.Interaction) -> None:
            try:
                await interaction.response.defer()
                await interaction.followup.send("after a 500")
            finally:
                finished("retry").set()

        @bot.tree.command(name="late", description="Acknowledged after 3 s")
        async def late(interaction: discord.Interaction) -> None:
            try:
                await interaction.response.send_message("late")
            except discord.NotFound as exc:
                errors.append(f"late {exc.code}")
            finished("late").set()

        @bot.tree.command(name="boom", description="An exception carrying every secret escapes")
        async def boom(interaction: discord.Interaction) -> None:
            finished("boom").set()
            raise RuntimeError(leaky_message(interaction, fake.api_base, hook_url))

        @bot.tree.command(name="bare", description="The bare token escapes before any response")
        async def bare(interaction: discord.Interaction) -> None:
            finished("bare").set()
            raise ValueError(f"bad token {interaction.token}")

        @bot.tree.command(name="inner", description="Leaks inside a checkpoint, a flow and an offload")
        async def inner_cmd(interaction: discord.Interaction) -> None:
            text = leaky_message(interaction, fake.api_base, hook_url)
            try:
                with checkpoint("leaky_step"):
                    raise LookupError(text)
            except LookupError:
                errors.append("checkpoint")

            def offloaded() -> None:
                raise OSError(text)

            try:
                await asyncio.get_running_loop().run_in_executor(None, offloaded)
            except OSError:
                errors.append("executor")
            try:
                with FlowTracker("leaky_flow", user_id=interaction.user.id) as tracker:
                    tracker.checkpoint("step_start")
                    raise KeyError(text)
            except KeyError:
                errors.append("flow")
            await interaction.response.send_message("survived")
            finished("inner").set()

        @bot.command(name="leak")
        async def leak(ctx: commands.Context[Any]) -> None:
            finished("leak").set()
            raise RuntimeError(f"prefix: Authorization: Bot {BOT_TOKEN} {hook_url}")

        @bot.listen("on_message")
        async def listener(message: discord.Message) -> None:
            if message.content == "listener":
                finished("listener").set()
                raise RuntimeError(f"listener: {BOT_TOKEN} / {hook_url}")

        payloads: list[dict[str, Any]] = []
        if inner:
            payloads.append(fake.payloads.slash_command("inner"))
            fake.inject(bot, "INTERACTION_CREATE", payloads[0])
            await asyncio.wait_for(finished("inner").wait(), 15)
            expected_roots = 1
        else:
            fake.rate_limit("POST", CALLBACK, retry_after=0.01, times=1)
            fake.rate_limit("POST", CHANNEL_MESSAGES, retry_after=0.01, times=1)
            fake.rate_limit("POST", FOLLOWUP, retry_after=0.01, times=1)
            payloads.append(fake.payloads.slash_command("flow"))
            fake.inject(bot, "INTERACTION_CREATE", payloads[0])
            await asyncio.wait_for(finished("flow").wait(), 15)
            fake.clear_faults()
            fake.server_error("POST", FOLLOWUP, status=500, times=1)
            later = [
                fake.payloads.slash_command("retry"),
                fake.payloads.slash_command("late", age_ms=3500),
                fake.payloads.slash_command("boom"),
                fake.payloads.slash_command("bare"),
            ]
            if plain_tokens:  # tokens the redactor cannot recognise by their shape
                later[2]["token"] = PLAIN_TOKEN[::-1] + "-x"
                later[3]["token"] = PLAIN_TOKEN
            for payload in later:
                fake.inject(bot, "INTERACTION_CREATE", payload)
            fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create("!leak"))
            fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create("listener"))
            payloads += later
            for name in ("retry", "late", "boom", "bare", "leak", "listener"):
                await asyncio.wait_for(finished(name).wait(), 15)
            expected_roots = 5 + 1 + 4  # 5 slash, !leak, two on_message roots per message
        out.secrets += [p["token"] for p in payloads]
        out.spans = await pipeline.roots(expected_roots)
    finally:
        otel_bot.uninstrument_bot(bot)
        await bot.close()
    out.console = pipeline.console_text()
    return out


def assert_nothing_leaked(result: Scenario, own_logs: OwnLogs) -> None:
    secrets = result.secrets
    sites = leak_sites(result.spans, secrets)
    assert sites == [], "\n".join(sites)
    assert leaks(exported_text(result.spans), secrets) == []
    lines = result.console.splitlines()
    assert leaks(lines, secrets) == [], [line for line in lines if leaks([line], secrets)]
    assert leaks(own_logs.lines, secrets) == [], [
        line[:200] for line in own_logs.lines if leaks([line], secrets)
    ]


async def test_no_token_ever_leaves_the_process(
    canary_discord: OfflineDiscord, pipeline: Pipeline, own_logs: OwnLogs
) -> None:
    result = await run_scenarios(canary_discord, pipeline)
    spans = result.spans
    assert result.errors == ["late 10062"]
    names = sorted({s.name for s in roots(spans)})
    assert names == ["!leak", "/bare", "/boom", "/flow", "/late", "/retry", "event on_message"]
    rest = [s for s in spans if s.kind is SpanKind.CLIENT]
    events = {e.name for s in rest for e in s.events}
    assert A.EVENT_RATE_LIMITED in events and A.EVENT_REST_RETRY in events
    rest_names = {s.name for s in rest}
    assert {
        "POST /interactions/{interaction_id}/{interaction_token}/callback",
        "POST /webhooks/{application_id}/{interaction_token}",
        "PATCH /webhooks/{application_id}/{interaction_token}/messages/{message_id}",
        "PATCH /webhooks/{application_id}/{interaction_token}/messages/@original",
        "GET /webhooks/{application_id}/{interaction_token}/messages/@original",
        "POST /webhooks/{webhook_id}/{webhook_token}",
        "POST /channels/{channel_id}/webhooks",
        "POST /channels/{channel_id}/messages",
    } <= rest_names, rest_names
    # the escaped exceptions were recorded (redacted), not dropped
    failed = {s.name for s in roots(spans) if s.status.status_code is StatusCode.ERROR}
    assert failed == {"/boom", "/bare", "!leak", "event on_message"}
    recorded = [
        (e.attributes or {}).get(A.EXCEPTION_MESSAGE, "")
        for s in spans
        for e in s.events
        if e.name == A.EVENT_EXCEPTION
    ]
    assert any("REDACTED" in m and "/interactions/" in m for m in recorded), recorded
    assert len(set(result.secrets)) >= 8
    assert_nothing_leaked(result, own_logs)


async def test_shapeless_interaction_tokens_are_redacted_before_any_response(
    canary_discord: OfflineDiscord, pipeline: Pipeline, own_logs: OwnLogs
) -> None:
    """Tokens with no recognisable shape, in exceptions raised before the bot answered (so the
    REST wrapper has not seen them yet): the interaction root registers its token for redaction."""
    result = await run_scenarios(canary_discord, pipeline, plain_tokens=True)
    assert PLAIN_TOKEN in result.secrets
    assert_nothing_leaked(result, own_logs)


async def test_exceptions_in_checkpoints_flows_and_offloads_are_redacted(
    canary_discord: OfflineDiscord, pipeline: Pipeline, own_logs: OwnLogs
) -> None:
    result = await run_scenarios(canary_discord, pipeline, inner=True)
    assert sorted(result.errors) == ["checkpoint", "executor", "flow"]
    failed = {s.name for s in result.spans if s.status.status_code is StatusCode.ERROR}
    assert {"leaky_step", "leaky_flow"} <= failed
    recorded = [e for s in result.spans for e in s.events if e.name == A.EVENT_EXCEPTION]
    assert len(recorded) >= 3  # checkpoint, flow, executor offload
    assert_nothing_leaked(result, own_logs)


async def test_internal_error_log_lines_are_redacted(
    canary_discord: OfflineDiscord, own_logs: OwnLogs, monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline
) -> None:
    """A bug inside otel_bot whose exception text carries a Discord URL (the guard logs it with
    its traceback, strict mode off): the log line the package writes is redacted too."""
    from otel_bot import _guard, _rest

    fake = canary_discord
    original = _rest._start_attributes

    def buggy(span: Any, route: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"cannot build attributes for {route.url} (Bot {BOT_TOKEN})")

    monkeypatch.setattr(_rest, "_start_attributes", buggy)
    _guard.set_strict(False)
    _guard.reset()
    tokens: list[str] = []
    try:
        bot = await _bot(fake, tracer_provider=pipeline.provider)
        done = asyncio.Event()

        @bot.tree.command(name="ping", description="Ping")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            await interaction.followup.send("pong")
            done.set()

        try:
            payload = fake.payloads.slash_command("ping")
            tokens.append(payload["token"])
            fake.inject(bot, "INTERACTION_CREATE", payload)
            await asyncio.wait_for(done.wait(), 10)
            await pipeline.roots(1)
        finally:
            otel_bot.uninstrument_bot(bot)
            await bot.close()
        assert _guard.error_counts().get("rest.start", 0) >= 2
    finally:
        _guard.set_strict(None)
        _guard.reset()
        monkeypatch.setattr(_rest, "_start_attributes", original)
    logged = [line for line in own_logs.lines if "internal error in rest.start" in line]
    assert len(logged) == 1
    assert "RuntimeError" in logged[0]  # the traceback is still there...
    assert leaks(own_logs.lines, [BOT_TOKEN, *tokens]) == []  # ...without the secrets


# --- message content and option values ----------------------------------------------------------------

SECRET_CONTENT = "my password is hunter2-correct-horse"
SECRET_OPTION = "battery-staple-option-value"
SECRET_ARG = "prefix-argument-secret-value"


async def _data_run(fake: OfflineDiscord, pipeline: Pipeline, **options: Any) -> list[ReadableSpan]:
    bot = await _bot(fake, tracer_provider=pipeline.provider, **options)
    done = asyncio.Event()
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if count == 3:
            done.set()

    try:

        @bot.tree.command(name="say", description="Say")
        async def say(interaction: discord.Interaction, text: str, times: int) -> None:
            await interaction.response.send_message(f"you said {text}")
            tick()

        @bot.command(name="echo")
        async def echo(ctx: commands.Context[Any], *, text: str) -> None:
            await ctx.send(f"echo {text}")
            tick()

        @bot.listen("on_message")
        async def heard(message: discord.Message) -> None:
            if message.content == SECRET_CONTENT:
                tick()

        fake.inject(
            bot, "INTERACTION_CREATE", fake.payloads.slash_command("say", {"text": SECRET_OPTION, "times": 3})
        )
        fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create(f"!echo {SECRET_ARG}"))
        fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create(SECRET_CONTENT))
        await asyncio.wait_for(done.wait(), 10)
        # /say, !echo, and two on_message roots per message (the bot's own + heard)
        return await pipeline.roots(1 + 1 + 4)
    finally:
        otel_bot.uninstrument_bot(bot)
        await bot.close()


def _root(spans: Sequence[ReadableSpan], name: str, content: str | None = None) -> ReadableSpan:
    found = [s for s in roots(spans) if s.name == name]
    assert found, [s.name for s in roots(spans)]
    return found[0]


async def test_message_content_and_option_values_off_by_default(
    canary_discord: OfflineDiscord, pipeline: Pipeline, own_logs: OwnLogs
) -> None:
    spans = await _data_run(canary_discord, pipeline)
    for span in roots(spans):
        attrs = dict(span.attributes or {})
        assert A.DISCORD_MESSAGE_CONTENT not in attrs, span.name
        assert A.DISCORD_COMMAND_OPTIONS not in attrs, span.name
    text = [*exported_text(spans), pipeline.console_text(), *own_logs.lines]
    blob = "\n".join(text)
    for secret in (SECRET_CONTENT, SECRET_OPTION, SECRET_ARG, "hunter2"):
        assert secret not in blob, f"user data {secret!r} exported without opt-in"
    # what the bot sent back (it echoes the user's words) is not exported either
    assert "you said" not in blob and "echo " + SECRET_ARG not in blob


async def test_message_content_and_option_values_when_opted_in(
    canary_discord: OfflineDiscord, pipeline: Pipeline
) -> None:
    spans = await _data_run(
        canary_discord, pipeline, capture_message_content=True, capture_option_values=True
    )
    say = dict(_root(spans, "/say").attributes or {})
    assert isinstance(say[A.DISCORD_COMMAND_OPTIONS], str)
    assert SECRET_OPTION in say[A.DISCORD_COMMAND_OPTIONS] and "3" in say[A.DISCORD_COMMAND_OPTIONS]
    echo = dict(_root(spans, "!echo").attributes or {})
    assert echo[A.DISCORD_COMMAND_OPTIONS] == SECRET_ARG
    assert echo[A.DISCORD_MESSAGE_CONTENT] == f"!echo {SECRET_ARG}"
    contents = [
        dict(s.attributes or {}).get(A.DISCORD_MESSAGE_CONTENT)
        for s in roots(spans)
        if s.name == "event on_message"
    ]
    assert SECRET_CONTENT in contents
    # still only the user's words, never the bot's replies or REST bodies
    rest = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert rest and "you said" not in "\n".join(exported_text(rest))


async def test_captured_text_is_bounded(canary_discord: OfflineDiscord, pipeline: Pipeline) -> None:
    fake = canary_discord
    bot = await _bot(
        fake, tracer_provider=pipeline.provider, capture_message_content=True, max_attribute_length=40
    )
    seen = asyncio.Event()
    try:

        @bot.listen("on_message")
        async def heard(message: discord.Message) -> None:
            seen.set()

        fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create("x" * 1900))
        await asyncio.wait_for(seen.wait(), 10)
        spans = await pipeline.roots(2)
    finally:
        otel_bot.uninstrument_bot(bot)
        await bot.close()
    contents = [dict(s.attributes or {}).get(A.DISCORD_MESSAGE_CONTENT) for s in roots(spans)]
    assert contents and all(c == "x" * 40 for c in contents), contents


# --- user ids ---------------------------------------------------------------------------------------------


async def _user_id_run(fake: OfflineDiscord, pipeline: Pipeline, **options: Any) -> list[ReadableSpan]:
    """Two interactions and a message from the same user, a FlowTracker with the user's id."""
    bot = await _bot(fake, tracer_provider=pipeline.provider, **options)
    done = asyncio.Event()
    count = 0
    try:

        @bot.tree.command(name="who", description="Who")
        async def who(interaction: discord.Interaction) -> None:
            nonlocal count
            with FlowTracker("who_flow", user_id=interaction.user.id):
                await interaction.response.send_message("you")
            count += 1
            if count == 3:
                done.set()

        @bot.listen("on_message")
        async def heard(message: discord.Message) -> None:
            nonlocal count
            if message.content == "hello":
                count += 1
                if count == 3:
                    done.set()

        for _ in range(2):
            fake.inject(bot, "INTERACTION_CREATE", fake.payloads.slash_command("who"))
        fake.inject(bot, "MESSAGE_CREATE", fake.payloads.message_create("hello"))
        await asyncio.wait_for(done.wait(), 10)
        return await pipeline.roots(2 + 2)
    finally:
        otel_bot.uninstrument_bot(bot)
        await bot.close()


def _user_values(spans: Sequence[ReadableSpan], keys: tuple[str, ...] = (A.DISCORD_USER_ID,)) -> list[Any]:
    out = []
    for span in spans:
        attrs = dict(span.attributes or {})
        for key in keys:
            if key in attrs:
                out.append(attrs[key])
    return out


BOTH = (A.DISCORD_USER_ID, A.BOT_FLOW_USER_ID)


async def test_user_ids_raw_by_default(canary_discord: OfflineDiscord, pipeline: Pipeline) -> None:
    raw = str(canary_discord.world.user_id)
    spans = await _user_id_run(canary_discord, pipeline)
    values = _user_values(spans, BOTH)
    assert len(values) == 2 + 2 + 2 and set(values) == {raw}


async def test_user_ids_switched_off(canary_discord: OfflineDiscord, pipeline: Pipeline) -> None:
    raw = str(canary_discord.world.user_id)
    spans = await _user_id_run(canary_discord, pipeline, capture_user_ids=False)
    assert _user_values(spans, BOTH) == []
    for span in spans:
        for key, value in (span.attributes or {}).items():
            if key != A.URL_FULL:  # REST paths name the resource, never the requesting user here
                assert raw not in str(value), (span.name, key)


async def test_user_ids_hmac(canary_discord: OfflineDiscord, pipeline: Pipeline) -> None:
    raw = str(canary_discord.world.user_id)
    spans_a = await _user_id_run(canary_discord, pipeline, user_id_hmac_key=b"key-one")
    values_a = _user_values(spans_a)
    expected = hmac.new(b"key-one", raw.encode(), hashlib.sha256).hexdigest()
    assert len(values_a) == 2 + 2  # two slash roots, two on_message roots
    assert set(values_a) == {expected}  # not the raw id, stable across calls
    assert raw not in "\n".join(str(v) for v in values_a)
    pipeline.exporter.clear()
    spans_b = await _user_id_run(canary_discord, pipeline, user_id_hmac_key="key-two")
    values_b = set(_user_values(spans_b))
    assert values_b == {hmac.new(b"key-two", raw.encode(), hashlib.sha256).hexdigest()}
    assert values_b.isdisjoint(values_a)  # a different key, a different value


async def test_user_id_hmac_is_the_same_on_every_span_of_the_user(
    canary_discord: OfflineDiscord, pipeline: Pipeline
) -> None:
    """A FlowTracker's ``bot.flow.user_id`` and the roots' ``discord.user.id`` must agree, or the
    hashed id cannot join a user's flows to their interactions."""
    raw = str(canary_discord.world.user_id)
    spans = await _user_id_run(canary_discord, pipeline, user_id_hmac_key=b"key-one")
    flows = _user_values(spans, (A.BOT_FLOW_USER_ID,))
    assert len(flows) == 2
    assert set(_user_values(spans, BOTH)) == {hmac.new(b"key-one", raw.encode(), hashlib.sha256).hexdigest()}


def test_hash_user_id_helper() -> None:
    from otel_bot._config import Settings
    from otel_bot._privacy import hash_user_id

    on = Settings(user_id_hmac_key=b"k")
    assert hash_user_id(2**64 - 1, on) == hmac.new(b"k", str(2**64 - 1).encode(), hashlib.sha256).hexdigest()
    assert hash_user_id(42, on) == hash_user_id("42", on) != "42"
    assert hash_user_id(42, Settings()) == "42"
    assert hash_user_id(42, Settings(capture_user_ids=False)) is None
    assert hash_user_id("not a number", Settings()) is None
    assert hash_user_id(None, Settings()) is None
