"""pytest fixtures for the offline Discord, for our tests and for users' own test suites.

Enable in a ``conftest.py`` with ``pytest_plugins = ["otel_bot.testing.pytest_plugin"]`` (needs
pytest-asyncio). Fixtures:

- ``offline_discord``: a running :class:`~otel_bot.testing.OfflineDiscord` (fresh per test).
- ``make_bot``: async factory ``await make_bot(cls=commands.Bot, ready=True, **kwargs)`` returning a
  logged-in (and by default READY) client; every client it made is closed at teardown.
- ``discord_bot``: ``await make_bot()``: a ``commands.Bot`` (prefix ``!``, default intents plus
  members and message_content), application id ``offline_discord.application_id``, with the
  world's guild, channel and members in cache.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord
import pytest_asyncio
from discord.ext import commands

from otel_bot.testing.discord import OfflineDiscord

__all__ = ["MakeBot", "default_intents", "discord_bot", "make_bot", "offline_discord"]

MakeBot = Callable[..., Awaitable[Any]]


def default_intents() -> discord.Intents:
    """``Intents.default()`` plus members (so members are cached) and message_content."""
    intents = discord.Intents.default()
    intents.members = True
    intents.message_content = True
    return intents


@pytest_asyncio.fixture
async def offline_discord() -> AsyncIterator[OfflineDiscord]:
    """A running offline Discord; discord.py's base URLs point at it for the test."""
    async with OfflineDiscord() as fake:
        yield fake


@pytest_asyncio.fixture
async def make_bot(offline_discord: OfflineDiscord) -> AsyncIterator[MakeBot]:
    """Factory for logged-in clients against ``offline_discord`` (closed at teardown)."""
    made: list[discord.Client] = []

    async def factory(cls: type[discord.Client] = commands.Bot, *, ready: bool = True, **kwargs: Any) -> Any:
        kwargs.setdefault("intents", default_intents())
        if issubclass(cls, commands.Bot):
            kwargs.setdefault("command_prefix", "!")
        kwargs.setdefault("application_id", offline_discord.application_id)
        bot = cls(**kwargs)
        made.append(bot)
        await offline_discord.login(bot)
        if ready:
            await offline_discord.dispatch_ready(bot)
        return bot

    yield factory
    for bot in reversed(made):
        await bot.close()


@pytest_asyncio.fixture
async def discord_bot(make_bot: MakeBot) -> commands.Bot:
    """A logged-in, READY ``commands.Bot`` against ``offline_discord`` (closed at teardown)."""
    bot: commands.Bot = await make_bot()
    return bot
