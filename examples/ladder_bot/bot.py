"""A competitive ladder bot, instrumented with otel_bot.

Features (each one is traced end to end once :func:`otel_bot.instrument_bot` runs):

* ``/queue``: guard checks, loading preferences, then a message with a **Join** button.
* **Join** (a ``DynamicItem`` button): MMR lookups, then the player enters the matchmaker.
* a ``tasks.loop`` **matchmaker** pairs players, creates the match in the database and edits both
  players' queue messages ("match found").
* ``/report``: a modal for the match result; updates both ratings in one transaction.
* ``/profile`` and ``/leaderboard`` (a deliberate N+1 the trace reveals, and a cached path).
* ``/season``: deliberately broken; it raises, and the error handler answers the user.
* ``!ping``: a prefix command.
* replay uploads: ``on_message`` downloads the attachment and parses it in a process pool.

Storage is asyncpg when ``DATABASE_URL`` is set, else SQLite through the executor (``storage.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from otel_bot import FlowTracker, checkpoint, instrument_bot

from .matchmaking import Matchmaker, QueueEntry
from .replays import REPLAY_SUFFIXES, ReplayError, ReplaySummary, parse_replay
from .storage import LadderStore, Row, elo_delta, open_database

log = logging.getLogger("ladder_bot")

REGIONS = ("eu", "na", "asia")

#: Per-flow thresholds in ms, by the names users see (command names, the component / modal handler,
#: loop and event names).
THRESHOLDS: dict[str, float] = {
    "queue": 800,
    "button JoinButton": 600,
    "profile": 500,
    "leaderboard": 700,
    "report": 1000,
    "modal ReportModal": 1500,
    "ping": 300,
    "season": 500,
    "matchmaker": 1500,
    "on_message": 2500,
}

#: Deliberately incomplete: ``/season`` looks a key up here that does not exist.
SEASONS: dict[str, dict[str, Any]] = {"2025-autumn": {"ends": "2025-11-30", "decay": 15}}
CURRENT_SEASON = "2026-winter"

MAX_REPLAY_BYTES = 8 * 1024 * 1024


@dataclass
class LadderConfig:
    """How the bot runs; :meth:`from_env` reads the same settings from the environment."""

    database_url: str | None = None
    db_schema: str | None = None
    sqlite_path: str | None = None
    matchmaker_interval: float = 5.0
    leaderboard_ttl: float = 30.0
    replay_workers: int = 2
    match_channel_id: int | None = None
    sync_guild_id: int | None = None
    command_prefix: str = "!"
    #: extra ``instrument_bot`` options, and extra ``commands.Bot`` keyword arguments
    instrument_options: dict[str, Any] = field(default_factory=dict)
    client_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> LadderConfig:
        """``DATABASE_URL``, ``LADDER_DB_SCHEMA``, ``LADDER_SQLITE_PATH``, ``LADDER_MATCH_CHANNEL_ID``,
        ``LADDER_SYNC_GUILD_ID`` (sync the slash commands to that guild on start)."""

        def _int(name: str) -> int | None:
            value = os.environ.get(name, "").strip()
            return int(value) if value else None

        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            db_schema=os.environ.get("LADDER_DB_SCHEMA") or None,
            sqlite_path=os.environ.get("LADDER_SQLITE_PATH") or None,
            match_channel_id=_int("LADDER_MATCH_CHANNEL_ID"),
            sync_guild_id=_int("LADDER_SYNC_GUILD_ID"),
        )


class LeaderboardCache:
    """The rendered leaderboard, kept for ``ttl`` seconds (invalidated by reported results)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._value: discord.Embed | None = None
        self._stored_at = 0.0

    def get(self) -> discord.Embed | None:
        if self._value is not None and time.monotonic() - self._stored_at < self.ttl:
            return self._value
        return None

    def put(self, embed: discord.Embed) -> None:
        self._value, self._stored_at = embed, time.monotonic()

    def invalidate(self) -> None:
        self._value = None


