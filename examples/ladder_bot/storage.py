"""Storage for the ladder bot: one schema, one set of queries, two back ends.

* ``DATABASE_URL`` set (``postgresql://...``): asyncpg with a connection pool.
* otherwise: an embedded SQLite file, driven through ``loop.run_in_executor`` with the standard
  :mod:`sqlite3` module, the way bots that use psycopg2 (a blocking driver) in an executor do it.

Both back ends expose the same small adapter (:class:`Database`: ``execute`` / ``fetch_one`` /
``fetch_all`` / ``transaction``) and run the very same SQL: queries are written with PostgreSQL's
``$1`` placeholders, which SQLite understands as ``?1`` after a one-line rewrite.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from otel_bot import trace_db_adapter

Row = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS players (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    mmr INTEGER NOT NULL DEFAULT 1000,
    wins INTEGER NOT NULL DEFAULT 0,
    losses INTEGER NOT NULL DEFAULT 0,
    banned BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS preferences (
    player_id BIGINT PRIMARY KEY REFERENCES players (id),
    region TEXT NOT NULL DEFAULT 'eu',
    mode TEXT NOT NULL DEFAULT 'ranked',
    notify BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE TABLE IF NOT EXISTS matches (
    id BIGINT PRIMARY KEY,
    region TEXT NOT NULL,
    player_a BIGINT NOT NULL REFERENCES players (id),
    player_b BIGINT NOT NULL REFERENCES players (id),
    status TEXT NOT NULL,
    winner_id BIGINT,
    mmr_delta INTEGER,
    created_at BIGINT NOT NULL,
    reported_at BIGINT
);
CREATE INDEX IF NOT EXISTS matches_player_a ON matches (player_a, created_at);
CREATE INDEX IF NOT EXISTS matches_player_b ON matches (player_b, created_at);
CREATE TABLE IF NOT EXISTS replays (
    id BIGINT PRIMARY KEY,
    match_id BIGINT REFERENCES matches (id),
    uploader_id BIGINT NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    actions INTEGER NOT NULL,
    apm DOUBLE PRECISION NOT NULL,
    checksum TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
"""

# --- queries (PostgreSQL placeholders; rewritten for SQLite) ---------------------------------
UPSERT_PLAYER = (
    "INSERT INTO players (id, name, mmr, wins, losses, banned, created_at) "
    "VALUES ($1, $2, 1000, 0, 0, FALSE, $3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name"
)
GET_PLAYER = "SELECT id, name, mmr, wins, losses, banned FROM players WHERE id = $1"
GET_PREFERENCES = "SELECT region, mode, notify FROM preferences WHERE player_id = $1"
UPSERT_PREFERENCES = (
    "INSERT INTO preferences (player_id, region, mode, notify) VALUES ($1, $2, $3, TRUE) "
    "ON CONFLICT (player_id) DO UPDATE SET region = EXCLUDED.region, mode = EXCLUDED.mode"
)
OPEN_MATCH_FOR = (
    "SELECT id, player_a, player_b, region FROM matches "
    "WHERE status = 'open' AND (player_a = $1 OR player_b = $1) ORDER BY created_at DESC LIMIT 1"
)
GET_MATCH = "SELECT id, region, player_a, player_b, status, winner_id FROM matches WHERE id = $1"
RECENT_RESULTS = (
    "SELECT winner_id FROM matches WHERE status = 'reported' AND (player_a = $1 OR player_b = $1) "
    "ORDER BY reported_at DESC LIMIT $2"
)
TOP_PLAYERS = (
    "SELECT id, name, mmr, wins, losses FROM players WHERE banned = FALSE ORDER BY mmr DESC, id ASC LIMIT $1"
)
INSERT_MATCH = (
    "INSERT INTO matches (id, region, player_a, player_b, status, created_at) "
    "VALUES ($1, $2, $3, $4, 'open', $5)"
)
CLOSE_MATCH = (
    "UPDATE matches SET status = 'reported', winner_id = $1, mmr_delta = $2, reported_at = $3 "
    "WHERE id = $4 AND status = 'open'"
)
APPLY_WIN = "UPDATE players SET mmr = mmr + $1, wins = wins + 1 WHERE id = $2"
APPLY_LOSS = "UPDATE players SET mmr = mmr - $1, losses = losses + 1 WHERE id = $2"
INSERT_REPLAY = (
    "INSERT INTO replays (id, match_id, uploader_id, duration_s, actions, apm, checksum, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
COUNT_REPLAYS = "SELECT COUNT(*) AS n FROM replays WHERE uploader_id = $1"

_PG_PLACEHOLDER = re.compile(r"\$(\d+)")


def to_sqlite(sql: str) -> str:
    """``$1`` → ``?1``: SQLite's numbered placeholders bind the same positional arguments."""
    return _PG_PLACEHOLDER.sub(r"?\1", sql)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_id_lock = threading.Lock()
_last_id = 0


def new_id() -> int:
    """A snowflake-like id (ms timestamp << 22 | sequence), unique within this process."""
    global _last_id
    with _id_lock:
        candidate = now_ms() << 22
        _last_id = max(candidate, _last_id + 1)
        return _last_id


@dataclass(frozen=True)
class Step:
    """One statement of a transaction; ``require_row`` rolls back when it touches no row."""

    sql: str
    args: tuple[Any, ...] = ()
    require_row: bool = False


class Database(Protocol):
    """The adapter both back ends implement (the shape of many bots' own DB layer)."""

    dialect: str

    async def execute(self, sql: str, *args: Any) -> int: ...
    async def fetch_one(self, sql: str, *args: Any) -> Row | None: ...
    async def fetch_all(self, sql: str, *args: Any) -> list[Row]: ...
    async def transaction(self, steps: Sequence[Step]) -> bool: ...
    async def execute_script(self, script: str) -> None: ...
    async def close(self) -> None: ...


# --- PostgreSQL through asyncpg ---------------------------------------------------------------
class PostgresDatabase:
    """asyncpg pool; every query is an asyncpg span once ``instrument_bot`` is active."""

    dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, schema: str | None = None, max_size: int = 8) -> PostgresDatabase:
        try:
            import asyncpg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "DATABASE_URL is set but asyncpg is not installed: pip install 'otel-bot[asyncpg]'"
            ) from exc
        settings: dict[str, str] = {"application_name": "ladder-bot"}
        if schema:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{_ident(schema)}"')
            finally:
                await conn.close()
            settings["search_path"] = schema
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, server_settings=settings)
        return cls(pool)

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self._pool.execute(sql, *args)
        return _rowcount(status)

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        record = await self._pool.fetchrow(sql, *args)
        return dict(record) if record is not None else None

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self._pool.fetch(sql, *args)]

    async def transaction(self, steps: Sequence[Step]) -> bool:
        async with self._pool.acquire() as conn:
            tr = conn.transaction()
            await tr.start()
            try:
                for step in steps:
                    if _rowcount(await conn.execute(step.sql, *step.args)) == 0 and step.require_row:
                        await tr.rollback()
                        return False
            except BaseException:
                await tr.rollback()
                raise
            await tr.commit()
            return True

    async def execute_script(self, script: str) -> None:
        await self._pool.execute(script)

    async def close(self) -> None:
        await self._pool.close()


