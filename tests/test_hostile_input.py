"""Guarantee 3: hostile or broken gateway input.

Property tests (hypothesis) build malformed and extreme INTERACTION_CREATE payloads -- missing and
mistyped fields, unknown interaction and component types, 100-character custom_ids, odd unicode
(lone surrogates included: ``json.loads`` produces them from ``"\\ud800"``), huge option trees,
ids at the snowflake limits 0 and 2**64-1 -- and feed each one through
``bot._connection.parsers["INTERACTION_CREATE"]`` twice: once with otel_bot's patches reverted
(plain discord.py) and once instrumented, on two identically set-up bots of one offline Discord.

For every example:

* the instrumentation raises nothing of its own (strict mode is on under the test suite, so any
  internal error re-raises and shows up as a difference or a loop error);
* discord.py behaves the same: the parser raises the same exception (or none), the same handlers
  are called with the same arguments, the same error handlers see the same errors, the same tasks
  fail the same way, discord.py logs the same records;
* every span produced ended and is well-formed: a bounded, encodable name; SERVER roots with no
  parent; children in their root's trace; valid attribute types (the SDK logs nothing about
  invalid values); the OTLP protobuf encoder accepts the batch;
* attribute values are bounded in length (``Settings.max_attribute_length``) and count, event
  counts too, so hostile input cannot bloat exports.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import otel_bot
from otel_bot import _attributes as A
from otel_bot import _guard, _instrument, _privacy
from otel_bot._config import Settings
from otel_bot.testing import OfflineDiscord

pytestmark = pytest.mark.timeout(180)

#: Small enough for CI; ``OTEL_BOT_HYPOTHESIS_EXAMPLES=500`` for a deeper local run.
MAX_EXAMPLES = int(os.environ.get("OTEL_BOT_HYPOTHESIS_EXAMPLES", "40"))
PROPERTY = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=False,
    print_blob=True,
)

#: Bounds the exported spans must respect (hostile input cannot make them bigger).
MAX_ATTR_LEN = Settings().max_attribute_length
MAX_SPAN_ATTRIBUTES = 40  # a root writes ~20 of its own keys; input never adds keys
MAX_EVENTS = 8
MAX_EXCEPTION_MESSAGE = _privacy.MAX_EXCEPTION_MESSAGE_LENGTH
MAX_STACKTRACE = _privacy.MAX_STACKTRACE_LENGTH


# --- strategies ---------------------------------------------------------------------------------

LIMIT_IDS = st.sampled_from([0, 1, (1 << 22) - 1, 1 << 22, 2**63 - 1, 2**63, 2**64 - 1])
SNOWFLAKES = LIMIT_IDS | st.integers(min_value=0, max_value=2**64 - 1)
ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\x00" * 40,
        "\u202e\u202dtxt",
        "\ud800",
        "a\udfffb",
        "\ud83d\ude00",  # a surrogate pair as two code points (json.loads keeps lone halves apart)
        "🎉" * 60,
        "Z̤͔ͧ̑̓ä͖̭̈̇l͖͎g̞̥͈ͮo̵",
        "\u0301" * 100,
        "\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48"  # fullwidth letters,
        "x" * 100,
        "y" * 101,
        "z" * 5000,
        "%s%n%x{0}{}",
        "${jndi:ldap://x}",
        "<script>alert(1)</script>",
        "../../etc/passwd",
        "line\nbreak\r\n",
        "0x7fffffff",
        "-1",
        "18446744073709551615",
    ]
)
TEXT = (
    ODD_TEXT
    | st.text(max_size=120)
    | st.text(alphabet=st.characters(codec="utf-8"), min_size=90, max_size=100)
)
CUSTOM_IDS = (
    st.sampled_from(
        ["hostile:btn", "hostile:sel", "hostile:modal", "dyn:7", "dyn:0", "dyn:18446744073709551615"]
    )
    | TEXT
    | st.text(min_size=100, max_size=100)
    | st.integers(-(2**70), 2**70).map(lambda n: f"dyn:{n}")
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
OPTION_TYPES = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) | st.sampled_from(
    [0, 12, 99, -1, "3", None, 3.5]
)
NAMES = st.sampled_from(["echo", "ladder", "queue", "text", "count", "region", "Inspect", "Quote"]) | TEXT


def _leaf_option() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"name": NAMES, "type": OPTION_TYPES},
        optional={"value": JSONISH, "focused": st.booleans() | JSONISH, "options": JSONISH},
    )


OPTION_TREES = st.recursive(
    _leaf_option(),
    lambda kids: st.fixed_dictionaries(
        {"name": NAMES, "type": st.sampled_from([1, 2]), "options": st.lists(kids, max_size=5)}
    ),
    max_leaves=25,
)


def _deep_tree(depth: int) -> list[dict[str, Any]]:
    leaf: list[dict[str, Any]] = [{"name": "text", "type": 3, "value": "deep"}]
    for i in range(depth):
        leaf = [{"name": f"g{i}", "type": 1 + (i % 2), "options": leaf}]
    return leaf


def _wide_tree(width: int) -> list[dict[str, Any]]:
    return [{"name": f"o{i}", "type": 3, "value": "v" * 50} for i in range(width)]


OPTIONS = (
    st.lists(OPTION_TREES, max_size=6)
    | st.integers(min_value=50, max_value=400).map(_deep_tree)
    | st.integers(min_value=100, max_value=2000).map(_wide_tree)
    | JSONISH
)
INTERACTION_TYPES = st.sampled_from([1, 2, 3, 4, 5]) | st.sampled_from(
    [0, 6, 99, -1, 2**64 - 1, "2", None, 2.0]
)
COMPONENT_TYPES = st.sampled_from([2, 3, 5, 6, 7, 8]) | st.sampled_from(
    [0, 1, 4, 9, 17, 99, -1, "2", None, 2**64]
)
TOP_KEYS = [
    "id",
    "type",
    "token",
    "version",
    "application_id",
    "data",
    "guild_id",
    "channel",
    "channel_id",
    "member",
    "user",
    "locale",
    "guild_locale",
    "message",
    "guild",
    "app_permissions",
    "entitlements",
    "attachment_size_limit",
    "context",
    "authorizing_integration_owners",
]
DATA_KEYS = [
    "id",
    "name",
    "type",
    "options",
    "resolved",
    "target_id",
    "guild_id",
    "custom_id",
    "component_type",
    "values",
    "components",
]


@dataclass
class Recipe:
    """How to turn a well-formed payload of ``kind`` into a hostile one (pure data)."""

    kind: str
    interaction_id: Any
    user_id: Any
    name: Any
    options: Any
    custom_id: Any
    component_type: Any
    values: Any
    locale: Any
    interaction_type: Any = None  # None: keep the kind's type
    ids: dict[str, int] = field(default_factory=dict)  # other ids set to snowflake limits
    drop: frozenset[str] = frozenset()
    replace: dict[str, Any] = field(default_factory=dict)
    data_drop: frozenset[str] = frozenset()
    data_replace: dict[str, Any] = field(default_factory=dict)


ID_FIELDS = [
    "guild_id",
    "channel_id",
    "application_id",
    "message.id",
    "channel.id",
    "data.id",
    "data.target_id",
]
KINDS = st.sampled_from(
    ["command", "subcommand", "autocomplete", "user", "message", "button", "select", "modal"]
)


@st.composite
def recipes(draw: st.DrawFn, *, mutate: bool = True) -> Recipe:
    kind = draw(KINDS)
    recipe = Recipe(
        kind=kind,
        interaction_id=draw(SNOWFLAKES | st.sampled_from(["0", str(2**64 - 1)])),
        user_id=draw(st.none() | SNOWFLAKES),
        name=draw(NAMES),
        options=draw(OPTIONS),
        custom_id=draw(CUSTOM_IDS),
        component_type=draw(COMPONENT_TYPES),
        values=draw(st.lists(TEXT, max_size=30) | JSONISH),
        locale=draw(st.sampled_from(["en-US", "de", "xx-YY"]) | TEXT),
        ids=draw(st.dictionaries(st.sampled_from(ID_FIELDS), LIMIT_IDS, max_size=3)),
    )
    if mutate:
        recipe.interaction_type = draw(st.none() | INTERACTION_TYPES)
        recipe.drop = draw(st.frozensets(st.sampled_from(TOP_KEYS), max_size=3))
        recipe.replace = draw(st.dictionaries(st.sampled_from(TOP_KEYS), JSONISH, max_size=2))
        recipe.data_drop = draw(st.frozensets(st.sampled_from(DATA_KEYS), max_size=2))
        recipe.data_replace = draw(st.dictionaries(st.sampled_from(DATA_KEYS), JSONISH, max_size=2))
    return recipe


def build_payload(fake: OfflineDiscord, r: Recipe) -> dict[str, Any]:
    """A payload from the fake's builders, then bent by the recipe."""
    p = fake.payloads
    if r.kind == "command":
        payload = p.slash_command("echo", {"text": "hi", "count": 1})
        payload["data"]["name"] = r.name
        payload["data"]["options"] = r.options
    elif r.kind == "subcommand":
        payload = p.slash_command("ladder", {"region": "eu"}, subcommand="queue")
        payload["data"]["options"][0]["options"] = r.options
    elif r.kind == "autocomplete":
        payload = p.autocomplete("ladder", "region", "e", subcommand="queue")
        if isinstance(r.options, list):
            payload["data"]["options"][0]["options"].extend(r.options)
    elif r.kind == "user":
        payload = p.user_command("Inspect")
        payload["data"]["name"] = r.name
    elif r.kind == "message":
        payload = p.message_command("Quote")
    elif r.kind == "button":
        payload = p.button("hostile:btn")
        payload["data"]["custom_id"] = r.custom_id
        payload["data"]["component_type"] = r.component_type
    elif r.kind == "select":
        payload = p.select("hostile:sel", ["a"])
        payload["data"]["custom_id"] = r.custom_id
        payload["data"]["component_type"] = r.component_type
        payload["data"]["values"] = r.values
    else:
        payload = p.modal_submit("hostile:modal", {"reason": "because"})
        payload["data"]["custom_id"] = r.custom_id
        if isinstance(r.values, list):
            payload["data"]["components"].extend(
                {"type": 1, "components": [{"type": 4, "custom_id": v, "value": v}]} for v in r.values
            )
    payload["id"] = r.interaction_id if isinstance(r.interaction_id, str) else str(r.interaction_id)
    payload["locale"] = r.locale
    if r.user_id is not None:
        member = payload.get("member")
        holder = member.get("user") if isinstance(member, dict) else payload.get("user")
        if isinstance(holder, dict):
            holder["id"] = str(r.user_id)
    for where, value in r.ids.items():
        holder_key, _, key = where.rpartition(".")
        target = payload.get(holder_key) if holder_key else payload
        if isinstance(target, dict):
            target[key or where] = str(value)
    if r.interaction_type is not None:
        payload["type"] = r.interaction_type
    for key in r.drop:
        payload.pop(key, None)
    payload.update(copy.deepcopy(r.replace))
    data = payload.get("data")
    if isinstance(data, dict):
        for key in r.data_drop:
            data.pop(key, None)
        data.update(copy.deepcopy(r.data_replace))
    return payload


