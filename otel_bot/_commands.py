"""Root spans for prefix commands and for hybrid commands invoked as prefix commands.

Where discord.py runs them: ``BotBase.invoke(ctx)`` (from ``process_commands``). The root is
named ``!{qualified name}`` whatever the bot's prefix is (a fixed marker keeps names low
cardinality: a mention prefix carries the bot id); the prefix used goes to
``discord.command.prefix``. The command's local ``@cmd.error`` handler, the cog's
``cog_command_error`` and the ``on_command_error`` / ``on_command_completion`` listeners run
inside the root (listeners as ``event on_command_error`` child spans).

A hybrid command invoked as a slash command is an application command: its root is the
interaction root (``/ping``) opened by the command tree; ``BotBase.invoke`` is not involved, so
there is never a second root. Both carry ``discord.command.hybrid=true``.

When the command is invoked from an event root (``on_message``), the command root links to it.
Messages that are not commands (no prefix, or an unknown command) open no command root.
"""

from __future__ import annotations

from typing import Any

from . import _attributes as A
from . import _outcomes, _roots, _state, _values
from ._guard import guard
from ._patching import Patch


def _context_attributes(ctx: Any, settings: Any) -> dict[str, Any]:
    command = ctx.command
    message = getattr(ctx, "message", None)
    guild = getattr(ctx, "guild", None)
    guild_id = getattr(guild, "id", None)
    author = getattr(ctx, "author", None)
    attrs: dict[str, Any] = {
        A.DISCORD_COMMAND_NAME: command.qualified_name,
        A.DISCORD_COMMAND_TYPE: "prefix",
        A.DISCORD_GUILD_ID: _values.id_str(guild_id),
        A.DISCORD_CHANNEL_ID: _values.id_str(getattr(getattr(ctx, "channel", None), "id", None)),
        A.DISCORD_USER_ID: _values.user_id_value(getattr(author, "id", None), settings),
        A.DISCORD_SHARD_ID: _values.shard_id_for(getattr(ctx, "bot", None), guild_id),
    }
    prefix = getattr(ctx, "prefix", None)
    if isinstance(prefix, str):
        attrs[A.DISCORD_COMMAND_PREFIX] = _values.bounded(prefix, settings)
    if getattr(command, "__commands_is_hybrid__", False):
        attrs[A.DISCORD_COMMAND_HYBRID] = True
    cog = getattr(command, "cog", None)
    if cog is not None:
        attrs[A.DISCORD_COG] = getattr(cog, "qualified_name", type(cog).__name__)
    if message is not None:
        mid = getattr(message, "id", None)
        attrs[A.DISCORD_MESSAGE_ID] = _values.id_str(mid)
        created = _values.snowflake_ms(mid)
        if created is not None:
            attrs[A.DISCORD_MESSAGE_CREATED_AT] = created
        content = getattr(message, "content", None)
        if isinstance(content, str):
            if settings.capture_message_content:
                attrs[A.DISCORD_MESSAGE_CONTENT] = _values.bounded(content, settings)
            if settings.capture_option_values:
                invoked = f"{prefix or ''}{ctx.invoked_with or ''}"
                rest = content[len(invoked) :].strip() if content.startswith(invoked) else ""
                if rest:
                    attrs[A.DISCORD_COMMAND_OPTIONS] = _values.bounded(rest, settings)
    return {k: v for k, v in attrs.items() if v is not None}


def _wrap_invoke(original: Any) -> Any:
    async def invoke(self: Any, ctx: Any, /, *args: Any, **kwargs: Any) -> Any:
        if _state.is_suppressed() or not _roots.client_enabled(self):
            return await original(self, ctx, *args, **kwargs)
        settings = _state.settings()
        if (
            settings is None
            or not settings.trace_commands
            or getattr(ctx, "command", None) is None  # not a command (or an unknown one)
            or getattr(ctx, "interaction", None) is not None  # a hybrid invoked as slash: the tree's root
        ):
            return await original(self, ctx, *args, **kwargs)
        name = f"!{ctx.command.qualified_name}"
        attrs: dict[str, Any] = {}
        with guard("commands.attributes"):
            attrs = _context_attributes(ctx, settings)
        root = _roots.start_root(
            name,
            kind="command",
            flow=ctx.command.qualified_name,
            settings=settings,
            source=ctx,
            client=self,
            attributes=attrs,
            links=_roots.link_to_current(),
            track_outcome=True,
        )
        with root.activated():
            try:
                return await original(self, ctx, *args, **kwargs)
            except BaseException as exc:
                root.note_error(exc)
                raise
            finally:
                if root.outcome is None and getattr(ctx, "command_failed", False):
                    root.note_outcome(_outcomes.OUTCOME_ERROR)
                root.release()

    return invoke


def _bot_base() -> Any:
    from discord.ext.commands.bot import BotBase

    return BotBase


def _command() -> Any:
    from discord.ext.commands import Command

    return Command


PATCHES: tuple[Patch, ...] = (
    Patch(owner=_bot_base, name="invoke", wrap=_wrap_invoke, group="commands"),
    # Every command error (prefix, and hybrid invoked either way) passes through here.
    Patch(owner=_command, name="dispatch_error", wrap=_roots.noting_error_arg, group="commands"),
)
