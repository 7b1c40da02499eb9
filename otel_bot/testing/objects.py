"""Standalone builders for Discord API v10 objects (users, members, roles, channels, guilds,
messages, READY, the application), shaped as https://discord.com/developers/docs documents them."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from otel_bot.testing.snowflakes import iso_timestamp, snowflake, wall_ms

__all__ = [
    "ALL_PERMISSIONS",
    "application_payload",
    "channel_payload",
    "guild_payload",
    "member_payload",
    "message_payload",
    "option",
    "ready_payload",
    "role_payload",
    "user_payload",
]

JSON = dict[str, Any]

#: Every permission bit Discord currently defines (as the string Discord sends).
ALL_PERMISSIONS = str((1 << 53) - 1)

# Interaction types (https://discord.com/developers/docs/interactions/receiving-and-responding)
PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
APPLICATION_COMMAND_AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Option types
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11

# Component types
ACTION_ROW = 1
BUTTON = 2
STRING_SELECT = 3
TEXT_INPUT = 4
USER_SELECT = 5
ROLE_SELECT = 6
MENTIONABLE_SELECT = 7
CHANNEL_SELECT = 8
LABEL = 18


def user_payload(
    user_id: int | None = None,
    username: str = "tester",
    *,
    bot: bool = False,
    global_name: str | None = None,
    discriminator: str = "0",
) -> JSON:
    """A user object (https://discord.com/developers/docs/resources/user#user-object)."""
    data: JSON = {
        "id": str(user_id if user_id is not None else snowflake()),
        "username": username,
        "discriminator": discriminator,
        "global_name": global_name if global_name is not None else (None if bot else username.title()),
        "avatar": None,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "public_flags": 0,
        "flags": 0,
        "bot": bot,
    }
    if bot:
        data.update({"verified": True, "mfa_enabled": False, "locale": "en-US", "email": None})
    return data


def role_payload(
    role_id: int, name: str, *, position: int = 0, permissions: str = "0", color: int = 0
) -> JSON:
    """A role object. The @everyone role has the guild's id."""
    return {
        "id": str(role_id),
        "name": name,
        "color": color,
        "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": permissions,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def channel_payload(
    channel_id: int,
    guild_id: int | None,
    name: str = "general",
    *,
    type: int = 0,
    position: int = 0,
    parent_id: int | None = None,
    topic: str | None = None,
) -> JSON:
    """A guild text channel (type 0) by default; ``guild_id=None`` and ``type=1`` for a DM."""
    data: JSON = {
        "id": str(channel_id),
        "type": type,
        "last_message_id": None,
        "flags": 0,
    }
    if type == 1:
        data["recipients"] = []
        return data
    data.update(
        {
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "parent_id": str(parent_id) if parent_id is not None else None,
            "topic": topic,
            "nsfw": False,
            "rate_limit_per_user": 0,
        }
    )
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    return data


def member_payload(
    user: JSON,
    *,
    roles: Sequence[int] = (),
    joined_ms: float | None = None,
    nick: str | None = None,
    permissions: str | None = None,
    include_user: bool = True,
) -> JSON:
    """A guild member object; ``permissions`` is set inside interactions (total permissions)."""
    data: JSON = {
        "roles": [str(r) for r in roles],
        "joined_at": iso_timestamp(joined_ms if joined_ms is not None else wall_ms() - 86_400_000),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "nick": nick,
        "avatar": None,
        "banner": None,
        "communication_disabled_until": None,
        "unusual_dm_activity_until": None,
    }
    if include_user:
        data["user"] = dict(user)
    if permissions is not None:
        data["permissions"] = permissions
    return data


def message_payload(
    channel_id: int,
    author: JSON,
    content: str = "",
    *,
    message_id: int | None = None,
    guild_id: int | None = None,
    created_ms: float | None = None,
    embeds: Sequence[JSON] = (),
    components: Sequence[JSON] = (),
    attachments: Sequence[JSON] = (),
    flags: int = 0,
    type: int = 0,
    webhook_id: int | None = None,
    application_id: int | None = None,
    interaction_metadata: JSON | None = None,
    message_reference: JSON | None = None,
    nonce: str | int | None = None,
    tts: bool = False,
    member: JSON | None = None,
    mentions: Sequence[JSON] = (),
) -> JSON:
    """A complete message object (enough for discord.py to build a ``Message``)."""
    at = created_ms if created_ms is not None else wall_ms()
    mid = message_id if message_id is not None else snowflake(at)
    data: JSON = {
        "id": str(mid),
        "channel_id": str(channel_id),
        "author": dict(author),
        "content": content,
        "timestamp": iso_timestamp(at),
        "edited_timestamp": None,
        "tts": tts,
        "mention_everyone": False,
        "mentions": [dict(m) for m in mentions],
        "mention_roles": [],
        "mention_channels": [],
        "attachments": [dict(a) for a in attachments],
        "embeds": [dict(e) for e in embeds],
        "reactions": [],
        "pinned": False,
        "type": type,
        "flags": flags,
        "components": [dict(c) for c in components],
        "sticker_items": [],
        "position": None,
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    if member is not None:
        data["member"] = member
    if webhook_id is not None:
        data["webhook_id"] = str(webhook_id)
    if application_id is not None:
        data["application_id"] = str(application_id)
    if interaction_metadata is not None:
        data["interaction_metadata"] = interaction_metadata
    if message_reference is not None:
        data["message_reference"] = message_reference
    if nonce is not None:
        data["nonce"] = nonce
    return data


def guild_payload(
    guild_id: int,
    name: str = "Offline Guild",
    *,
    owner_id: int,
    channels: Sequence[JSON] = (),
    members: Sequence[JSON] = (),
    roles: Sequence[JSON] = (),
    joined_ms: float | None = None,
) -> JSON:
    """A GUILD_CREATE payload. ``member_count`` equals the members sent, so the guild counts as
    chunked and discord.py does not ask for member chunks."""
    everyone = role_payload(guild_id, "@everyone", permissions="2248473465835073")
    all_roles = [everyone, *[dict(r) for r in roles if str(r["id"]) != str(guild_id)]]
    return {
        "id": str(guild_id),
        "name": name,
        "icon": None,
        "icon_hash": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(owner_id),
        "region": None,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "widget_enabled": False,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": all_roles,
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": str(channels[0]["id"]) if channels else None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_members": 500000,
        "max_presences": None,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "vanity_url_code": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "nsfw": False,
        "incidents_data": None,
        "joined_at": iso_timestamp(joined_ms if joined_ms is not None else wall_ms() - 86_400_000),
        "large": False,
        "unavailable": False,
        "lazy": True,
        "member_count": len(members),
        "members": [dict(m) for m in members],
        "channels": [{k: v for k, v in c.items() if k != "guild_id"} for c in channels],
        "threads": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def ready_payload(
    user: JSON,
    *,
    application_id: int,
    guild_ids: Iterable[int] = (),
    session_id: str | None = None,
    resume_gateway_url: str = "wss://gateway.discord.gg",
    shard: tuple[int, int] = (0, 1),
    application_flags: int = 0,
) -> JSON:
    """A READY payload; its guilds are unavailable until their GUILD_CREATE, as Discord sends them."""
    return {
        "v": 10,
        "user": dict(user),
        "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
        "session_id": session_id or secrets.token_hex(16),
        "resume_gateway_url": resume_gateway_url,
        "shard": list(shard),
        "application": {"id": str(application_id), "flags": application_flags},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "user_settings": {},
        "geo_ordered_rtc_regions": ["us-east"],
        "session_type": "normal",
        "auth_session_id_hash": secrets.token_urlsafe(32),
        "_trace": ['["gateway-prd-offline",{"micros":1000}]'],
    }


def application_payload(
    application_id: int, owner: JSON, *, name: str = "Offline Bot", bot: JSON | None = None
) -> JSON:
    """``GET /oauth2/applications/@me``: the application object."""
    data: JSON = {
        "id": str(application_id),
        "name": name,
        "icon": None,
        "description": "An offline test application",
        "summary": "",
        "type": None,
        "hook": True,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": secrets.token_hex(32),
        "owner": dict(owner),
        "team": None,
        "flags": 0,
        "rpc_origins": [],
        "terms_of_service_url": None,
        "privacy_policy_url": None,
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "tags": [],
        "redirect_uris": [],
        "approximate_guild_count": 1,
        "approximate_user_install_count": 0,
        "integration_types_config": {"0": {}},
        "event_webhooks_status": 1,
    }
    if bot is not None:
        data["bot"] = dict(bot)
    return data


def option(name: str, value: Any, type: int | None = None, *, focused: bool = False) -> JSON:
    """One application command interaction option. ``type`` is inferred for str, bool, int,
    float; pass it for users (6), channels (7), roles (8), mentionables (9), attachments (11)."""
    if type is None:
        if isinstance(value, bool):
            type = BOOLEAN
        elif isinstance(value, int):
            type = INTEGER
        elif isinstance(value, float):
            type = NUMBER
        else:
            type = STRING
    data: JSON = {"name": name, "type": type, "value": value}
    if type in (USER, CHANNEL, ROLE, MENTIONABLE, ATTACHMENT):
        data["value"] = str(value)
    if focused:
        data["focused"] = True
    return data


def _options(options: Mapping[str, Any] | Sequence[JSON] | None) -> list[JSON]:
    if options is None:
        return []
    if isinstance(options, Mapping):
        return [option(k, v) for k, v in options.items()]
    return [dict(o) for o in options]