# --- the bots -----------------------------------------------------------------------------------


def describe(value: Any) -> Any:
    """A comparable, address-free description of a handler argument."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, discord.Interaction):
        return ("Interaction", value.id)
    ident = getattr(value, "id", None)
    return (type(value).__name__, ident if isinstance(ident, int) else None)


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def err(exc: BaseException) -> tuple[str, ...]:
    """An exception as the chain of (type, message) that discord.py wrapped it in."""
    out: list[str] = []
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        out.append(f"{type(current).__name__}: {_ADDRESS.sub('', str(current))[:500]}")
        current = getattr(current, "original", None) or current.__cause__
        seen += 1
    return tuple(out)


class HostileView(discord.ui.View):
    def __init__(self, log: list[Any]) -> None:
        super().__init__(timeout=None)
        self.log = log

    @discord.ui.button(label="Go", custom_id="hostile:btn")
    async def go(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.log.append(("button", interaction.data.get("custom_id") if interaction.data else None))

    @discord.ui.select(
        custom_id="hostile:sel", options=[discord.SelectOption(label="a"), discord.SelectOption(label="b")]
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
        self.log.append(("select", describe(select.values)))

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: Any) -> None:
        self.log.append(("view_error", err(error)))


class HostileDynamic(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"dyn:(?P<id>[0-9]+)"):
    def __init__(self, ident: int) -> None:
        super().__init__(discord.ui.Button(label="Dyn", custom_id=f"dyn:{ident}"))
        self.ident = ident

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: Any, match: re.Match[str]
    ) -> HostileDynamic:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        log = interaction.client.hostile_log  # type: ignore[attr-defined]
        log.append(("dynamic", self.ident))
        if self.ident == 0:
            raise LookupError("no item 0")


class HostileModal(discord.ui.Modal, title="Why"):
    reason: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Reason", custom_id="reason")

    def __init__(self, log: list[Any]) -> None:
        super().__init__(custom_id="hostile:modal", timeout=None)
        self.log = log

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.log.append(("modal", self.reason.value))

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        self.log.append(("modal_error", err(error)))


def setup_bot(bot: commands.Bot) -> list[Any]:
    """Commands, context menus, a persistent view, a DynamicItem and a modal that only record."""
    log: list[Any] = []
    bot.hostile_log = log  # type: ignore[attr-defined]

    @bot.tree.command(name="echo", description="Echo")
    async def echo(interaction: discord.Interaction, text: str, count: int) -> None:
        log.append(("echo", text, count))

    ladder = app_commands.Group(name="ladder", description="Ladder")

    @ladder.command(name="queue", description="Queue")
    async def queue(interaction: discord.Interaction, region: str) -> None:
        log.append(("queue", region))

    @queue.autocomplete("region")
    async def region_complete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        log.append(("autocomplete", current))
        # raising keeps discord.py from answering Discord: two runs of one id must not race the fake
        raise RuntimeError("autocomplete recorded")

    bot.tree.add_command(ladder)

    @bot.tree.context_menu(name="Inspect")
    async def inspect(interaction: discord.Interaction, member: discord.Member) -> None:
        log.append(("inspect", describe(member)))

    @bot.tree.context_menu(name="Quote")
    async def quote(interaction: discord.Interaction, message: discord.Message) -> None:
        log.append(("quote", describe(message)))

    async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.append(("tree_error", err(error)))

    bot.tree.on_error = on_tree_error  # type: ignore[method-assign]

    async def on_error(event: str, *args: Any, **kwargs: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        log.append(("client_error", event, err(exc) if exc else None))

    bot.on_error = on_error  # type: ignore[method-assign]
    bot.add_view(HostileView(log))
    bot.add_dynamic_items(HostileDynamic)
    return log


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.items: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.items.append(record)


class SpanTracker(SpanProcessor):
    """Every span started while active (to prove each one ended)."""

    def __init__(self) -> None:
        self.active = False
        self.started: list[Any] = []

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        if self.active:
            self.started.append(span)

    def on_end(self, span: ReadableSpan) -> None:
        pass


_TRACKER: SpanTracker | None = None


def tracker() -> SpanTracker:
    global _TRACKER
    if _TRACKER is None:
        _TRACKER = SpanTracker()
        trace.get_tracer_provider().add_span_processor(_TRACKER)  # type: ignore[attr-defined]
    return _TRACKER


# --- one run of one payload -----------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything discord.py did with one payload."""

    raised: tuple[str, ...] | None = None
    calls: list[Any] = field(default_factory=list)
    task_errors: list[tuple[str, ...]] = field(default_factory=list)
    loop_errors: list[Any] = field(default_factory=list)
    discord_logs: list[tuple[str, str, Any]] = field(default_factory=list)


