"""Attribute values otel_bot derives from Discord objects: ids, snowflake times, user ids (raw,
off or HMAC), bounded user text, custom_id templates, shard ids, code names.

Ids are written as strings: Discord snowflakes fit int64, but JSON consumers of OTLP round 64-bit
integers through doubles and lose the low bits.
"""

from __future__ import annotations

import re
from typing import Any

from . import _privacy
from ._config import Settings

#: Discord's epoch (2015-01-01T00:00:00Z) in Unix ms; a snowflake's top 42 bits count from it.
DISCORD_EPOCH_MS = 1420070400000


def as_int(value: Any, default: int = 0) -> int:
    """``value`` as an int when it is one (or an integer string); ``default`` otherwise (bools,
    ``None`` and other shapes from malformed payloads)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def snowflake_ms(snowflake: int | str | None) -> int | None:
    """The Unix ms a Discord snowflake was created at."""
    if snowflake is None:
        return None
    try:
        return (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    except (TypeError, ValueError):
        return None


def id_str(value: Any) -> str | None:
    """A Discord id as the string written to attributes (``None`` if it is not an integer)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return None


def user_id_value(user_id: Any, settings: Settings) -> str | None:
    """A user id as written to telemetry: ``None`` when capture is off, an HMAC-SHA256 hex digest
    when ``user_id_hmac_key`` is set, else the id as a string (the one transform:
    :func:`otel_bot._privacy.hash_user_id`)."""
    return _privacy.hash_user_id(user_id, settings)


def bounded(text: str, settings: Settings) -> str:
    """User text cut to ``Settings.max_attribute_length`` characters and made encodable."""
    value = _privacy.bound_value(str(text), settings)
    return value if isinstance(value, str) else str(value)


_HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DIGITS = re.compile(r"\d+")


def custom_id_template(custom_id: str) -> str:
    """A low-cardinality form of a component custom_id: UUIDs and long hex runs (discord.py's
    auto-generated ids) become ``{hex}``, digit runs (ids, pages) become ``{id}``."""
    text = _UUID.sub("{hex}", custom_id)
    text = _HEX_RUN.sub("{hex}", text)
    return _DIGITS.sub("{id}", text)


def shard_id_for(client: Any, guild_id: Any) -> int:
    """The shard a guild's events arrive on (0 for DMs and unsharded bots)."""
    count = getattr(client, "shard_count", None)
    gid = as_int(guild_id, -1)
    shards = as_int(count, 0)
    if gid >= 0 and shards > 0:
        return (gid >> 22) % shards
    own = getattr(client, "shard_id", None)
    return int(own) if isinstance(own, int) else 0


def code_name(func: Any) -> str | None:
    """A function's ``__qualname__`` without the ``outer.<locals>.`` part."""
    name = getattr(func, "__qualname__", None)
    if not isinstance(name, str):
        return None
    return name.rsplit("<locals>.", 1)[-1]
