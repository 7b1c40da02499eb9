"""The example bots: the minimal bot, and the ladder bot's commands, storage, matchmaking, replays."""

from __future__ import annotations

import ast
import os
import pickle
import random
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import discord
import pytest
import tomllib
from discord import app_commands
from discord.ext import commands, tasks
from opentelemetry.trace import SpanKind, StatusCode

from otel_bot import _attributes as A
from otel_bot import uninstrument_bot
from otel_bot._demo.cdn import FakeCDN
from otel_bot._demo.runner import _import_ladder_bot
from otel_bot.testing import CALLBACK, CHANNEL_MESSAGE, CHANNEL_MESSAGES, FOLLOWUP, ORIGINAL, OfflineDiscord
from otel_bot.testing.gateway import user_payload
from tests.helpers_roots import assert_contained, assert_root, children, tree, wait_roots

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ladder = _import_ladder_bot()

from otel_bot_examples.ladder_bot import storage as ladder_storage  # noqa: E402
from otel_bot_examples.ladder_bot.matchmaking import Matchmaker, QueueEntry  # noqa: E402
from otel_bot_examples.ladder_bot.replays import ReplayError, make_replay, parse_replay  # noqa: E402


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DISCORD_TOKEN", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(name, None)
    env["OTEL_TRACES_EXPORTER"] = "none"
    return env


# --- the minimal bot ---------------------------------------------------------------------------------
def test_minimal_bot_is_at_most_40_lines_and_uses_the_public_api() -> None:
    source = (EXAMPLES / "minimal_bot.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 40
    tree = ast.parse(source)
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "otel_bot"
        for alias in node.names
    }
    assert imported == {"checkpoint", "configure_tracing", "instrument_bot"}
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert {"configure_tracing", "instrument_bot", "checkpoint"} <= calls
    assert 'os.environ["DISCORD_TOKEN"]' in source