async def drain(before: set[asyncio.Task[Any]], outcome: Outcome, timeout: float = 10.0) -> None:
    """Wait for every task the dispatch created (and the tasks they created) to finish."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    me = asyncio.current_task()
    seen: set[asyncio.Task[Any]] = set()
    while True:
        new = {t for t in asyncio.all_tasks() if t not in before and t is not me}
        pending = {t for t in new if not t.done()}
        for task in new - seen:
            seen.add(task)
        if not pending:
            break
        remaining = deadline - loop.time()
        assert remaining > 0, f"tasks still running: {[t.get_name() for t in pending]}"
        await asyncio.wait(pending, timeout=remaining)
    for task in sorted(seen, key=lambda t: t.get_name()):
        if task.cancelled():
            outcome.task_errors.append(("cancelled", task.get_name()))
        elif task.exception() is not None:
            outcome.task_errors.append((task.get_name(), *err(task.exception())))  # type: ignore[arg-type]


async def run_once(bot: commands.Bot, payload: dict[str, Any], event: str = "INTERACTION_CREATE") -> Outcome:
    outcome = Outcome()
    log: list[Any] = bot.hostile_log  # type: ignore[attr-defined]
    log.clear()
    loop = asyncio.get_running_loop()
    old_handler = loop.get_exception_handler()
    loop.set_exception_handler(
        lambda _l, ctx: outcome.loop_errors.append((ctx.get("message"), repr(ctx.get("exception"))))
    )
    records = _Records()
    discord_logger = logging.getLogger("discord")
    old_level = discord_logger.level
    discord_logger.setLevel(logging.DEBUG)
    discord_logger.addHandler(records)
    # the modal is consumed by a successful submit: offer a fresh one every time
    bot._connection.store_view(HostileModal(log))
    before = set(asyncio.all_tasks())
    try:
        try:
            bot._connection.parsers[event](copy.deepcopy(payload))
        except Exception as exc:
            outcome.raised = err(exc)
        await drain(before, outcome)
    finally:
        loop.set_exception_handler(old_handler)
        discord_logger.removeHandler(records)
        discord_logger.setLevel(old_level)
    outcome.calls = list(log)
    outcome.discord_logs = [
        (r.levelname, str(r.msg), type(r.exc_info[1]).__name__ if r.exc_info and r.exc_info[1] else None)
        for r in records.items
        if not r.name.startswith("discord.http") and not r.name.startswith("discord.webhook")
    ]
    return outcome


# --- span checks ----------------------------------------------------------------------------------


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_value(key: str, value: Any, where: str, limit: int) -> None:
    assert isinstance(value, (str, bool, int, float, tuple)), (
        f"{where}: {key} has type {type(value).__name__}"
    )
    if isinstance(value, str):
        assert len(value) <= limit, f"{where}: {key} is {len(value)} chars (limit {limit})"
        assert _encodable(value), f"{where}: {key} is not encodable as UTF-8"
    elif isinstance(value, int) and not isinstance(value, bool):
        assert -(2**63) <= value < 2**63, f"{where}: {key}={value} does not fit int64"
    elif isinstance(value, tuple):
        assert len(value) <= _privacy.MAX_SEQUENCE_LENGTH, f"{where}: {key} has {len(value)} items"
        for item in value:
            _check_value(key, item, where, limit)


def check_spans(spans: list[ReadableSpan], started: list[Any]) -> list[ReadableSpan]:
    """Every started span ended; every exported span is well-formed and bounded; returns roots."""
    for span in started:
        assert span.end_time is not None, f"span {span.name!r} never ended"
    by_id = {s.context.span_id: s for s in spans}
    roots = [s for s in spans if s.parent is None]
    for span in spans:
        where = repr(span.name[:60])
        assert isinstance(span.name, str) and 0 < len(span.name) <= _privacy.MAX_NAME_LENGTH, where
        assert _encodable(span.name), f"span name {where} is not encodable"
        assert span.context.trace_id != 0 and span.context.span_id != 0
        assert (
            span.start_time is not None and span.end_time is not None and span.start_time <= span.end_time
        ), where
        if span.parent is None:
            assert span.kind is SpanKind.SERVER, where
        else:
            parent = by_id.get(span.parent.span_id)
            assert parent is not None, f"{where}: parent not exported"
            assert parent.context.trace_id == span.context.trace_id, where
        attrs = dict(span.attributes or {})
        assert len(attrs) <= MAX_SPAN_ATTRIBUTES, f"{where}: {len(attrs)} attributes"
        assert span.dropped_attributes == 0 and span.dropped_events == 0, where
        for key, value in attrs.items():
            _check_value(key, value, where, MAX_ATTR_LEN)
        assert len(span.events) <= MAX_EVENTS, f"{where}: {len(span.events)} events"
        for event in span.events:
            assert _encodable(event.name)
            for key, value in (event.attributes or {}).items():
                limit = {
                    A.EXCEPTION_STACKTRACE: MAX_STACKTRACE,
                    A.EXCEPTION_MESSAGE: MAX_EXCEPTION_MESSAGE,
                }.get(key, MAX_ATTR_LEN)
                _check_value(key, value, f"{where} event {event.name}", limit)
        if span.status.status_code is StatusCode.ERROR and span.status.description is not None:
            assert len(span.status.description) <= _privacy.MAX_STATUS_LENGTH, where
            assert _encodable(span.status.description), f"{where}: status description not encodable"
    # the real wire encoder takes the whole batch (a span name it cannot encode fails the batch)
    encoded = encode_spans(spans).SerializeToString()
    assert spans == [] or len(encoded) > 0
    return roots


class _AttributeWarnings(logging.Handler):
    """The SDK logs (and drops) attribute values of invalid types: our code must never pass one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def attribute_warnings() -> Iterator[_AttributeWarnings]:
    handler = _AttributeWarnings()
    names = [
        "opentelemetry.attributes",
        "opentelemetry.sdk.trace",
        "opentelemetry.exporter.otlp.proto.common._internal",
    ]
    for name in names:
        logging.getLogger(name).addHandler(handler)
    try:
        yield handler
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(handler)


