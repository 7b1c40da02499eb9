"""Realistic Discord gateway payloads (API v10) and injection into a real discord.py client.

Builders return plain dicts shaped as https://discord.com/developers/docs documents them. They live
on :class:`Payloads`, bound to a :class:`World` (the application, bot user, guild, channel and
member the payloads refer to) and to a clock, so an interaction can be made e.g. 3.5 s old.

:func:`inject` hands a payload to the client the way the gateway does: through
``client._connection.parsers[EVENT](data)``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_bot.testing.objects import (
    ACTION_ROW,
    ALL_PERMISSIONS,
    APPLICATION_COMMAND,
    APPLICATION_COMMAND_AUTOCOMPLETE,
    BUTTON,
    CHANNEL_SELECT,
    JSON,
    LABEL,
    MENTIONABLE_SELECT,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    PING,
    ROLE_SELECT,
    STRING,
    STRING_SELECT,
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    TEXT_INPUT,
    USER_SELECT,
    _options,
    application_payload,
    channel_payload,
    guild_payload,
    member_payload,
    message_payload,
    option,
    ready_payload,
    role_payload,
    user_payload,
)
from otel_bot.testing.snowflakes import snowflake, wall_ms

__all__ = [
    "ALL_PERMISSIONS",
    "Payloads",
    "World",
    "application_payload",
    "channel_payload",
    "guild_payload",
    "inject",
    "member_payload",
    "message_payload",
    "option",
    "ready_payload",
    "role_payload",
    "user_payload",
]


@dataclass
class World:
    """The application, bot user, guild, channel, role and human member payloads refer to."""

    application_id: int = field(default_factory=snowflake)
    bot_user: JSON = field(
        default_factory=lambda: user_payload(username="offline-bot", bot=True, discriminator="0001")
    )
    guild_id: int = field(default_factory=snowflake)
    guild_name: str = "Offline Guild"
    channel_id: int = field(default_factory=snowflake)
    channel_name: str = "general"
    user: JSON = field(default_factory=lambda: user_payload(username="tester"))
    role_id: int = field(default_factory=snowflake)
    role_name: str = "tester"

    def __post_init__(self) -> None:
        # The bot's user id equals the application id, as for every modern Discord application.
        self.bot_user["id"] = str(self.application_id)

    @property
    def bot_user_id(self) -> int:
        """The bot user's id (equal to the application id)."""
        return int(self.bot_user["id"])

    @property
    def user_id(self) -> int:
        """The human member's user id."""
        return int(self.user["id"])

    def channel(self) -> JSON:
        """The world's text channel payload."""
        return channel_payload(self.channel_id, self.guild_id, self.channel_name)

    def role(self) -> JSON:
        """The world's member role."""
        return role_payload(self.role_id, self.role_name, position=1, permissions="0")

    def member(self, *, include_user: bool = True, permissions: str | None = None) -> JSON:
        """The human member of the guild."""
        return member_payload(
            self.user, roles=[self.role_id], include_user=include_user, permissions=permissions
        )

    def bot_member(self) -> JSON:
        """The bot's own member in the guild."""
        return member_payload(self.bot_user, roles=[])

    def guild(self) -> JSON:
        """GUILD_CREATE for the world's guild with its channel, role and both members."""
        return guild_payload(
            self.guild_id,
            self.guild_name,
            owner_id=self.user_id,
            channels=[self.channel()],
            members=[self.member(), self.bot_member()],
            roles=[self.role()],
        )


