"""The smallest traced bot: DISCORD_TOKEN=... python examples/minimal_bot.py

Every /hello becomes a trace (interaction root, a checkpoint, the Discord REST calls), exported
over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT, default localhost:4317) and printed as a console waterfall.
No collector running? OTEL_TRACES_EXPORTER=none keeps just the waterfall.
"""

from __future__ import annotations

import asyncio
import os

import discord
from discord.ext import commands

from otel_bot import checkpoint, configure_tracing, instrument_bot

configure_tracing(service_name="minimal-bot", console=True)
bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
instrument_bot(bot)


@bot.tree.command(description="Say hello, slowly enough to see it in the trace")
async def hello(interaction: discord.Interaction) -> None:
    with checkpoint("think", mood="cheerful"):
        await asyncio.sleep(0.05)
    await interaction.response.send_message(f"Hello, {interaction.user.mention}!")


@bot.event
async def setup_hook() -> None:
    await bot.tree.sync()  # global commands can take a while to show up in Discord


if __name__ == "__main__":
    bot.run(os.environ["DISCORD_TOKEN"])