@dataclass
class Pair:
    fake: OfflineDiscord
    plain: commands.Bot
    traced: commands.Bot
    exporter: InMemorySpanExporter
    warnings: _AttributeWarnings
    options: dict[str, Any]


@pytest.fixture
async def pair(
    offline_discord: OfflineDiscord,
    make_bot: Any,
    span_exporter: InMemorySpanExporter,
    attribute_warnings: _AttributeWarnings,
) -> Pair:
    plain = await make_bot()
    traced = await make_bot()
    setup_bot(plain)
    setup_bot(traced)
    assert not _instrument.is_patched()
    return Pair(
        offline_discord,
        plain,
        traced,
        span_exporter,
        attribute_warnings,
        {"capture_option_values": True, "capture_message_content": True},
    )


async def compare(
    pair: Pair, payload: dict[str, Any], event: str = "INTERACTION_CREATE"
) -> tuple[Outcome, list[ReadableSpan]]:
    """Run ``payload`` plain, then instrumented; assert same behaviour and well-formed spans."""
    assert _guard.is_strict(), "strict mode must be on: an internal error has to fail the property"
    pair.exporter.clear()
    plain = await run_once(pair.plain, payload, event)
    assert pair.exporter.get_finished_spans() == (), "uninstrumented run produced spans"
    track = tracker()
    track.started.clear()
    otel_bot.instrument_bot(pair.traced, **pair.options)
    track.active = True
    try:
        traced = await run_once(pair.traced, payload, event)
    finally:
        track.active = False
        otel_bot.uninstrument_bot(pair.traced)
    assert traced.raised == plain.raised
    assert traced.calls == plain.calls
    assert traced.task_errors == plain.task_errors
    assert traced.loop_errors == plain.loop_errors == []
    assert traced.discord_logs == plain.discord_logs
    spans = list(pair.exporter.get_finished_spans())
    roots = check_spans(spans, track.started)
    assert pair.warnings.messages == [], pair.warnings.messages
    return traced, roots