class Payloads:
    """Gateway payload builders bound to a :class:`World` and a clock (Unix ms).

    Every interaction builder accepts ``created_ms=`` (absolute) or ``age_ms=`` (relative to
    the clock), gets a unique id/token, and is reported to ``on_interaction`` (the offline
    Discord uses that to know each interaction's token and creation time).
    """

    def __init__(
        self,
        world: World | None = None,
        *,
        clock: Callable[[], float] = wall_ms,
        on_interaction: Callable[[JSON], object] | None = None,
    ) -> None:
        self.world = world or World()
        self.clock = clock
        self.on_interaction = on_interaction

    # ------------------------------------------------------------------ generic objects
    def ready(
        self, *, guild_ids: Iterable[int] | None = None, resume_gateway_url: str = "wss://gateway.discord.gg"
    ) -> JSON:
        """READY for the world's bot user and application."""
        w = self.world
        return ready_payload(
            w.bot_user,
            application_id=w.application_id,
            guild_ids=[w.guild_id] if guild_ids is None else guild_ids,
            resume_gateway_url=resume_gateway_url,
        )

    def guild_create(self) -> JSON:
        """GUILD_CREATE for the world's guild."""
        return self.world.guild()

    def message(
        self,
        content: str = "",
        *,
        author: JSON | None = None,
        channel_id: int | None = None,
        guild_id: int | None = None,
        dm: bool = False,
        **kwargs: Any,
    ) -> JSON:
        """A message in the world's channel (by the bot unless ``author`` is given)."""
        w = self.world
        kwargs.setdefault("created_ms", self.clock())
        return message_payload(
            channel_id if channel_id is not None else w.channel_id,
            author if author is not None else w.bot_user,
            content,
            guild_id=None if dm else (guild_id if guild_id is not None else w.guild_id),
            **kwargs,
        )

    def message_create(
        self,
        content: str,
        *,
        author: JSON | None = None,
        channel_id: int | None = None,
        dm: bool = False,
        age_ms: float = 0.0,
        **kwargs: Any,
    ) -> JSON:
        """MESSAGE_CREATE from the world's human member (or ``author``) in the world's channel."""
        w = self.world
        author = author if author is not None else w.user
        data = self.message(
            content,
            author=author,
            channel_id=channel_id,
            dm=dm,
            created_ms=self.clock() - age_ms,
            **kwargs,
        )
        if not dm:
            data["member"] = member_payload(
                author, roles=[w.role_id] if author is w.user else [], include_user=False
            )
        return data

    # ------------------------------------------------------------------ interactions
    def _interaction(
        self,
        type: int,
        data: JSON | None,
        *,
        created_ms: float | None,
        age_ms: float,
        message: JSON | None = None,
        user: JSON | None = None,
        dm: bool = False,
        locale: str = "en-US",
        token: str | None = None,
    ) -> JSON:
        w = self.world
        at = created_ms if created_ms is not None else self.clock() - age_ms
        user = user if user is not None else w.user
        payload: JSON = {
            "id": str(snowflake(at)),
            "application_id": str(w.application_id),
            "type": type,
            "token": token or "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96),
            "version": 1,
            "app_permissions": ALL_PERMISSIONS,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if data is not None:
            payload["data"] = data
        if dm:
            payload["channel"] = {
                "id": str(w.channel_id),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [dict(user)],
            }
            payload["channel_id"] = str(w.channel_id)
            payload["user"] = dict(user)
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"1": str(user["id"])}
        else:
            channel = w.channel()
            channel["permissions"] = ALL_PERMISSIONS
            payload["channel"] = channel
            payload["channel_id"] = str(w.channel_id)
            payload["guild_id"] = str(w.guild_id)
            payload["guild"] = {"id": str(w.guild_id), "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            roles = [w.role_id] if user is w.user else []
            payload["member"] = member_payload(user, roles=roles, permissions=ALL_PERMISSIONS)
            payload["context"] = 0
            payload["authorizing_integration_owners"] = {"0": str(w.guild_id)}
        if message is not None:
            payload["message"] = message
        if self.on_interaction is not None:
            self.on_interaction(payload)
        return payload

    def _command_data(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None,
        *,
        subcommand: str | None,
        group: str | None,
        command_id: int | None,
        command_type: int = 1,
        resolved: JSON | None = None,
        guild_command: bool = False,
    ) -> JSON:
        opts = _options(options)
        if subcommand is not None:
            opts = [{"name": subcommand, "type": SUB_COMMAND, "options": opts}]
        if group is not None:
            if subcommand is None:
                raise ValueError("a subcommand group needs a subcommand")
            opts = [{"name": group, "type": SUB_COMMAND_GROUP, "options": opts}]
        data: JSON = {
            "id": str(command_id if command_id is not None else snowflake()),
            "name": name,
            "type": command_type,
        }
        if command_type == 1:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        if guild_command:
            data["guild_id"] = str(self.world.guild_id)
        return data

    def slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        subcommand: str | None = None,
        group: str | None = None,
        command_id: int | None = None,
        resolved: JSON | None = None,
        guild_command: bool = False,
        created_ms: float | None = None,
        age_ms: float = 0.0,
        user: JSON | None = None,
        dm: bool = False,
        locale: str = "en-US",
    ) -> JSON:
        """INTERACTION_CREATE for ``/name [group] [subcommand] options...``.

        ``options`` is a mapping (types inferred) or a list of :func:`option` dicts; user, role,
        channel and attachment options need ``resolved`` (see :meth:`resolved`).
        """
        data = self._command_data(
            name,
            options,
            subcommand=subcommand,
            group=group,
            command_id=command_id,
            resolved=resolved,
            guild_command=guild_command,
        )
        return self._interaction(
            APPLICATION_COMMAND, data, created_ms=created_ms, age_ms=age_ms, user=user, dm=dm, locale=locale
        )

    def autocomplete(
        self,
        name: str,
        focused: str,
        value: str = "",
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        subcommand: str | None = None,
        group: str | None = None,
        command_id: int | None = None,
        created_ms: float | None = None,
        age_ms: float = 0.0,
        user: JSON | None = None,
    ) -> JSON:
        """INTERACTION_CREATE (type 4) asking for choices for option ``focused`` typed as ``value``."""
        opts = [*_options(options), option(focused, value, STRING, focused=True)]
        data = self._command_data(name, opts, subcommand=subcommand, group=group, command_id=command_id)
        return self._interaction(
            APPLICATION_COMMAND_AUTOCOMPLETE, data, created_ms=created_ms, age_ms=age_ms, user=user
        )

    def user_command(
        self,
        name: str,
        target: JSON | None = None,
        *,
        command_id: int | None = None,
        created_ms: float | None = None,
        age_ms: float = 0.0,
        user: JSON | None = None,
    ) -> JSON:
        """A user context-menu command on ``target`` (default: the world's human user)."""
        w = self.world
        target = target if target is not None else w.user
        tid = str(target["id"])
        resolved = {
            "users": {tid: dict(target)},
            "members": {
                tid: member_payload(
                    target,
                    roles=[w.role_id] if target is w.user else [],
                    include_user=False,
                    permissions=ALL_PERMISSIONS,
                )
            },
        }
        data = self._command_data(
            name, None, subcommand=None, group=None, command_id=command_id, command_type=2, resolved=resolved
        )
        data["target_id"] = tid
        return self._interaction(APPLICATION_COMMAND, data, created_ms=created_ms, age_ms=age_ms, user=user)

    def message_command(
        self,
        name: str,
        target: JSON | None = None,
        *,
        command_id: int | None = None,
        created_ms: float | None = None,
        age_ms: float = 0.0,
        user: JSON | None = None,
    ) -> JSON:
        """A message context-menu command on ``target`` (default: a message by the human user)."""
        target = target if target is not None else self.message("hello there", author=self.world.user)
        mid = str(target["id"])
        data = self._command_data(
            name,
            None,
            subcommand=None,
            group=None,
            command_id=command_id,
            command_type=3,
            resolved={"messages": {mid: dict(target)}},
        )
        data["target_id"] = mid
        return self._interaction(APPLICATION_COMMAND, data, created_ms=created_ms, age_ms=age_ms, user=user)

    def component_message(self, components: Sequence[JSON], content: str = "", **kwargs: Any) -> JSON:
        """A message by the bot carrying ``components`` (action rows)."""
        w = self.world
        return self.message(content, components=components, application_id=w.application_id, **kwargs)

    def button(
        self,
        custom_id: str,
        *,
        message: JSON | None = None,
        label: str = "Click",
        created_ms: float | None = None,
        age_ms: float = 0.0,
        user: JSON | None = None,
    ) -> JSON:
        """A button click (also DynamicItem buttons: pass the dynamic ``custom_id``), carrying its message."""
        if message is None:
            row = {
                "type": ACTION_ROW,
                "id": 1,
                "components": [{"type": BUTTON, "id": 2, "style": 1, "label": label, "custom_id": custom_id}],
            }
            message = self.component_message([row], "Pick one")
        data = {"custom_id": custom_id, "component_type": BUTTON, "id": 2}
        return self._interaction(
            MESSAGE_COMPONENT, data, created_ms=created_ms, age_ms=age_ms, message=message, user=user
        )

    def select(
        self,
        custom_id: str,
        values: Sequence[str | int],
        *,
        component_type: int = STRING_SELECT,
        resolved: JSON | None = None,
        message: JSON | None = None,
        created_ms: float | None = None,
        age_ms: float = 0.0,
        user: JSON | None = None,
    ) -> JSON:
        """A select menu submission. ``component_type``: 3 string, 5 user, 6 role, 7 mentionable,
        8 channel. For user/role/channel selects ``resolved`` defaults to the world's objects."""
        w = self.world
        vals = [str(v) for v in values]
        if message is None:
            menu: JSON = {
                "type": component_type,
                "id": 2,
                "custom_id": custom_id,
                "min_values": 1,
                "max_values": max(1, len(vals)),
                "placeholder": "Choose",
            }
            if component_type == STRING_SELECT:
                menu["options"] = [{"label": v, "value": v, "default": False} for v in vals]
            message = self.component_message([{"type": ACTION_ROW, "id": 1, "components": [menu]}], "Choose")
        data: JSON = {"custom_id": custom_id, "component_type": component_type, "values": vals, "id": 2}
        if resolved is None and component_type != STRING_SELECT:
            resolved = self.resolved(
                users=[w.user] if component_type in (USER_SELECT, MENTIONABLE_SELECT) else (),
                roles=[w.role()] if component_type in (ROLE_SELECT, MENTIONABLE_SELECT) else (),
                channels=[w.channel()] if component_type == CHANNEL_SELECT else (),
            )
        if resolved:
            data["resolved"] = resolved
        return self._interaction(
            MESSAGE_COMPONENT, data, created_ms=created_ms, age_ms=age_ms, message=message, user=user
        )

    def modal_submit(
        self,
        custom_id: str,
        values: Mapping[str, str],
        *,
        labels: bool = False,
        message: JSON | None = None,
        created_ms: float | None = None,
        age_ms: float = 0.0,
        user: JSON | None = None,
    ) -> JSON:
        """A modal submit: ``values`` maps each text input's custom_id to its value. With
        ``labels=True`` inputs come wrapped in Label components (type 18), else in action rows."""
        components: list[JSON] = []
        for i, (cid, value) in enumerate(values.items()):
            text = {"type": TEXT_INPUT, "id": 2 * i + 2, "custom_id": cid, "value": value}
            if labels:
                components.append({"type": LABEL, "id": 2 * i + 1, "component": text})
            else:
                components.append({"type": ACTION_ROW, "id": 2 * i + 1, "components": [text]})
        data = {"custom_id": custom_id, "components": components}
        return self._interaction(
            MODAL_SUBMIT, data, created_ms=created_ms, age_ms=age_ms, message=message, user=user
        )

    def ping(self, *, created_ms: float | None = None, age_ms: float = 0.0) -> JSON:
        """A PING interaction (type 1)."""
        return self._interaction(PING, None, created_ms=created_ms, age_ms=age_ms)

    def resolved(
        self,
        *,
        users: Sequence[JSON] = (),
        roles: Sequence[JSON] = (),
        channels: Sequence[JSON] = (),
        attachments: Sequence[JSON] = (),
        members: bool = True,
    ) -> JSON:
        """A ``resolved`` object for user/role/channel/attachment options and selects."""
        out: JSON = {}
        if users:
            out["users"] = {str(u["id"]): dict(u) for u in users}
            if members:
                out["members"] = {
                    str(u["id"]): member_payload(u, include_user=False, permissions=ALL_PERMISSIONS)
                    for u in users
                }
        if roles:
            out["roles"] = {str(r["id"]): dict(r) for r in roles}
        if channels:
            out["channels"] = {
                str(c["id"]): {
                    "id": str(c["id"]),
                    "type": c.get("type", 0),
                    "name": c.get("name", "channel"),
                    "permissions": ALL_PERMISSIONS,
                    "parent_id": c.get("parent_id"),
                    "flags": 0,
                }
                for c in channels
            }
        if attachments:
            out["attachments"] = {str(a["id"]): dict(a) for a in attachments}
        return out


def inject(client: Any, event: str, payload: JSON) -> None:
    """Hand a dispatch to ``client`` exactly as discord.py's gateway does: the
    ``socket_event_type`` event, then ``client._connection.parsers[event](payload)``.

    ``client`` must be logged in (``await client.login(token)``) so its HTTP session exists.
    """
    state = client._connection
    if getattr(client, "_enable_debug_events", False):
        client.dispatch("socket_raw_receive", json.dumps({"op": 0, "t": event, "s": None, "d": payload}))
    client.dispatch("socket_event_type", event)
    try:
        parser = state.parsers[event]
    except KeyError:
        raise KeyError(f"discord.py has no parser for gateway event {event!r}") from None
    parser(payload)
