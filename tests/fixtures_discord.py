"""Offline Discord fixtures (``offline_discord``, ``make_bot``, ``discord_bot``).

They live in :mod:`otel_bot.testing.pytest_plugin` so users' own test suites can load them too;
see that module for what each fixture provides.
"""

from __future__ import annotations

from otel_bot.testing.pytest_plugin import MakeBot, default_intents, discord_bot, make_bot, offline_discord

__all__ = ["MakeBot", "default_intents", "discord_bot", "make_bot", "offline_discord"]