def _dispatched(payload: dict[str, Any], outcome: Outcome) -> bool:
    """Did discord.py hand the payload to the tree or the view store (so a root must exist)?"""
    return outcome.raised is None and payload.get("type") in (2, 3, 4, 5)


# --- the properties -------------------------------------------------------------------------------


@PROPERTY
@given(recipe=recipes(mutate=True))
async def test_malformed_interactions_behave_as_without_instrumentation(pair: Pair, recipe: Recipe) -> None:
    payload = build_payload(pair.fake, recipe)
    outcome, roots = await compare(pair, payload)
    note_event(
        f"parser raised: {outcome.raised is not None}; handler or error handler ran: {bool(outcome.calls)}"
    )
    if _dispatched(payload, outcome) and recipe.kind not in (
        "command",
        "subcommand",
        "autocomplete",
        "user",
        "message",
    ):
        assert roots, "a component/modal interaction reached the view store but no root was exported"


@PROPERTY
@given(recipe=recipes(mutate=False))
async def test_extreme_but_wellformed_interactions(pair: Pair, recipe: Recipe) -> None:
    """Valid shapes with extreme values: ids at the snowflake limits, 100-char custom_ids, odd
    unicode, huge option trees; discord.py reaches the handlers and so does the instrumentation."""
    payload = build_payload(pair.fake, recipe)
    outcome, roots = await compare(pair, payload)
    note_event(f"{recipe.kind}: handler or error handler ran: {bool(outcome.calls)}; roots: {len(roots)}")
    if _dispatched(payload, outcome):
        assert len(roots) == 1, [r.name for r in roots]
        root = roots[0]
        attrs = dict(root.attributes or {})
        assert attrs[A.DISCORD_INTERACTION_ID] == str(int(payload["id"]))
        assert isinstance(attrs[A.DISCORD_INTERACTION_CREATED_AT], int)


