"""Root spans for application-command interactions (slash commands, context menus, autocomplete)
and the acknowledgement clock shared by every interaction root.

Where discord.py runs them: ``ConnectionState.parse_interaction_create`` hands types 2 and 4 to
``CommandTree._from_interaction``, which starts a task running ``CommandTree._call``. The root
starts in ``_from_interaction`` (so it covers the time the task waits to run) and ends when that
task and every task it created are done; ``tree.on_error`` and the command's error handlers run
inside it.

Span names (low cardinality, never option values):

* slash commands: ``/{qualified name}``, e.g. ``/ladder queue``
* context menus: ``user {name}`` / ``message {name}``, e.g. ``user Report``
* autocomplete: ``autocomplete /{qualified name} {option}``, e.g. ``autocomplete /ladder queue region``

The acknowledgement clock: a snowflake carries its creation time, so the root records
``discord.gateway.lag_ms`` (creation to the bot receiving it) and, when the REST helper reports the
first interaction callback through :func:`record_callback`, ``discord.interaction.ack_ms``,
``discord.interaction.acknowledged``, ``discord.interaction.response.type`` and
``discord.interaction.ack_deadline_missed`` (over 3 s, or Discord answered 10062 Unknown
interaction) with an event of the same name.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import _attributes as A
from . import _roots, _routes, _state, _values
from ._config import Settings
from ._guard import guard
from ._patching import Patch
from ._roots import Root

#: Discord's acknowledgement deadline.
ACK_DEADLINE_MS = 3000.0
#: "Unknown interaction": the token expired (the acknowledgement came too late).
UNKNOWN_INTERACTION = 10062

INTERACTION_KEY = "otel_bot.interaction"

#: Interaction callback types (the ``type`` of the callback request body) to response kinds.
RESPONSE_TYPES: dict[int, str] = {
    1: "pong",
    4: "message",
    5: "deferred",
    6: "deferred_update",
    7: "update",
    8: "autocomplete",
    9: "modal",
    10: "premium_required",
    12: "launch_activity",
}

COMMAND_TYPES: dict[int, str] = {1: "chat_input", 2: "user", 3: "message", 4: "primary_entry_point"}

# interaction id -> the open root that stands for it
_BY_ID: dict[int, Root] = {}


class InteractionInfo:
    """What the acknowledgement clock knows about one interaction."""

    __slots__ = ("acknowledged", "callback_seen", "created_ms", "interaction", "interaction_id")

    def __init__(self, interaction: Any, interaction_id: int, created_ms: int) -> None:
        self.interaction = interaction
        self.interaction_id = interaction_id
        self.created_ms = created_ms
        self.callback_seen = False
        self.acknowledged = False


# --- the acknowledgement clock ------------------------------------------------------------------


def record_callback(
    interaction_id: int, *, status: int, discord_code: int | None, end_ns: int, callback_type: int | None
) -> None:
    """Called by the REST helper when an interaction callback request completes.

    ``end_ns`` is the Unix time (``time.time_ns()``) the response arrived. The first successful
    callback sets ``ack_ms``, ``acknowledged=true`` and the response type; a failed one sets
    ``acknowledged=false``; either sets ``ack_deadline_missed`` (over 3 s or code 10062).
    Unknown or already ended interactions are ignored.
    """
    with guard("interactions.record_callback"):
        root = _BY_ID.get(int(interaction_id))
        if root is None or root.unit.ended:
            return
        info: InteractionInfo | None = root.unit.extra.get(INTERACTION_KEY)
        if info is None or info.acknowledged:
            return  # only the first successful callback is the acknowledgement
        info.callback_seen = True
        ok = 200 <= int(status) < 300
        ack_ms = end_ns / 1e6 - info.created_ms
        missed = ack_ms > ACK_DEADLINE_MS or discord_code == UNKNOWN_INTERACTION
        info.acknowledged = ok
        span = root.span
        if not span.is_recording():
            return
        span.set_attribute(A.DISCORD_INTERACTION_ACK_MS, float(ack_ms))
        span.set_attribute(A.DISCORD_INTERACTION_ACKNOWLEDGED, ok)
        span.set_attribute(A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED, missed)
        if ok and callback_type is not None:
            span.set_attribute(
                A.DISCORD_INTERACTION_RESPONSE_TYPE,
                RESPONSE_TYPES.get(int(callback_type), str(callback_type)),
            )
        if missed:
            attrs: dict[str, Any] = {A.DISCORD_INTERACTION_ACK_MS: float(ack_ms)}
            if discord_code is not None:
                attrs[A.DISCORD_ERROR_CODE] = int(discord_code)
            span.add_event(A.EVENT_ACK_DEADLINE_MISSED, attrs, timestamp=int(end_ns))


def _finalize_interaction(root: Root) -> None:
    info: InteractionInfo | None = root.unit.extra.get(INTERACTION_KEY)
    if info is None:
        return
    if _BY_ID.get(info.interaction_id) is root:
        del _BY_ID[info.interaction_id]
    interaction = info.interaction
    if root.outcome is None and getattr(interaction, "command_failed", False):
        root.note_outcome("check_failed")
    span = root.span
    if not span.is_recording() or info.callback_seen:
        return
    # No callback reported (REST tracing off): read what discord.py knows.
    response_type = getattr(getattr(interaction, "response", None), "_response_type", None)
    acknowledged = response_type is not None
    span.set_attribute(A.DISCORD_INTERACTION_ACKNOWLEDGED, acknowledged)
    if acknowledged:
        value: Any = getattr(response_type, "value", response_type)
        span.set_attribute(
            A.DISCORD_INTERACTION_RESPONSE_TYPE, RESPONSE_TYPES.get(_values.as_int(value, -1), "unknown")
        )
        missed = False  # acknowledged in time as far as discord.py saw (no response clock)
    else:
        missed = True  # Discord shows "The application did not respond"
        span.add_event(A.EVENT_ACK_DEADLINE_MISSED, {})
    span.set_attribute(A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED, missed)


# --- shared root start for every interaction kind ------------------------------------------------


def interaction_attributes(
    interaction: Any, client: Any, settings: Settings, received_ns: int
) -> dict[str, Any]:
    """The attributes every interaction root carries."""
    attrs: dict[str, Any] = {}
    iid = _values.as_int(getattr(interaction, "id", None), 0)
    created = _values.snowflake_ms(iid)
    raw_type = getattr(getattr(interaction, "type", None), "value", None)
    attrs[A.DISCORD_INTERACTION_ID] = str(iid)
    if raw_type is not None:
        attrs[A.DISCORD_INTERACTION_TYPE] = A.INTERACTION_TYPES.get(_values.as_int(raw_type, -1), "unknown")
    if created is not None:
        attrs[A.DISCORD_INTERACTION_CREATED_AT] = created
        attrs[A.DISCORD_GATEWAY_LAG_MS] = float(received_ns / 1e6 - created)
    guild_id = getattr(interaction, "guild_id", None)
    attrs[A.DISCORD_GUILD_ID] = _values.id_str(guild_id)
    attrs[A.DISCORD_CHANNEL_ID] = _values.id_str(getattr(interaction, "channel_id", None))
    user = getattr(interaction, "user", None)
    attrs[A.DISCORD_USER_ID] = _values.user_id_value(getattr(user, "id", None), settings)
    locale = getattr(interaction, "locale", None)
    if locale is not None:
        attrs[A.DISCORD_LOCALE] = str(getattr(locale, "value", locale))
    guild_locale = getattr(interaction, "guild_locale", None)
    if guild_locale is not None:
        attrs[A.DISCORD_GUILD_LOCALE] = str(getattr(guild_locale, "value", guild_locale))
    attrs[A.DISCORD_SHARD_ID] = _values.shard_id_for(client, guild_id)
    return {k: v for k, v in attrs.items() if v is not None}


def start_interaction_root(
    interaction: Any,
    client: Any,
    settings: Settings,
    *,
    name: str,
    flow: str,
    attributes: dict[str, Any] | None = None,
) -> Root:
    """Open the root for one interaction and register it with the acknowledgement clock."""
    received_ns = time.time_ns()
    with guard("interactions.token"):
        # Known from the start, so an exception raised before the first callback is redacted too.
        token = getattr(interaction, "token", None)
        if isinstance(token, str) and token:
            _routes.note_interaction_token(token)
    attrs: dict[str, Any] = {}
    with guard("interactions.attributes"):
        attrs = interaction_attributes(interaction, client, settings, received_ns)
        if attributes:
            attrs.update({k: v for k, v in attributes.items() if v is not None})
    root = _roots.start_root(
        name,
        kind="interaction",
        flow=flow,
        settings=settings,
        source=interaction,
        client=client,
        attributes=attrs,
        track_outcome=True,
    )
    with guard("interactions.register"):
        iid = _values.as_int(getattr(interaction, "id", None), 0)
        created = _values.snowflake_ms(iid) or received_ns // 1_000_000
        root.unit.extra[INTERACTION_KEY] = InteractionInfo(interaction, iid, created)
        _BY_ID[iid] = root
        root.finalizers.append(_finalize_interaction)
    return root


def should_trace(client: Any) -> Settings | None:
    """The settings to trace ``client``'s interactions with, or ``None`` to pass through."""
    if _state.is_suppressed() or not _roots.client_enabled(client):
        return None
    settings = _state.settings()
    if settings is None or not settings.trace_interactions:
        return None
    return settings