class LadderTree(app_commands.CommandTree):
    """The command tree, with the bot's error reply for failed slash commands."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        """Tell the user something went wrong (the trace has the details) and log it."""
        name = interaction.command.qualified_name if interaction.command else "?"
        if isinstance(error, app_commands.CheckFailure):
            message = "You can't use this command here."
        else:
            log.error("/%s failed: %r", name, getattr(error, "original", error))
            message = "Something went wrong; the team has been notified."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(message, ephemeral=True)
            else:
                await interaction.response.send_message(message, ephemeral=True)
        except discord.HTTPException as exc:  # e.g. the interaction already expired (10062)
            log.warning("could not tell the user about the error in /%s: %s", name, exc)


class LadderBot(commands.Bot):
    """The bot: storage, matchmaker state, the replay process pool and the cog."""

    def __init__(self, config: LadderConfig) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # prefix commands and replay uploads read messages
        super().__init__(
            command_prefix=commands.when_mentioned_or(config.command_prefix),
            intents=intents,
            help_command=None,
            tree_cls=LadderTree,
            **config.client_options,
        )
        self.config = config
        self._store: LadderStore | None = None
        self.ladder_queue = Matchmaker()
        self.leaderboard_cache = LeaderboardCache(config.leaderboard_ttl)
        self.replay_pool: ProcessPoolExecutor | None = None

    @property
    def store(self) -> LadderStore:
        if self._store is None:
            raise RuntimeError("storage is not open yet (setup_hook has not run)")
        return self._store

    async def setup_hook(self) -> None:
        db = await open_database(
            self.config.database_url, sqlite_path=self.config.sqlite_path, schema=self.config.db_schema
        )
        self._store = LadderStore(db)
        self.replay_pool = ProcessPoolExecutor(max_workers=self.config.replay_workers)
        self.add_dynamic_items(JoinButton)
        await self.add_cog(LadderCog(self))
        if self.config.sync_guild_id:
            guild = discord.Object(id=self.config.sync_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    async def close(self) -> None:
        await super().close()  # unloads the cog (stops the matchmaker loop)
        if self.replay_pool is not None:
            self.replay_pool.shutdown(wait=False, cancel_futures=True)
            self.replay_pool = None
        if self._store is not None:
            await self._store.close()
            self._store = None


def _display_mmr(row: Row) -> str:
    return f"{row['mmr']} MMR ({row['wins']}W/{row['losses']}L)"


def queue_embed(name: str, region: str, mode: str, mmr: int) -> discord.Embed:
    embed = discord.Embed(title="Ladder queue", colour=discord.Colour.blurple())
    embed.description = f"{name}, press **Join** to enter the **{region.upper()}** {mode} queue."
    embed.add_field(name="Rating", value=f"{mmr} MMR")
    return embed


class JoinButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"ladder:join:(?P<region>[a-z]+)"):
    """The Join button on a queue message; persistent (works after a restart) thanks to the template."""

    def __init__(self, region: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Join", style=discord.ButtonStyle.success, custom_id=f"ladder:join:{region}", emoji="⚔️"
            )
        )
        self.region = region

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> JoinButton:
        return cls(match["region"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = interaction.client
        assert isinstance(bot, LadderBot)
        user = interaction.user
        with checkpoint("guard_checks"):
            # the button outlives its message's context: check again what /queue checked
            busy = "You are already in the queue." if user.id in bot.ladder_queue else None
            if busy is None and await bot.store.open_match_for(user.id) is not None:
                busy = "Report your current match with /report first."
        if busy is not None:
            await interaction.response.send_message(busy, ephemeral=True)
            return
        with checkpoint("mmr_lookup", region=self.region):
            player = await bot.store.get_player(user.id) or await bot.store.ensure_player(user.id, user.name)
            form = await bot.store.recent_results(user.id, 5)
            # a hot streak gives a small, temporary boost so streaking players meet stronger ones
            mmr = int(player["mmr"]) + 10 * sum(form)
        with checkpoint("matchmaker_add"):
            entry = QueueEntry(
                player_id=user.id,
                name=user.name,
                mmr=mmr,
                region=self.region,
                interaction=interaction,
                channel_id=interaction.channel_id,
            )
            bot.ladder_queue.add(entry)
            waiting = len(bot.ladder_queue)
        await interaction.response.edit_message(
            content=f"🔎 Searching for an opponent in {self.region.upper()} ({waiting} in queue)…",
            embed=None,
            view=None,
        )


class ReportModal(discord.ui.Modal, title="Report match result"):
    """Match result form. Its custom id carries the match *and* the player: discord.py keeps open
    modals by custom id, so two players reporting the same match need two ids."""

    result: discord.ui.Label[ReportModal] = discord.ui.Label(
        text="Result (win or loss)",
        component=discord.ui.TextInput(custom_id="result", placeholder="win", max_length=4),
    )
    score: discord.ui.Label[ReportModal] = discord.ui.Label(
        text="Score (optional)",
        component=discord.ui.TextInput(custom_id="score", placeholder="2-1", required=False, max_length=7),
    )

    def __init__(self, bot: LadderBot, match: Row, user_id: int) -> None:
        super().__init__(custom_id=f"ladder:report:{match['id']}:{user_id}", timeout=900)
        self.bot = bot
        self.match = match

    async def on_submit(self, interaction: discord.Interaction) -> None:
        with checkpoint("validate"):
            result_input = self.result.component
            assert isinstance(result_input, discord.ui.TextInput)
            answer = result_input.value.strip().lower()
            if answer not in ("win", "loss", "w", "l"):
                await interaction.response.send_message("Result must be `win` or `loss`.", ephemeral=True)
                return
        await interaction.response.defer(ephemeral=True, thinking=True)
        store = self.bot.store
        with checkpoint("load_match"):
            match = await store.get_match(int(self.match["id"]))
            if match is None or match["status"] != "open":
                await interaction.followup.send("That match was already reported.", ephemeral=True)
                return
            me = interaction.user.id
            opponent = match["player_b"] if match["player_a"] == me else match["player_a"]
            won = answer.startswith("w")
            winner_id, loser_id = (me, opponent) if won else (opponent, me)
            winner = await store.get_player(winner_id)
            loser = await store.get_player(loser_id)
            assert winner is not None and loser is not None
        with checkpoint("apply_result"):
            delta = elo_delta(int(winner["mmr"]), int(loser["mmr"]))
            recorded = await store.record_result(int(match["id"]), winner_id, loser_id, delta)
        if not recorded:
            await interaction.followup.send("That match was already reported.", ephemeral=True)
            return
        self.bot.leaderboard_cache.invalidate()
        sign = "+" if won else "-"
        await interaction.followup.send(f"Result recorded: {sign}{delta} MMR.", ephemeral=True)


class LadderCog(commands.Cog, name="Ladder"):
    """All of the ladder's commands, the matchmaker loop and the replay listener."""

    def __init__(self, bot: LadderBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.matchmaker.change_interval(seconds=self.bot.config.matchmaker_interval)
        self.matchmaker.start()

    async def cog_unload(self) -> None:
        self.matchmaker.cancel()

    # --- /queue ---------------------------------------------------------------------------------
    @app_commands.command(name="queue", description="Get a Join button for the ladder queue")
    @app_commands.guild_only()
    @app_commands.describe(region="Queue in this region instead of your preferred one")
    @app_commands.choices(region=[app_commands.Choice(name=r.upper(), value=r) for r in REGIONS])
    async def queue(self, interaction: discord.Interaction, region: str | None = None) -> None:
        # The FlowTracker calls are the ones this bot used before otel_bot, unchanged: each
        # ``x_start`` / ``x_complete`` pair is now a child span of the /queue trace.
        flow = FlowTracker("queue_flow", user_id=interaction.user.id)
        try:
            store = self.bot.store
            user = interaction.user
            flow.checkpoint("guard_checks_start")
            player = await store.ensure_player(user.id, user.name)
            if player["banned"]:
                flow.checkpoint("guard_checks_complete")
                flow.complete(status="banned")
                await interaction.response.send_message("You are banned from the ladder.", ephemeral=True)
                return
            if user.id in self.bot.ladder_queue:
                flow.checkpoint("guard_checks_complete")
                flow.complete(status="already_queued")
                await interaction.response.send_message("You are already in the queue.", ephemeral=True)
                return
            open_match = await store.open_match_for(user.id)
            flow.checkpoint("guard_checks_complete")
            if open_match is not None:
                flow.complete(status="in_match")
                await interaction.response.send_message(
                    f"Report match `{open_match['id']}` with /report before queueing again.", ephemeral=True
                )
                return
            flow.checkpoint("load_preferences_start")
            prefs = await store.get_preferences(user.id)
            chosen = region or str(prefs["region"])
            flow.checkpoint("load_preferences_complete")
            view = discord.ui.View(timeout=None)
            view.add_item(JoinButton(chosen))
            await interaction.response.send_message(
                embed=queue_embed(user.name, chosen, str(prefs["mode"]), int(player["mmr"])),
                view=view,
                ephemeral=True,
            )
            flow.complete()
        except Exception:  # as the old tracker was used: a failed flow is completed as an error
            flow.complete(status="error")
            raise

    # --- /profile ---------------------------------------------------------------------------------
    @app_commands.command(name="profile", description="Show a player's ladder profile")
    @app_commands.describe(member="Whose profile (default: yours)")
    async def profile(self, interaction: discord.Interaction, member: discord.User | None = None) -> None:
        target = member or interaction.user
        store = self.bot.store
        with checkpoint("load_profile"):
            player = await store.get_player(target.id)
            if player is None:
                await interaction.response.send_message(f"{target.name} has not played yet.", ephemeral=True)
                return
            form = await store.recent_results(target.id, 10)
            replays = await store.replay_count(target.id)
        with checkpoint("render"):
            embed = discord.Embed(title=f"{player['name']}", colour=discord.Colour.gold())
            embed.add_field(name="Rating", value=_display_mmr(player))
            embed.add_field(name="Form", value="".join("W" if w else "L" for w in form) or "-")
            embed.add_field(name="Replays", value=str(replays))
            if target.id in self.bot.ladder_queue:
                embed.set_footer(text="In queue")
        await interaction.response.send_message(embed=embed)

    # --- /leaderboard -----------------------------------------------------------------------------
    @app_commands.command(name="leaderboard", description="The top of the ladder")
    async def leaderboard(self, interaction: discord.Interaction) -> None:
        cached = self.bot.leaderboard_cache.get()
        if cached is not None:
            with checkpoint("cache_hit"):
                await interaction.response.send_message(embed=cached)
            return
        await interaction.response.defer(thinking=True)
        store = self.bot.store
        with checkpoint("load_top_players"):
            top = await store.top_players(10)
        # Deliberate N+1: one query per player for their recent form. The trace shows ten
        # identical statements under this span (and a repeated-query event on the root); one
        # windowed query would do. Left in on purpose: it is what this example is for.
        with checkpoint("load_form"):
            forms = [await store.recent_results(int(row["id"]), 5) for row in top]
        with checkpoint("render"):
            embed = discord.Embed(title="Ladder — top 10", colour=discord.Colour.green())
            lines = [
                f"**{i}.** {row['name']} — {_display_mmr(row)} {''.join('W' if w else 'L' for w in form)}"
                for i, (row, form) in enumerate(zip(top, forms, strict=True), start=1)
            ]
            embed.description = "\n".join(lines) or "Nobody has played yet."
            self.bot.leaderboard_cache.put(embed)
        await interaction.followup.send(embed=embed)

    # --- /report ----------------------------------------------------------------------------------
    @app_commands.command(name="report", description="Report the result of your current match")
    @app_commands.guild_only()
    async def report(self, interaction: discord.Interaction) -> None:
        match = await self.bot.store.open_match_for(interaction.user.id)
        if match is None:
            await interaction.response.send_message("You have no open match to report.", ephemeral=True)
            return
        await interaction.response.send_modal(ReportModal(self.bot, match, interaction.user.id))

    # --- /season: the command that fails ------------------------------------------------------------
    @app_commands.command(name="season", description="Current season information")
    async def season(self, interaction: discord.Interaction) -> None:
        with checkpoint("load_season"):
            season = SEASONS[CURRENT_SEASON]  # KeyError: the new season was never configured
        await interaction.response.send_message(f"Season ends {season['ends']}.")

    # --- !ping --------------------------------------------------------------------------------------
    @commands.command(name="ping")
    async def ping(self, ctx: commands.Context[LadderBot]) -> None:
        started = time.perf_counter()
        message = await ctx.reply("Pong!")
        rest_ms = (time.perf_counter() - started) * 1000
        latency = self.bot.latency
        gateway = f"{latency * 1000:.0f} ms" if math.isfinite(latency) else "n/a"
        await message.edit(content=f"Pong! gateway {gateway}, REST {rest_ms:.0f} ms")

    # --- the matchmaker loop -------------------------------------------------------------------------
    @tasks.loop(seconds=5.0)
    async def matchmaker(self) -> None:
        if len(self.bot.ladder_queue) < 2:
            return
        with checkpoint("pair_players"):
            pairs = self.bot.ladder_queue.pair()
        for a, b in pairs:
            with checkpoint("create_match", region=a.region):
                match_id = await self.bot.store.create_match(a.region, a.player_id, b.player_id)
            with checkpoint("notify_players"):
                await asyncio.gather(self._notify(a, b, match_id), self._notify(b, a, match_id))
            if self.bot.config.match_channel_id:
                channel = self.bot.get_partial_messageable(self.bot.config.match_channel_id)
                await channel.send(f"⚔️ Match `{match_id}`: **{a.name}** vs **{b.name}** ({a.region.upper()})")

    @matchmaker.before_loop
    async def _before_matchmaker(self) -> None:
        await self.bot.wait_until_ready()

    async def _notify(self, entry: QueueEntry, opponent: QueueEntry, match_id: int) -> None:
        """Edit the player's queue message into a match-found notice."""
        if entry.interaction is None:
            return
        content = (
            f"✅ Match found: you vs **{opponent.name}** ({opponent.mmr} MMR). "
            f"Match id `{match_id}`; use /report when you are done."
        )
        try:
            await entry.interaction.edit_original_response(content=content)
        except discord.HTTPException as exc:
            log.warning("could not notify player of match %s: %s", match_id, exc)

    # --- replay uploads -------------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or not message.attachments:
            return
        replays = [a for a in message.attachments if a.filename.lower().endswith(REPLAY_SUFFIXES)]
        for attachment in replays:
            await self._handle_replay(message, attachment)

    async def _handle_replay(self, message: discord.Message, attachment: discord.Attachment) -> None:
        if attachment.size > MAX_REPLAY_BYTES:
            await message.reply("That replay is too large (8 MB max).")
            return
        with checkpoint("download_replay"):
            data = await attachment.read()
        loop = asyncio.get_running_loop()
        try:
            # CPU-bound: parsed in the process pool so the event loop stays responsive.
            summary: ReplaySummary = await loop.run_in_executor(self.bot.replay_pool, parse_replay, data)
        except ReplayError as exc:
            await message.reply(f"Could not read that replay: {exc}.")
            return
        store = self.bot.store
        with checkpoint("store_replay"):
            match_id = summary.match_hint
            if match_id is None or await store.get_match(match_id) is None:
                open_match = await store.open_match_for(message.author.id)
                match_id = int(open_match["id"]) if open_match else None
            await store.ensure_player(message.author.id, message.author.name)
            await store.save_replay(
                match_id,
                message.author.id,
                summary.duration_s,
                summary.actions,
                summary.apm,
                summary.checksum,
            )
        minutes, seconds = divmod(int(summary.duration_s), 60)
        await message.reply(
            f"📼 Replay saved: {minutes}:{seconds:02d}, {summary.actions} actions, {summary.apm:.0f} APM"
            + (f" (match `{match_id}`)" if match_id else "")
        )


def create_bot(config: LadderConfig | None = None, *, tracer_provider: Any = None) -> LadderBot:
    """Build the bot and instrument it, as the bot's own start-up code does."""
    config = config or LadderConfig.from_env()
    bot = LadderBot(config)
    instrument_bot(bot, tracer_provider=tracer_provider, thresholds=THRESHOLDS, **config.instrument_options)
    return bot