def test_minimal_bot_imports_and_registers_its_slash_command() -> None:
    code = (
        "import runpy, sys\n"
        "ns = runpy.run_path(sys.argv[1], run_name='minimal_bot')\n"
        "bot = ns['bot']\n"
        "cmd = bot.tree.get_command('hello')\n"
        "print(type(cmd).__name__, cmd.name, bool(cmd.description))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES / "minimal_bot.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["Command", "hello", "True"]


_MINIMAL_OFFLINE = """
import asyncio, runpy, sys
from otel_bot.testing import CALLBACK, OfflineDiscord

async def main():
    async with OfflineDiscord() as fake:
        ns = runpy.run_path(sys.argv[1], run_name="minimal_bot")   # configure_tracing + instrument_bot
        bot = ns["bot"]
        bot._connection.guild_ready_timeout = 0.05
        task = asyncio.create_task(bot.start("offline-token"))
        await asyncio.wait_for(bot.wait_until_ready(), 15)
        await fake.gateway_dispatch("INTERACTION_CREATE", fake.payloads.slash_command("hello"))
        req = await fake.wait_for_request("POST", CALLBACK, timeout=10)
        print("CALLBACK", req.json["type"], req.json["data"]["content"])
        print("SYNCED", [c["name"] for c in fake.global_commands])
        await bot.close()
        await task

asyncio.run(main())
"""


def test_minimal_bot_runs_unmodified_against_the_offline_discord() -> None:
    env = _env()
    env["OTEL_TRACES_EXPORTER"] = "none"
    env["NO_COLOR"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", _MINIMAL_OFFLINE, str(EXAMPLES / "minimal_bot.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("CALLBACK 4 Hello, <@") and lines[0].endswith(">!")
    assert lines[1] == "SYNCED ['hello']"  # setup_hook synced the global command
    # the console waterfall (ASCII under NO_COLOR) for the /hello trace, through logging on stderr
    header = next(line for line in proc.stderr.splitlines() if " /hello " in line)
    assert " ms " in header and "trace " in header
    assert re.search(r"^\S+ \S+\s+think\s+[\d.]+ ms", proc.stderr, re.M), proc.stderr  # the checkpoint row
    assert re.search(r"POST /interactions/\{interaction_id\}/", proc.stderr)  # the REST row


# --- the ladder bot: what it registers ---------------------------------------------------------------
async def test_ladder_bot_registers_its_commands_views_loop_and_listener(tmp_path: Path) -> None:
    config = ladder.LadderConfig(sqlite_path=str(tmp_path / "ladder.sqlite3"), matchmaker_interval=60)
    bot = ladder.LadderBot(config)  # uninstrumented: create_bot() adds instrument_bot()
    try:
        await bot.setup_hook()
        slash = {c.name: c for c in bot.tree.get_commands()}
        assert sorted(slash) == ["leaderboard", "profile", "queue", "report", "season"]
        assert all(isinstance(c, app_commands.Command) for c in slash.values())
        assert [p.name for p in slash["queue"].parameters] == ["region"]
        assert [c.value for c in slash["queue"].parameters[0].choices] == ["eu", "na", "asia"]
        assert [p.name for p in slash["profile"].parameters] == ["member"]
        assert slash["queue"].guild_only and slash["report"].guild_only
        assert [c.qualified_name for c in bot.commands] == ["ping"]
        assert isinstance(bot.get_command("ping"), commands.Command)
        cog = bot.get_cog("Ladder")
        assert isinstance(cog, ladder.LadderCog)
        assert isinstance(cog.matchmaker, tasks.Loop) and cog.matchmaker.is_running()
        assert cog.matchmaker.seconds == 60
        assert [name for name, _ in cog.get_listeners()] == ["on_message"]
        assert ladder.JoinButton in bot._connection._view_store._dynamic_items.values()
        assert bot.intents.message_content
        assert isinstance(bot.store.db, ladder_storage.SQLiteDatabase)
        assert bot.replay_pool is not None
    finally:
        await bot.close()
    assert bot.replay_pool is None and bot._store is None


def test_join_button_template_round_trips_its_region() -> None:
    button = ladder.JoinButton("na")
    assert button.custom_id == "ladder:join:na"
    match = ladder.JoinButton.__discord_ui_compiled_template__.fullmatch(button.custom_id)
    assert match is not None and match["region"] == "na"


def test_ladder_module_without_token_points_to_the_demo() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from otel_bot._demo.runner import _import_ladder_bot; "
            "_import_ladder_bot(); from otel_bot_examples.ladder_bot.__main__ import main; sys.exit(main())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "DISCORD_TOKEN is not set" in proc.stderr and "otel-bot demo" in proc.stderr


# --- storage: same schema and queries on both back ends ----------------------------------------------
async def _exercise_store(db: Any) -> None:
    store = ladder_storage.LadderStore(db)
    await db.execute_script(ladder_storage.SCHEMA)  # idempotent
    a = await store.ensure_player(101, "astra")
    b = await store.ensure_player(202, "blaze")
    assert (a["mmr"], a["wins"], bool(a["banned"])) == (1000, 0, False)
    assert (await store.ensure_player(101, "astra2"))["name"] == "astra2"  # upsert keeps one row
    prefs = await store.get_preferences(101)
    assert (prefs["region"], prefs["mode"]) == ("eu", "ranked")
    await store.set_preferences(101, "na", "casual")
    prefs = await store.get_preferences(101)
    assert (prefs["region"], prefs["mode"]) == ("na", "casual")
    assert await store.open_match_for(101) is None
    match_id = await store.create_match("eu", 101, 202)
    assert isinstance(match_id, int)
    open_match = await store.open_match_for(202)
    assert open_match is not None and int(open_match["id"]) == match_id
    delta = ladder_storage.elo_delta(int(a["mmr"]), int(b["mmr"]))
    assert delta == 16
    assert await store.record_result(match_id, 101, 202, delta) is True
    assert await store.record_result(match_id, 202, 101, delta) is False  # already reported: rolled back
    top = await store.top_players(10)
    assert [(int(r["id"]), int(r["mmr"]), int(r["wins"]), int(r["losses"])) for r in top] == [
        (101, 1016, 1, 0),
        (202, 984, 0, 1),
    ]
    assert await store.recent_results(101, 5) == [True]
    assert await store.recent_results(202, 5) == [False]
    assert await store.open_match_for(101) is None
    replay_id = await store.save_replay(match_id, 202, 612.5, 1500, 146.9, "abc123")
    assert isinstance(replay_id, int)
    assert await store.replay_count(202) == 1
    assert await store.replay_count(101) == 0


async def test_storage_sqlite_through_the_executor(tmp_path: Path) -> None:
    db = await ladder_storage.open_database(None, sqlite_path=str(tmp_path / "t.sqlite3"))
    try:
        assert isinstance(db, ladder_storage.SQLiteDatabase) and db.dialect == "sqlite"
        await _exercise_store(db)
    finally:
        await db.close()


async def test_storage_postgresql_through_asyncpg(pg_dsn: str, pg_schema: str) -> None:
    db = await ladder_storage.open_database(pg_dsn, schema=pg_schema)
    try:
        assert isinstance(db, ladder_storage.PostgresDatabase) and db.dialect == "postgresql"
        await _exercise_store(db)
    finally:
        await db.close()


def test_queries_are_shared_and_rewritten_for_sqlite() -> None:
    assert ladder_storage.to_sqlite("SELECT a FROM t WHERE x = $1 AND y = $12") == (
        "SELECT a FROM t WHERE x = ?1 AND y = ?12"
    )
    with pytest.raises(ValueError, match="postgresql://"):
        import asyncio

        asyncio.run(ladder_storage.open_database("mysql://x@y/z"))
    ids = {ladder_storage.new_id() for _ in range(1000)}
    assert len(ids) == 1000


# --- matchmaking ----------------------------------------------------------------------------------------
def test_matchmaker_pairs_closest_ratings_per_region_and_widens_with_waiting() -> None:
    mm = Matchmaker(base_window=100, widen_per_second=50, max_window=800)
    now = 1000.0
    for pid, mmr, region in [(1, 1000, "eu"), (2, 1050, "eu"), (3, 1400, "eu"), (4, 1010, "na")]:
        assert mm.add(QueueEntry(pid, f"p{pid}", mmr, region, joined_at=now))
    assert not mm.add(QueueEntry(1, "p1", 1000, "eu", joined_at=now))  # refresh, not a second entry
    pairs = mm.pair(now)
    assert [(a.player_id, b.player_id) for a, b in pairs] == [(1, 2)]
    assert len(mm) == 2 and 3 in mm and 4 in mm
    mm.add(QueueEntry(5, "p5", 1100, "eu", joined_at=now))
    assert mm.pair(now) == []  # 300 apart, windows of 100
    assert [(a.player_id, b.player_id) for a, b in mm.pair(now + 5.0)] == [(5, 3)]  # windows grew to 350
    assert mm.remove(4) is not None and len(mm) == 0


# --- replays --------------------------------------------------------------------------------------------
def test_replay_parse_round_trip_and_errors() -> None:
    data = make_replay(random.Random(3), match_id=42, seconds=120)
    summary = parse_replay(data)
    assert summary.match_hint == 42
    assert 115 <= summary.duration_s <= 121
    assert summary.players == 2 and summary.actions > 100 and summary.apm > 0
    assert summary == parse_replay(data)  # deterministic
    with pytest.raises(ReplayError, match="bad magic"):
        parse_replay(b"not a replay at all")
    with pytest.raises(ReplayError, match="corrupt"):
        parse_replay(data[:13] + b"garbage")


def test_replay_parser_runs_in_a_process_pool() -> None:
    data = make_replay(random.Random(5), seconds=60)
    assert pickle.loads(pickle.dumps(parse_replay)) is parse_replay
    with ProcessPoolExecutor(max_workers=1) as pool:
        assert pool.submit(parse_replay, data).result(timeout=60) == parse_replay(data)
        with pytest.raises(ReplayError):
            pool.submit(parse_replay, b"LDRP\x02" + b"\0" * 20).result(timeout=60)


# --- packaging ------------------------------------------------------------------------------------------
def test_every_package_directory_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    assert config["package-dir"] == {"otel_bot_examples": "examples"}
    found = set()
    for base, name in ((ROOT / "otel_bot", "otel_bot"), (EXAMPLES, "otel_bot_examples")):
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join((name, *rel.parts)))
    assert found == listed, (
        f"add {sorted(found - listed)} / remove {sorted(listed - found)} in pyproject.toml"
    )


def test_discord_user_option_type_is_user() -> None:
    # /profile's member option must be a USER option (type 6) for Discord's picker
    cmd = ladder.LadderCog.profile
    assert cmd.parameters[0].type is discord.AppCommandOptionType.user


# --- the ladder bot's features, traced end to end (in process, through the offline Discord) ----------
@pytest.fixture
async def ladder_bot(
    offline_discord: OfflineDiscord, span_exporter: Any, tmp_path: Path
) -> AsyncIterator[Any]:
    """The ladder bot as create_bot() builds it (instrumented), logged in and READY offline."""
    config = ladder.LadderConfig(
        sqlite_path=str(tmp_path / "ladder.sqlite3"),
        matchmaker_interval=3600,
        match_channel_id=offline_discord.world.channel_id,
        replay_workers=1,
    )
    bot = ladder.create_bot(config)
    try:
        await offline_discord.login(bot)
        await offline_discord.dispatch_ready(bot)
        span_exporter.clear()
        offline_discord.clear_requests()
        yield bot
    finally:
        await bot.close()
        uninstrument_bot(bot)


def _only(spans: list[Any], name: str) -> Any:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


async def _wait_trace_with(exporter: Any, root_name: str, span_name: str, timeout: float = 5.0) -> list[Any]:
    """Wait (no sleeps) until a finished root ``root_name`` has a span ``span_name`` in its trace."""
    from tests.helpers_roots import waiter

    def ready(spans: list[Any]) -> bool:
        return any(
            r.name == root_name and r.parent is None and any(s.name == span_name for s in tree(spans, r))
            for r in spans
        )

    return await waiter().wait(exporter, ready, timeout)


def _player(name: str) -> dict[str, Any]:
    from otel_bot.testing import snowflake

    return user_payload(snowflake(), name)


async def test_queue_join_and_matchmaker_traces(
    offline_discord: OfflineDiscord, ladder_bot: Any, span_exporter: Any
) -> None:
    fake = offline_discord
    players = [_player("astra"), _player("blaze")]
    joins = []
    for n, user in enumerate(players, start=1):
        fake.inject(ladder_bot, "INTERACTION_CREATE", fake.payloads.slash_command("queue", user=user))
        await fake.wait_for_request("POST", CALLBACK, count=2 * n - 1)
        queued = fake.requests_for("POST", CALLBACK)[-1]
        message = fake.interaction(queued.params["interaction_id"]).original
        assert (
            message is not None and message["components"][0]["components"][0]["custom_id"] == "ladder:join:eu"
        )
        join = fake.payloads.button("ladder:join:eu", message=message, user=user)
        joins.append(join)
        fake.inject(ladder_bot, "INTERACTION_CREATE", join)
        await fake.wait_for_request("POST", CALLBACK, count=2 * n)
    spans = await wait_roots(span_exporter, 2, name="button JoinButton")
    queue_root = next(r for r in spans if r.name == "/queue" and r.parent is None)
    assert_root(queue_root, "/queue")
    assert_contained(spans, queue_root)
    q = tree(spans, queue_root)
    flow = _only(q, "queue_flow")
    assert flow.parent.span_id == queue_root.context.span_id and flow.kind is SpanKind.INTERNAL
    assert [c.name for c in children(q, flow)] == [
        "guard_checks",
        "load_preferences",
        f"POST {CALLBACK}",
    ]
    guard = _only(q, "guard_checks")
    # the bot's own SQLite adapter is traced (trace_db_adapter): a DB span per query, and under it
    # the executor span that ran it on a worker thread
    assert [c.name for c in children(q, guard)] == ["INSERT players", "SELECT players", "SELECT matches"]
    for db in children(q, guard):
        assert db.kind is SpanKind.CLIENT and db.attributes[A.DB_SYSTEM_NAME] == "sqlite"
        assert db.attributes[A.DB_NAMESPACE] == "ladder.sqlite3"
        assert isinstance(db.attributes[A.DB_QUERY_TEXT], str) and "$1" in db.attributes[A.DB_QUERY_TEXT]
        (executor_span,) = children(q, db)
        assert executor_span.name.startswith("executor sqlite_")
        assert executor_span.attributes[A.BOT_EXECUTOR_KIND] == "thread"
    assert queue_root.attributes[A.BOT_FLOW_THRESHOLD_MS] == 800.0
    join_root = next(r for r in spans if r.name == "button JoinButton")
    j = tree(spans, join_root)
    assert [c.name for c in children(j, join_root)] == [
        "guard_checks",
        "mmr_lookup",
        "matchmaker_add",
        f"POST {CALLBACK}",
    ]
    assert [c.name for c in children(j, _only(j, "guard_checks"))] == ["SELECT matches"]
    assert _only(j, "mmr_lookup").attributes["region"] == "eu"
    assert len(ladder_bot.ladder_queue) == 2

    # one matchmaker iteration pairs them: match row, both queue messages edited, match post
    span_exporter.clear()
    cog = ladder_bot.get_cog("Ladder")
    cog.matchmaker.change_interval(seconds=0.05)
    cog.matchmaker.restart()
    spans = await _wait_trace_with(span_exporter, "task matchmaker", "create_match", timeout=10)
    root = next(
        r
        for r in spans
        if r.name == "task matchmaker"
        and r.parent is None
        and any(s.name == "create_match" for s in tree(spans, r))
    )
    assert_contained(spans, root)
    m = tree(spans, root)
    assert [c.name for c in children(m, root)] == [
        "pair_players",
        "create_match",
        "notify_players",
        f"POST {CHANNEL_MESSAGES}",
    ]
    create = _only(m, "create_match")
    (insert,) = children(m, create)
    assert insert.name == "INSERT matches"
    assert [c.name for c in children(m, insert)] == ["executor sqlite_execute"]
    edits = children(m, _only(m, "notify_players"))
    assert [e.name for e in edits] == [f"PATCH {ORIGINAL}", f"PATCH {ORIGINAL}"]
    assert all(e.kind is SpanKind.CLIENT and e.attributes[A.HTTP_RESPONSE_STATUS_CODE] == 200 for e in edits)
    for join in joins:
        content = fake.interaction(join["id"]).original["content"]
        assert content.startswith("✅ Match found: you vs **")
    assert len(ladder_bot.ladder_queue) == 0


async def test_leaderboard_n_plus_one_and_cached_path(
    offline_discord: OfflineDiscord, ladder_bot: Any, span_exporter: Any
) -> None:
    fake = offline_discord
    for i in range(10):
        await ladder_bot.store.ensure_player(1000 + i, f"p{i}")
    span_exporter.clear()
    fake.inject(ladder_bot, "INTERACTION_CREATE", fake.payloads.slash_command("leaderboard"))
    spans = await wait_roots(span_exporter, 1, name="/leaderboard")
    root = _only(spans, "/leaderboard")
    assert_contained(spans, root)
    t = tree(spans, root)
    assert [c.name for c in children(t, root)] == [
        f"POST {CALLBACK}",
        "load_top_players",
        "load_form",
        "render",
        f"POST {FOLLOWUP}",
    ]
    n_plus_one = children(t, _only(t, "load_form"))
    assert [s.name for s in n_plus_one] == ["SELECT matches"] * 10
    assert [c.name for s in n_plus_one for c in children(t, s)] == ["executor sqlite_fetch_all"] * 10
    repeated = [e for e in root.events if e.name == A.EVENT_REPEATED_QUERY]
    assert len(repeated) == 1
    assert repeated[0].attributes[A.BOT_DB_REPEAT_COUNT] >= 5
    assert root.attributes[A.DISCORD_INTERACTION_RESPONSE_TYPE] == "deferred"

    span_exporter.clear()
    fake.inject(ladder_bot, "INTERACTION_CREATE", fake.payloads.slash_command("leaderboard"))
    spans = await wait_roots(span_exporter, 1, name="/leaderboard")
    root = _only(spans, "/leaderboard")
    t = tree(spans, root)
    hit = _only(t, "cache_hit")
    assert [c.name for c in children(t, root)] == ["cache_hit"]
    assert [c.name for c in children(t, hit)] == [f"POST {CALLBACK}"]
    assert not [s for s in t if A.DB_SYSTEM_NAME in (s.attributes or {})]


async def test_season_fails_and_the_error_handler_answers(
    offline_discord: OfflineDiscord, ladder_bot: Any, span_exporter: Any
) -> None:
    fake = offline_discord
    fake.inject(ladder_bot, "INTERACTION_CREATE", fake.payloads.slash_command("season"))
    spans = await wait_roots(span_exporter, 1, name="/season")
    root = _only(spans, "/season")
    assert root.status.status_code is StatusCode.ERROR
    t = tree(spans, root)
    season = _only(t, "load_season")
    assert season.status.status_code is StatusCode.ERROR
    (exc,) = [e for e in season.events if e.name == "exception"]
    assert exc.attributes[A.EXCEPTION_TYPE] == "KeyError"
    assert [c.name for c in children(t, root)] == ["load_season", f"POST {CALLBACK}"]
    req = fake.requests_for("POST", CALLBACK)[-1]
    assert req.json["data"]["content"] == "Something went wrong; the team has been notified."


async def test_report_modal_records_the_result(
    offline_discord: OfflineDiscord, ladder_bot: Any, span_exporter: Any
) -> None:
    fake = offline_discord
    me, other = fake.world.user, _player("rook")
    store = ladder_bot.store
    await store.ensure_player(int(me["id"]), "tester")
    await store.ensure_player(int(other["id"]), "rook")
    match_id = await store.create_match("eu", int(me["id"]), int(other["id"]))
    fake.inject(ladder_bot, "INTERACTION_CREATE", fake.payloads.slash_command("report"))
    callback = await fake.wait_for_request("POST", CALLBACK)
    modal = callback.json["data"]
    assert callback.json["type"] == 9 and modal["custom_id"] == f"ladder:report:{match_id}:{me['id']}"
    await wait_roots(span_exporter, 1, name="/report")
    span_exporter.clear()
    submit = fake.payloads.modal_submit(modal["custom_id"], {"result": "win", "score": "2-1"}, labels=True)
    fake.inject(ladder_bot, "INTERACTION_CREATE", submit)
    spans = await wait_roots(span_exporter, 1, name="modal ReportModal")
    root = _only(spans, "modal ReportModal")
    assert_contained(spans, root)
    t = tree(spans, root)
    assert [c.name for c in children(t, root)] == [
        "validate",
        f"POST {CALLBACK}",
        "load_match",
        "apply_result",
        f"POST {FOLLOWUP}",
    ]
    (tx,) = children(t, _only(t, "apply_result"))
    assert tx.name == "executor sqlite_transaction" and tx.attributes[A.BOT_EXECUTOR_KIND] == "thread"
    assert [c.name for c in children(t, _only(t, "load_match"))] == [
        "SELECT matches",
        "SELECT players",
        "SELECT players",
    ]
    assert (await store.get_player(int(me["id"])))["wins"] == 1
    assert fake.requests_for("POST", FOLLOWUP)[-1].json["content"] == "Result recorded: +16 MMR."


async def test_ping_and_replay_upload_through_the_process_pool(
    offline_discord: OfflineDiscord, ladder_bot: Any, span_exporter: Any
) -> None:
    fake = offline_discord
    fake.inject(ladder_bot, "MESSAGE_CREATE", fake.payloads.message_create("!ping"))
    spans = await wait_roots(span_exporter, 1, name="!ping")
    root = _only(spans, "!ping")
    assert [c.name for c in children(tree(spans, root), root)] == [
        f"POST {CHANNEL_MESSAGES}",
        f"PATCH {CHANNEL_MESSAGE}",
    ]

    cdn = FakeCDN(latency_ms=(1.0, 2.0))
    await cdn.start()
    try:
        span_exporter.clear()
        data = make_replay(random.Random(9), seconds=90)
        attachment = cdn.attachment(fake.world.channel_id, "match-1.ldrp", data, "application/octet-stream")
        fake.inject(
            ladder_bot, "MESSAGE_CREATE", fake.payloads.message_create("gg", attachments=[attachment])
        )
        spans = await _wait_trace_with(
            span_exporter, "event on_message", f"POST {CHANNEL_MESSAGES}", timeout=30
        )
    finally:
        await cdn.stop()
    listener = [
        r
        for r in spans
        if r.name == "event on_message"
        and r.parent is None
        and r.attributes.get(A.DISCORD_LISTENER, "").endswith("LadderCog.on_message")
    ]
    assert len(listener) == 1
    root = listener[0]
    assert_contained(spans, root)
    t = tree(spans, root)
    assert [c.name for c in children(t, root)] == [
        "download_replay",
        "executor parse_replay",
        "store_replay",
        f"POST {CHANNEL_MESSAGES}",
    ]
    parse = _only(t, "executor parse_replay")
    assert parse.attributes[A.BOT_EXECUTOR_KIND] == "process"
    assert cdn.downloads == 1
    reply = fake.requests_for("POST", CHANNEL_MESSAGES)[-1].json
    assert reply["content"].startswith("📼 Replay saved: 1:")


async def test_late_queue_misses_the_ack_and_the_flow_ends_as_an_error(
    offline_discord: OfflineDiscord, ladder_bot: Any, span_exporter: Any
) -> None:
    fake = offline_discord
    late = fake.payloads.slash_command("queue", age_ms=3500)
    fake.inject(ladder_bot, "INTERACTION_CREATE", late)
    spans = await wait_roots(span_exporter, 1, name="/queue")
    root = _only(spans, "/queue")
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes[A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED] is True
    assert any(e.name == A.EVENT_ACK_DEADLINE_MISSED for e in root.events)
    t = tree(spans, root)
    flow = _only(t, "queue_flow")
    assert flow.status.status_code is StatusCode.ERROR and flow.attributes[A.BOT_FLOW_STATUS] == "error"
    # the flow's own callback (404 10062) is inside it; the error handler's apology is not
    assert [c.name for c in children(t, flow)] == ["guard_checks", "load_preferences", f"POST {CALLBACK}"]
    assert [c.name for c in children(t, root)] == ["queue_flow", f"POST {CALLBACK}"]
    assert [r.status for r in fake.requests_for("POST", CALLBACK)] == [404, 404]
    assert fake.requests_for("POST", CALLBACK)[0].response["code"] == 10062