# --- application commands -------------------------------------------------------------------------


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The dict items of a (possibly malformed) payload list."""
    if not isinstance(value, (list, tuple)):
        return []
    return [item for item in value if isinstance(item, dict)]


def _text(value: Any, default: str = "?") -> str:
    return value if isinstance(value, str) and value else default


#: Deepest subcommand nesting Discord allows is group > subcommand; more is malformed input.
_MAX_DEPTH = 3


def command_path(data: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """(command name parts incl. group and subcommand, the leaf options) from interaction data.
    Tolerates malformed payloads (missing or mistyped fields)."""
    if not isinstance(data, dict):
        return ["?"], []
    parts = [_text(data.get("name"))]
    options = _dicts(data.get("options"))
    for _ in range(_MAX_DEPTH):
        sub = next((o for o in options if _values.as_int(o.get("type"), 0) in (1, 2)), None)
        if sub is None:
            break
        parts.append(_text(sub.get("name")))
        options = _dicts(sub.get("options"))
    return parts, options


def _option_values(options: list[dict[str, Any]]) -> dict[str, Any]:
    return {_text(o.get("name")): o.get("value") for o in options if "value" in o}


def _app_command_root_fields(interaction: Any, settings: Settings) -> tuple[str, str, dict[str, Any]]:
    data = getattr(interaction, "data", None)
    if not isinstance(data, dict):
        data = {}
    ctype = _values.as_int(data.get("type", 1), 1)
    type_name = COMMAND_TYPES.get(ctype, "unknown")
    attrs: dict[str, Any] = {A.DISCORD_COMMAND_TYPE: type_name}
    if ctype != 1:
        name = _text(data.get("name"))
        attrs[A.DISCORD_COMMAND_NAME] = name
        return f"{type_name} {name}", f"{type_name} {name}", attrs
    parts, options = command_path(data)
    qualified = " ".join(parts)
    attrs[A.DISCORD_COMMAND_NAME] = qualified
    if settings.capture_option_values:
        values = _option_values(options)
        if values:
            attrs[A.DISCORD_COMMAND_OPTIONS] = _values.bounded(
                json.dumps(values, default=str, ensure_ascii=False), settings
            )
    raw_type = getattr(getattr(interaction, "type", None), "value", None)
    if raw_type == 4:  # autocomplete
        focused = next((_text(o.get("name")) for o in options if o.get("focused") is True), "?")
        attrs[A.DISCORD_AUTOCOMPLETE_OPTION] = focused
        name = f"autocomplete /{qualified} {focused}"
        return name, name, attrs
    return f"/{qualified}", qualified, attrs


def _finalize_command(root: Root) -> None:
    """Facts known once the tree resolved the command: hybrid, cog."""
    info: InteractionInfo | None = root.unit.extra.get(INTERACTION_KEY)
    if info is None or not root.span.is_recording():
        return
    command = getattr(info.interaction, "_cs_command", None)
    if command is None:
        return
    binding = getattr(command, "binding", None)
    cog_name = getattr(binding, "qualified_name", None)
    if isinstance(cog_name, str):
        root.span.set_attribute(A.DISCORD_COG, cog_name)
    if getattr(command, "wrapped", None) is not None and getattr(
        command.wrapped, "__commands_is_hybrid__", False
    ):
        root.span.set_attribute(A.DISCORD_COMMAND_HYBRID, True)


def _wrap_from_interaction(original: Any) -> Any:
    def _from_interaction(self: Any, interaction: Any) -> Any:
        client = getattr(self, "client", None)
        settings = should_trace(client)
        if settings is None:
            return original(self, interaction)
        name, flow = "/?", "?"
        attrs: dict[str, Any] = {}
        with guard("interactions.names"):
            name, flow, attrs = _app_command_root_fields(interaction, settings)
        root = start_interaction_root(interaction, client, settings, name=name, flow=flow, attributes=attrs)
        root.finalizers.insert(0, _finalize_command)
        with root.activated():
            try:
                return original(self, interaction)
            except BaseException as exc:
                root.note_error(exc)
                raise
            finally:
                root.release()

    return _from_interaction


def _tree() -> Any:
    from discord.app_commands import CommandTree

    return CommandTree


def _app_command() -> Any:
    from discord.app_commands import Command

    return Command


def _context_menu() -> Any:
    from discord.app_commands import ContextMenu

    return ContextMenu


PATCHES: tuple[Patch, ...] = (
    Patch(owner=_tree, name="_from_interaction", wrap=_wrap_from_interaction, group="interactions"),
    Patch(owner=_tree, name="_call", wrap=_roots.noting_errors, group="interactions"),
    Patch(owner=_app_command, name="_invoke_with_namespace", wrap=_roots.noting_errors, group="interactions"),
    Patch(owner=_app_command, name="_invoke_autocomplete", wrap=_roots.noting_errors, group="interactions"),
    Patch(owner=_context_menu, name="_invoke", wrap=_roots.noting_errors, group="interactions"),
)


def open_roots() -> int:
    """How many interaction roots are open (tests, diagnostics)."""
    return len(_BY_ID)