def _rowcount(status: str) -> int:
    tail = status.rsplit(" ", 1)[-1] if status else ""
    return int(tail) if tail.isdigit() else 0


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


# --- SQLite through the executor ----------------------------------------------------------------
# Module-level functions so the executor span carries a meaningful name (``executor sqlite_fetch_all``).
# Every statement goes through a cursor, as with psycopg2: that is what DB-API tracing sees.
def _rows(cursor: Any) -> list[Row]:
    names = [col[0] for col in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def sqlite_execute(db: SQLiteDatabase, sql: str, args: tuple[Any, ...]) -> int:
    cursor = db.connection().cursor()
    try:
        cursor.execute(to_sqlite(sql), args)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def sqlite_fetch_one(db: SQLiteDatabase, sql: str, args: tuple[Any, ...]) -> Row | None:
    rows = sqlite_fetch_all(db, sql, args)
    return rows[0] if rows else None


def sqlite_fetch_all(db: SQLiteDatabase, sql: str, args: tuple[Any, ...]) -> list[Row]:
    cursor = db.connection().cursor()
    try:
        cursor.execute(to_sqlite(sql), args)
        return _rows(cursor)
    finally:
        cursor.close()


def sqlite_transaction(db: SQLiteDatabase, steps: Sequence[Step]) -> bool:
    cursor = db.connection().cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
        try:
            for step in steps:
                cursor.execute(to_sqlite(step.sql), step.args)
                if cursor.rowcount == 0 and step.require_row:
                    cursor.execute("ROLLBACK")
                    return False
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
        return True
    finally:
        cursor.close()


def sqlite_script(db: SQLiteDatabase, script: str) -> None:
    cursor = db.connection().cursor()
    try:
        for statement in filter(None, (part.strip() for part in script.split(";"))):
            cursor.execute(statement)
    finally:
        cursor.close()


class SQLiteDatabase:
    """A SQLite file used from a small thread pool: one connection per worker thread."""

    dialect = "sqlite"

    def __init__(self, path: str, *, workers: int = 4) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ladder-db")
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def connection(self) -> Any:
        """This worker thread's connection (opened on first use, so DB-API tracing sees it)."""
        conn: Any = getattr(self._local, "conn", None)
        if conn is None:
            # autocommit (isolation_level=None): transactions are explicit BEGIN ... COMMIT
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            setup = conn.cursor()
            setup.execute("PRAGMA journal_mode=WAL")
            setup.execute("PRAGMA synchronous=NORMAL")
            setup.close()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _run(self, func: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, self, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        result: int = await self._run(sqlite_execute, sql, args)
        return result

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        result: Row | None = await self._run(sqlite_fetch_one, sql, args)
        return result

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        result: list[Row] = await self._run(sqlite_fetch_all, sql, args)
        return result

    async def transaction(self, steps: Sequence[Step]) -> bool:
        result: bool = await self._run(sqlite_transaction, tuple(steps))
        return result

    async def execute_script(self, script: str) -> None:
        await self._run(sqlite_script, script)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._executor.shutdown, True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


async def open_database(
    url: str | None, *, sqlite_path: str | None = None, schema: str | None = None
) -> Database:
    """Open the configured back end and make sure the schema exists."""
    db: Database
    if url:
        if not url.startswith(("postgres://", "postgresql://")):
            raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {url.split(':', 1)[0]!r}")
        db = await PostgresDatabase.connect(url, schema=schema)
    else:
        path = sqlite_path or os.environ.get("LADDER_SQLITE_PATH") or "ladder.sqlite3"
        sqlite_db = SQLiteDatabase(path)
        await sqlite_db.execute_script(SCHEMA)
        # Our own DB layer: one span per query ("SELECT players"), parent of the executor span
        # that runs it; asyncpg is traced by instrument_bot itself.
        return trace_db_adapter(
            sqlite_db,
            ("execute", "fetch_one", "fetch_all"),
            system="sqlite",
            namespace=os.path.basename(path),
        )
    await db.execute_script(SCHEMA)
    return db


# --- the ladder's data access ---------------------------------------------------------------------
class LadderStore:
    """Everything the bot reads and writes, over either back end."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure_player(self, player_id: int, name: str) -> Row:
        await self.db.execute(UPSERT_PLAYER, player_id, name, now_ms())
        row = await self.db.fetch_one(GET_PLAYER, player_id)
        assert row is not None
        return row

    async def get_player(self, player_id: int) -> Row | None:
        return await self.db.fetch_one(GET_PLAYER, player_id)

    async def get_preferences(self, player_id: int) -> Row:
        row = await self.db.fetch_one(GET_PREFERENCES, player_id)
        if row is None:
            await self.db.execute(UPSERT_PREFERENCES, player_id, "eu", "ranked")
            row = {"region": "eu", "mode": "ranked", "notify": True}
        return row

    async def set_preferences(self, player_id: int, region: str, mode: str) -> None:
        await self.db.execute(UPSERT_PREFERENCES, player_id, region, mode)

    async def open_match_for(self, player_id: int) -> Row | None:
        return await self.db.fetch_one(OPEN_MATCH_FOR, player_id)

    async def get_match(self, match_id: int) -> Row | None:
        return await self.db.fetch_one(GET_MATCH, match_id)

    async def recent_results(self, player_id: int, limit: int = 10) -> list[bool]:
        rows = await self.db.fetch_all(RECENT_RESULTS, player_id, limit)
        return [row["winner_id"] == player_id for row in rows]

    async def top_players(self, limit: int = 10) -> list[Row]:
        return await self.db.fetch_all(TOP_PLAYERS, limit)

    async def create_match(self, region: str, player_a: int, player_b: int) -> int:
        match_id = new_id()
        await self.db.execute(INSERT_MATCH, match_id, region, player_a, player_b, now_ms())
        return match_id

    async def record_result(self, match_id: int, winner_id: int, loser_id: int, delta: int) -> bool:
        """Close the match and move both ratings atomically; False when it was already reported."""
        return await self.db.transaction(
            [
                Step(CLOSE_MATCH, (winner_id, delta, now_ms(), match_id), require_row=True),
                Step(APPLY_WIN, (delta, winner_id)),
                Step(APPLY_LOSS, (delta, loser_id)),
            ]
        )

    async def save_replay(
        self,
        match_id: int | None,
        uploader_id: int,
        duration_s: float,
        actions: int,
        apm: float,
        checksum: str,
    ) -> int:
        replay_id = new_id()
        await self.db.execute(
            INSERT_REPLAY, replay_id, match_id, uploader_id, duration_s, actions, apm, checksum, now_ms()
        )
        return replay_id

    async def replay_count(self, player_id: int) -> int:
        row = await self.db.fetch_one(COUNT_REPLAYS, player_id)
        return int(row["n"]) if row else 0

    async def close(self) -> None:
        await self.db.close()


def expected_score(rating: float, opponent: float) -> float:
    return 1.0 / (1.0 + 10 ** ((opponent - rating) / 400.0))


def elo_delta(winner_mmr: int, loser_mmr: int, k: int = 32) -> int:
    """Points the winner gains (and the loser loses); at least 1."""
    return max(1, round(k * (1.0 - expected_score(winner_mmr, loser_mmr))))