MESSAGE_CONTENT = TEXT | st.sampled_from(["!echo " + "x" * 4000, "!" + "\ud800" * 300, "!" * 3000])


@settings(
    max_examples=max(10, MAX_EXAMPLES // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    content=MESSAGE_CONTENT,
    message_id=SNOWFLAKES,
    author_id=st.none() | SNOWFLAKES,
    drop=st.frozensets(
        st.sampled_from(["author", "content", "channel_id", "guild_id", "member", "timestamp"]), max_size=2
    ),
)
async def test_hostile_messages_with_content_capture(
    pair: Pair, content: str, message_id: int, author_id: int | None, drop: frozenset[str]
) -> None:
    """MESSAGE_CREATE with huge or unencodable content, ids at the limits and missing fields, with
    message-content capture ON: the content attribute stays bounded and encodable."""
    for bot in (pair.plain, pair.traced):
        if bot.get_command("echo") is None:

            async def echo(ctx: commands.Context[Any], *, text: str = "") -> None:
                ctx.bot.hostile_log.append(("prefix_echo", text))

            bot.add_command(commands.Command(echo, name="echo"))

            async def on_message(message: discord.Message) -> None:
                message._state._get_client().hostile_log.append(("on_message", message.id))

            bot.add_listener(on_message, "on_message")
    payload = pair.fake.payloads.message_create("x")
    payload["content"] = content
    payload["id"] = str(message_id)
    if author_id is not None and isinstance(payload.get("author"), dict):
        payload["author"]["id"] = str(author_id)
    for key in drop:
        payload.pop(key, None)
    await compare(pair, payload, "MESSAGE_CREATE")


async def test_instrumented_parsers_are_the_patched_ones(pair: Pair) -> None:
    """Sanity for the properties above: one ordinary payload of each kind yields exactly one root
    per dispatched interaction, so the properties do exercise the instrumentation."""
    kinds = ["command", "subcommand", "user", "message", "button", "select", "modal"]
    names = []
    for kind in kinds:
        recipe = Recipe(
            kind=kind,
            interaction_id=0,
            user_id=None,
            name={"command": "echo", "user": "Inspect"}.get(kind, "x"),
            options=[{"name": "text", "type": 3, "value": "t"}, {"name": "count", "type": 4, "value": 2}]
            if kind == "command"
            else [{"name": "region", "type": 3, "value": "eu"}],
            custom_id={"button": "hostile:btn", "select": "hostile:sel", "modal": "hostile:modal"}.get(
                kind, "x"
            ),
            component_type={"button": 2, "select": 3}.get(kind, 2),
            values=["a"],
            locale="en-US",
        )
        payload = build_payload(pair.fake, recipe)
        outcome, roots = await compare(pair, payload)
        assert len(roots) == 1
        names.append(roots[0].name)
        assert outcome.calls, (kind, outcome)
    assert names == [
        "/echo",
        "/ladder queue",
        "user Inspect",
        "message Quote",
        "button HostileView.go",
        "select HostileView.pick",
        "modal HostileModal",
    ]


# --- the bounding helpers themselves ------------------------------------------------------------


def test_bound_value_makes_hostile_text_encodable_and_short() -> None:
    s = Settings(max_attribute_length=10)
    assert _privacy.bound_value("a\ud800b\udfffc", s) == "a\ufffdb\ufffdc"
    assert _privacy.bound_value("x" * 5000, s) == "x" * 10
    assert _privacy.bound_value("🎉" * 20, s) == "🎉" * 10
    assert _privacy.bound_value(2**64 - 1, s) == str(2**64 - 1)  # OTLP ints are int64
    assert _privacy.bound_value(-(2**63), s) == -(2**63)
    assert _privacy.bound_value(True, s) is True
    assert _privacy.bound_value(["\ud800"] * 100, s) == ("\ufffd",) * _privacy.MAX_SEQUENCE_LENGTH
    assert _privacy.bound_name("/" + "q" * 500) == "/" + "q" * (_privacy.MAX_NAME_LENGTH - 1)
    assert _privacy.bound_name("") == "?"
    attrs = _privacy.bound_attributes({f"k{i}": i for i in range(500)} | {"none": None}, s)
    assert len(attrs) == _privacy.MAX_ATTRIBUTES and "none" not in attrs


def test_record_error_is_encodable_bounded_and_redacted() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("x")
    text = "\ud800" + "m" * 5000 + " /webhooks/123/" + "T0kenValue_abcdefghijklmnopqrstuvwxyz0123"
    _privacy.record_error(span, ValueError(text))
    span.end()
    (done,) = exporter.get_finished_spans()
    (event,) = done.events
    message = (event.attributes or {})[A.EXCEPTION_MESSAGE]
    assert isinstance(message, str) and len(message) <= _privacy.MAX_EXCEPTION_MESSAGE_LENGTH
    assert _encodable(message) and message.startswith("\ufffdm")
    assert done.status.status_code is StatusCode.ERROR
    assert done.status.description is not None and len(done.status.description) <= _privacy.MAX_STATUS_LENGTH
    stack = (event.attributes or {})[A.EXCEPTION_STACKTRACE]
    assert isinstance(stack, str) and "T0kenValue" not in stack and _encodable(stack)
    encode_spans([done]).SerializeToString()


# --- hostile interaction tokens through the REST path ---------------------------------------------

import string  # noqa: E402

TOKEN_CORES = st.text(alphabet=string.ascii_letters + string.digits, min_size=24, max_size=24)
TOKEN_AFFIXES = st.sampled_from(
    [
        "",
        "/",
        "/../",
        "?wait=1",
        "#frag",
        "%2F",
        " ",
        "\u202e",
        "é",
        "\x00",
        "\ud800",
        "a" * 2000,
        "/callback",
    ]
)


def _rest_bot_setup(bot: commands.Bot) -> None:
    @bot.tree.command(name="reply", description="Defer and follow up")
    async def reply(interaction: discord.Interaction) -> None:
        log: list[Any] = bot.hostile_log  # type: ignore[attr-defined]
        try:
            await interaction.response.defer()
            log.append("deferred")
            await interaction.followup.send("done")
            log.append("followed up")
        except Exception as exc:
            log.append(type(exc).__name__)


@settings(
    max_examples=max(10, MAX_EXAMPLES // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    prefix=st.sampled_from(["", "aW50ZXJhY3Rpb246"]),
    core=TOKEN_CORES,
    suffix=TOKEN_AFFIXES,
    infix=TOKEN_AFFIXES,
)
async def test_hostile_interaction_tokens(
    pair: Pair, prefix: str, core: str, suffix: str, infix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Tokens with slashes, query and fragment marks, percent escapes, odd unicode and lone
    surrogates, 2000 characters long: discord.py's REST calls (or their failures) are the same
    with and without instrumentation, the spans are well-formed, and no part of the token is
    exported or logged by otel_bot."""
    token = f"{prefix}{core[:12]}{infix}{core[12:]}{suffix}"
    for bot in (pair.plain, pair.traced):
        if bot.tree.get_command("reply") is None:
            _rest_bot_setup(bot)
    outcomes = []
    pair.exporter.clear()
    caplog.clear()
    for bot, traced in ((pair.plain, False), (pair.traced, True)):
        payload = pair.fake.payloads.slash_command("reply")
        pair.fake.interactions.pop(int(payload["id"]), None)  # the fake learns it from the URL
        payload["token"] = token
        if traced:
            otel_bot.instrument_bot(bot)
        try:
            outcome = await run_once(bot, payload)
        finally:
            if traced:
                otel_bot.uninstrument_bot(bot)
        outcomes.append(outcome)
    plain, traced_outcome = outcomes
    assert traced_outcome.raised == plain.raised
    assert traced_outcome.calls == plain.calls
    assert traced_outcome.task_errors == plain.task_errors
    spans = list(pair.exporter.get_finished_spans())
    check_spans(spans, [])
    rest = [s for s in spans if s.kind is SpanKind.CLIENT]
    # (a token discord.py cannot even quote into a URL fails before any request is made)
    note_event(f"REST spans: {len(rest)}; handler saw: {plain.calls}")
    blob = "\n".join(_all_text(spans))
    ours = "\n".join(
        r.getMessage() + (r.exc_text or "") for r in caplog.records if r.name.startswith("otel_bot")
    )
    for piece in (core[:12], core[12:]):
        assert piece not in blob, f"token piece {piece!r} exported"
        assert piece not in ours, f"token piece {piece!r} logged by otel_bot"


def _all_text(spans: list[ReadableSpan]) -> Iterator[str]:
    for span in spans:
        yield span.name
        yield span.status.description or ""
        for value in (span.attributes or {}).values():
            yield str(value)
        for event in span.events:
            for value in (event.attributes or {}).values():
                yield str(value)
