"""Database spans against the real PostgreSQL: asyncpg (contrib + otel_bot's additions), the
DB-API switch and the adapter wrapper."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_bot import _asyncpg, _db, _dbspan, _guard, _patching, _state
from otel_bot import _attributes as A
from otel_bot._config import Settings
from tests.helpers_faults import FAULTS, failing_provider, lenient
from tests.helpers_patching import by_name, child_of, instrumenting, only, unit_root

asyncpg = pytest.importorskip("asyncpg")

CONNECTION_KEYS = {
    A.DB_SYSTEM_NAME,
    A.DB_NAMESPACE,
    A.SERVER_ADDRESS,
    A.SERVER_PORT,
    A.NETWORK_TRANSPORT,
    A.DB_QUERY_TEXT,
    A.DB_OPERATION_NAME,
}


@pytest.fixture
def instrument_db(tracer_provider: TracerProvider) -> Iterator[Callable[..., Settings]]:
    """``instrument_db(**settings)``: what instrument_bot does for the DB module; undone after."""
    with instrumenting(tracer_provider, _db.PATCHES, _db) as instrument:
        yield instrument





async def _setup_players(pool: Any, rows: int = 10) -> None:
    await pool.execute("CREATE TABLE players (id int PRIMARY KEY, name text NOT NULL, mmr int)")
    await pool.executemany(
        "INSERT INTO players (id, name, mmr) VALUES ($1, $2, $3)", [(i, f"p{i}", 1000 + i) for i in range(rows)]
    )


async def _players_pool(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter,
    **pool_options: Any,
) -> Any:
    """Instrument with default settings, open a pool with the ``players`` table, clear the spans."""
    instrument_db()
    pool = await pg_pool_factory(**pool_options)
    await _setup_players(pool)
    span_exporter.clear()
    return pool


# --- SQL summary --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "operation", "table"),
    [
        ("SELECT * FROM players WHERE id = $1", "SELECT", "players"),
        ("  /* hint */ select name from public.players", "SELECT", "public.players"),
        ("-- note\nINSERT INTO players (id) VALUES ($1)", "INSERT", "players"),
        ('UPDATE "players" SET mmr = $1', "UPDATE", "players"),
        ("DELETE FROM players WHERE id = $1", "DELETE", "players"),
        ("CREATE TABLE IF NOT EXISTS matches (id int)", "CREATE", "matches"),
        ("DROP TABLE IF EXISTS matches", "DROP", "matches"),
        ("TRUNCATE TABLE matches", "TRUNCATE", "matches"),
        ("WITH top AS (SELECT * FROM players) SELECT * FROM top", "SELECT", "top"),
        ("SELECT 1", "SELECT", None),
        ("SELECT * FROM (SELECT 1) AS x", "SELECT", None),
        ("BEGIN;", "BEGIN", None),
        ("", "", None),
    ],
)
def test_summarize(sql: str, operation: str, table: str | None) -> None:
    op, coll, _ = _dbspan.summarize(sql)
    assert (op, coll) == (operation, table)
    assert _dbspan.span_name(op, coll, "postgresql") == (
        f"{operation} {table}" if table else (operation or "postgresql")
    )


# --- asyncpg ------------------------------------------------------------------------------------------


async def test_queries_are_children_of_the_root_with_stable_attributes(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    pool = await _players_pool(instrument_db, pg_pool_factory, span_exporter, min_size=1, max_size=2)
    with unit_root() as unit:
        rows = await pool.fetch("SELECT id, name FROM players WHERE mmr > $1 ORDER BY id", 1004)
        name = await pool.fetchval("SELECT name FROM players WHERE id = $1", 3)
        await pool.execute("UPDATE players SET mmr = mmr + 1 WHERE id = $1", 3)
    assert len(rows) == 5 and name == "p3"
    spans = span_exporter.get_finished_spans()
    root = only(spans, "root")
    select = by_name(spans, "SELECT players")
    assert len(select) == 2
    update = only(spans, "UPDATE players")
    for span in [*select, update]:
        assert span.kind is SpanKind.CLIENT
        assert child_of(span, root)
        attrs = dict(span.attributes or {})
        assert set(attrs) == CONNECTION_KEYS | {A.DB_COLLECTION_NAME}
        assert attrs[A.DB_SYSTEM_NAME] == "postgresql"
        assert attrs[A.DB_NAMESPACE] == "test" or isinstance(attrs[A.DB_NAMESPACE], str)
        assert attrs[A.SERVER_ADDRESS] == "127.0.0.1"
        assert isinstance(attrs[A.SERVER_PORT], int)
        assert attrs[A.NETWORK_TRANSPORT] == "tcp"
        assert attrs[A.DB_COLLECTION_NAME] == "players"
        assert span.status.status_code is StatusCode.UNSET
    assert select[0].attributes[A.DB_QUERY_TEXT] == "SELECT id, name FROM players WHERE mmr > $1 ORDER BY id"
    assert select[0].attributes[A.DB_OPERATION_NAME] == "SELECT"
    assert update.attributes[A.DB_OPERATION_NAME] == "UPDATE"
    # the pool's acquire spans are children of the root too
    acquires = by_name(spans, _asyncpg.POOL_ACQUIRE_SPAN)
    assert len(acquires) == 3 and all(child_of(s, root) for s in acquires)
    assert unit.query_counts == {
        "SELECT id, name FROM players WHERE mmr > $1 ORDER BY id": 1,
        "SELECT name FROM players WHERE id = $1": 1,
        "UPDATE players SET mmr = mmr + ? WHERE id = $1": 1,  # keyed on the sanitised text
    }
    assert update.attributes[A.DB_QUERY_TEXT] == "UPDATE players SET mmr = mmr + ? WHERE id = $1"


async def test_failed_query_records_sqlstate_and_propagates(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db()
    pool = await pg_pool_factory()
    with unit_root():
        with pytest.raises(asyncpg.UndefinedTableError) as caught:
            await pool.fetch("SELECT * FROM missing_table")
    span = only(span_exporter.get_finished_spans(), "SELECT missing_table")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[A.DB_RESPONSE_STATUS_CODE] == "42P01"
    assert span.attributes[A.ERROR_TYPE] == "asyncpg.exceptions.UndefinedTableError"
    assert caught.value.sqlstate == "42P01"
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    assert events[0].attributes[A.EXCEPTION_TYPE] == "asyncpg.exceptions.UndefinedTableError"
    assert events[0].attributes[A.EXCEPTION_MESSAGE] == str(caught.value)


async def test_pool_contention_shows_in_the_second_units_acquire(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db()
    pool = await pg_pool_factory(min_size=1, max_size=1)
    holding = asyncio.Event()

    async def first() -> None:
        with unit_root("first"):
            async with pool.acquire() as con:
                holding.set()
                await con.execute("SELECT pg_sleep(0.2)")

    async def second() -> int:
        await holding.wait()
        with unit_root("second"):
            return int(await pool.fetchval("SELECT 1"))

    _, value = await asyncio.gather(first(), second())
    assert value == 1
    spans = span_exporter.get_finished_spans()
    first_root, second_root = only(spans, "first"), only(spans, "second")
    acquires = by_name(spans, _asyncpg.POOL_ACQUIRE_SPAN)
    first_acq = next(s for s in acquires if child_of(s, first_root))
    second_acq = next(s for s in acquires if child_of(s, second_root))
    for span in (first_acq, second_acq):
        assert span.kind is SpanKind.INTERNAL
        assert set(span.attributes or {}) == {
            A.DB_SYSTEM_NAME, A.DB_POOL_NAME, A.DB_POOL_SIZE, A.DB_POOL_MAX_SIZE, A.DB_POOL_IDLE, A.DB_POOL_WAIT_MS,
        }
        assert span.attributes[A.DB_POOL_SIZE] == 1
        assert span.attributes[A.DB_POOL_MAX_SIZE] == 1
        assert isinstance(span.attributes[A.DB_POOL_WAIT_MS], float)
    assert first_acq.attributes[A.DB_POOL_IDLE] == 1
    assert second_acq.attributes[A.DB_POOL_IDLE] == 0
    assert 100 <= second_acq.attributes[A.DB_POOL_WAIT_MS] <= 5000
    assert first_acq.attributes[A.DB_POOL_WAIT_MS] < second_acq.attributes[A.DB_POOL_WAIT_MS]
    # the query of the second unit comes after its wait, under its own root
    query = next(s for s in by_name(spans, "SELECT") if child_of(s, second_root))
    assert query.start_time >= second_acq.end_time


async def test_no_span_for_the_reset_query_on_release(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db()
    pool = await pg_pool_factory()
    with unit_root():
        async with pool.acquire() as con:
            await con.fetchval("SELECT 1")
        await pool.fetchval("SELECT 2")
    names = sorted(s.name for s in span_exporter.get_finished_spans())
    assert names == sorted(["root", _asyncpg.POOL_ACQUIRE_SPAN, _asyncpg.POOL_ACQUIRE_SPAN, "SELECT", "SELECT"])
    texts = [s.attributes.get(A.DB_QUERY_TEXT) for s in span_exporter.get_finished_spans()]
    assert not any("RESET ALL" in str(t) for t in texts)


async def test_n_plus_one_loop_puts_one_event_on_the_root(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    pool = await _players_pool(instrument_db, pg_pool_factory, span_exporter)
    query = "SELECT name FROM players WHERE id = $1"
    with unit_root() as unit:
        for i in range(7):
            await pool.fetchval(query, i)
        for i in range(4):  # below the threshold: no event
            await pool.fetchval("SELECT mmr FROM players WHERE id = $1", i)
    spans = span_exporter.get_finished_spans()
    root = only(spans, "root")
    events = [e for e in root.events if e.name == A.EVENT_REPEATED_QUERY]
    assert len(events) == 1
    assert dict(events[0].attributes or {}) == {
        A.DB_QUERY_TEXT: query,
        A.BOT_DB_REPEAT_COUNT: 5,
        A.DB_OPERATION_NAME: "SELECT",
        A.DB_COLLECTION_NAME: "players",
    }
    counts = [s.attributes.get(A.BOT_DB_REPEAT_COUNT) for s in spans if s.attributes.get(A.DB_QUERY_TEXT) == query]
    assert counts == [None, None, None, None, 5, 6, 7]
    assert unit.query_counts[query] == 7
    assert unit.reported_queries == {query}


async def test_repeated_query_threshold_is_configurable(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db(repeated_query_threshold=2)
    pool = await pg_pool_factory()
    with unit_root():
        await pool.fetchval("SELECT 1")
        await pool.fetchval("SELECT   1")  # same statement, other whitespace
    root = only(span_exporter.get_finished_spans(), "root")
    events = [e for e in root.events if e.name == A.EVENT_REPEATED_QUERY]
    assert [e.attributes[A.BOT_DB_REPEAT_COUNT] for e in events] == [2]
    assert events[0].attributes[A.DB_QUERY_TEXT] == "SELECT ?"  # sanitised


async def test_slow_query_attribute_and_event(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db(slow_query_ms=50)
    pool = await pg_pool_factory()
    with unit_root():
        await pool.execute("SELECT pg_sleep(0.08)")
        await pool.fetchval("SELECT 1")
    spans = by_name(span_exporter.get_finished_spans(), "SELECT")
    slow, fast = spans
    assert slow.attributes[A.BOT_DB_SLOW] is True
    assert slow.attributes[A.BOT_DB_SLOW_THRESHOLD_MS] == 50.0
    (event,) = [e for e in slow.events if e.name == A.EVENT_SLOW_QUERY]
    assert set(event.attributes or {}) == {A.BOT_DB_DURATION_MS, A.BOT_DB_SLOW_THRESHOLD_MS}
    assert 60 <= event.attributes[A.BOT_DB_DURATION_MS] <= 5000
    assert A.BOT_DB_SLOW not in (fast.attributes or {})
    assert not fast.events


async def test_fetchmany_prepare_copy_and_cursor_round_trips(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    pool = await _players_pool(instrument_db, pg_pool_factory, span_exporter)
    with unit_root():
        async with pool.acquire() as con:
            rows = await con.fetchmany("SELECT id FROM players WHERE id = $1", [(1,), (2,)])
            stmt = await con.prepare("SELECT name FROM players WHERE id = $1")
            name = await stmt.fetchval(4)
            await con.copy_records_to_table("players", records=[(100, "x", 1), (101, "y", 2)])
            seen = 0
            async with con.transaction():
                async for _row in con.cursor("SELECT * FROM players ORDER BY id", prefetch=5):
                    seen += 1
            out: list[bytes] = []

            async def sink(data: bytes) -> None:
                out.append(data)

            await con.copy_from_query("SELECT id FROM players WHERE id < $1", 3, output=sink)
    assert [r["id"] for r in rows] == [1, 2] and name == "p4" and seen == 12
    spans = span_exporter.get_finished_spans()
    root = only(spans, "root")
    fetchmany = next(s for s in by_name(spans, "SELECT players") if s.attributes.get(A.DB_RESPONSE_RETURNED_ROWS) == 2)
    assert fetchmany.attributes[A.DB_QUERY_TEXT] == "SELECT id FROM players WHERE id = $1"
    prepare = only(spans, "PREPARE SELECT players")
    assert prepare.attributes[A.DB_OPERATION_NAME] == "SELECT"
    copy = only(spans, "COPY players")
    assert copy.attributes[A.DB_OPERATION_NAME] == "COPY"
    assert copy.attributes[A.DB_COLLECTION_NAME] == "players"
    assert A.DB_QUERY_TEXT not in copy.attributes
    copy_query = only(spans, "COPY SELECT players")
    assert copy_query.attributes[A.DB_QUERY_TEXT] == "SELECT id FROM players WHERE id < $1"
    cursor = by_name(spans, "CURSOR SELECT players")
    # 12 rows, 5 per round trip: 3 fetches (5, 5, 2), not one span per row
    assert [s.attributes[A.DB_RESPONSE_RETURNED_ROWS] for s in cursor] == [5, 5, 2]
    for span in [fetchmany, prepare, copy, copy_query, *cursor]:
        assert span.kind is SpanKind.CLIENT
        assert child_of(span, root)
        assert span.attributes[A.DB_SYSTEM_NAME] == "postgresql"
        assert isinstance(span.attributes[A.SERVER_PORT], int)


async def test_parameters_only_when_opted_in(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db()
    pool = await pg_pool_factory()
    await pool.fetchval("SELECT $1::text", "secret-value")
    (span,) = by_name(span_exporter.get_finished_spans(), "SELECT")
    assert not [k for k in (span.attributes or {}) if k.startswith("db.query.parameter") or "parameters" in k]
    span_exporter.clear()
    instrument_db(capture_db_parameters=True)
    await pool.fetchval("SELECT $1::text, $2::int", "visible", 7)
    (span,) = by_name(span_exporter.get_finished_spans(), "SELECT")
    assert span.attributes[f"{A.DB_QUERY_PARAMETER_PREFIX}0"] == "visible"
    assert span.attributes[f"{A.DB_QUERY_PARAMETER_PREFIX}1"] == "7"
    assert A.DB_LEGACY_PARAMETERS not in span.attributes


async def test_uninstrument_restores_asyncpg(
    tracer_provider: TracerProvider, pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    connection = asyncpg.connection.Connection
    originals = {name: vars(connection)[name] for name in ("fetch", "fetchmany", "prepare", "reset")}
    pool_acquire = vars(asyncpg.pool.Pool)["_acquire"]
    anext = vars(asyncpg.cursor.CursorIterator)["__anext__"]
    settings = Settings(tracer_provider=tracer_provider)
    _state.activate(settings)
    applied = _patching.apply(_db.PATCHES)
    _db.instrument(settings)
    assert _asyncpg.is_contrib_active()
    assert vars(connection)["fetch"] is not originals["fetch"]
    _db.uninstrument()
    _patching.revert(applied)
    _state.deactivate()
    assert not _asyncpg.is_contrib_active()
    for name, original in originals.items():
        assert vars(connection)[name] is original
    assert vars(asyncpg.pool.Pool)["_acquire"] is pool_acquire
    assert vars(asyncpg.cursor.CursorIterator)["__anext__"] is anext
    pool = await pg_pool_factory()
    assert await pool.fetchval("SELECT 41 + 1") == 42
    assert [(s.name, s.instrumentation_scope.name) for s in span_exporter.get_finished_spans()] == []


async def test_trace_db_off_means_no_spans(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db(trace_db=False)
    pool = await pg_pool_factory()
    with unit_root():
        assert await pool.fetchval("SELECT 1") == 1
    assert [s.name for s in span_exporter.get_finished_spans()] == ["root"]


# --- DB-API switch ---------------------------------------------------------------------------------


async def test_dbapi_switch_traces_sqlite3_and_psycopg2(
    instrument_db: Callable[..., Settings], pg_dsn: str, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db(trace_dbapi=True)
    with unit_root():
        con = sqlite3.connect(":memory:")
        cur = con.cursor()  # contrib traces cursor.execute (not the Connection.execute shortcut)
        cur.execute("CREATE TABLE games (id integer, title text)")
        cur.execute("INSERT INTO games VALUES (?, ?)", (1, "chess"))
        cur.execute("SELECT title FROM games WHERE id = ?", (1,))
        assert cur.fetchall() == [("chess",)]
        con.close()
        psycopg2 = pytest.importorskip("psycopg2")
        pg = psycopg2.connect(pg_dsn)
        try:
            with pg.cursor() as cur:
                cur.execute("SELECT 1 AS one")
                assert cur.fetchone() == (1,)
        finally:
            pg.close()
    spans = span_exporter.get_finished_spans()
    root = only(spans, "root")
    for name in ("CREATE games", "INSERT games", "SELECT games"):
        span = only(spans, name)
        assert child_of(span, root)
        assert span.kind is SpanKind.CLIENT
        assert span.attributes[A.DB_SYSTEM_NAME] == "sqlite"
        assert span.attributes[A.DB_OPERATION_NAME] == name.split()[0]
        assert span.attributes[A.DB_COLLECTION_NAME] == "games"
        assert A.DB_LEGACY_STATEMENT not in span.attributes
        assert A.DB_LEGACY_SYSTEM not in span.attributes
    pg_span = only(spans, "SELECT")
    assert child_of(pg_span, root)
    assert pg_span.attributes[A.DB_SYSTEM_NAME] == "postgresql"
    assert pg_span.attributes[A.DB_QUERY_TEXT] == "SELECT ? AS one"
    assert pg_span.attributes[A.DB_NAMESPACE] == "test" or isinstance(pg_span.attributes[A.DB_NAMESPACE], str)


# --- adapter wrapper ------------------------------------------------------------------------------------


class SqliteAdapter:
    """A bot's own database layer."""

    def __init__(self) -> None:
        self.con = sqlite3.connect(":memory:")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.con.execute(sql, params)

    def fetch_one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.con.execute(sql, params).fetchone()

    def fetch_all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self.con.execute(sql, params).fetchall()

    async def afetch_all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        await asyncio.sleep(0)
        return self.fetch_all(sql, params)


async def test_trace_db_adapter_instance(
    instrument_db: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_db(capture_db_parameters=True)
    db = SqliteAdapter()
    original_fetch_all = db.fetch_all
    assert _db.trace_db_adapter(db, methods=("execute", "fetch_one", "fetch_all", "afetch_all"),
                                system="sqlite", namespace="bot.db") is db
    _db.trace_db_adapter(db, methods=("execute",), system="sqlite")  # twice: no double spans
    assert db.fetch_all.__name__ == "fetch_all"
    with unit_root():
        db.execute("CREATE TABLE users (id integer, name text)")
        db.execute("INSERT INTO users VALUES (?, ?)", (1, "ann"))
        assert db.fetch_one("SELECT name FROM users WHERE id = ?", (1,)) == ("ann",)
        assert await db.afetch_all("SELECT * FROM users") == [(1, "ann")]
        with pytest.raises(sqlite3.OperationalError) as caught:
            db.fetch_all("SELECT * FROM nowhere")
    spans = span_exporter.get_finished_spans()
    root = only(spans, "root")
    assert [s.name for s in spans if s is not root] == [
        "CREATE users", "INSERT users", "SELECT users", "SELECT users", "SELECT nowhere",
    ]
    for span in spans:
        if span is root:
            continue
        assert child_of(span, root) and span.kind is SpanKind.CLIENT
        assert span.attributes[A.DB_SYSTEM_NAME] == "sqlite"
        assert span.attributes[A.DB_NAMESPACE] == "bot.db"
    insert = only(spans, "INSERT users")
    assert insert.attributes[f"{A.DB_QUERY_PARAMETER_PREFIX}0"] == "1"
    assert insert.attributes[f"{A.DB_QUERY_PARAMETER_PREFIX}1"] == "ann"
    select_all = by_name(spans, "SELECT users")[1]
    assert select_all.attributes[A.DB_RESPONSE_RETURNED_ROWS] == 1
    failed = only(spans, "SELECT nowhere")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes[A.ERROR_TYPE] == "sqlite3.OperationalError"
    assert failed.attributes[A.DB_RESPONSE_STATUS_CODE] == caught.value.sqlite_errorname
    _db.untrace_db_adapter(db)
    assert "fetch_all" not in vars(db)
    assert db.fetch_all == original_fetch_all
    span_exporter.clear()
    db.fetch_all("SELECT 1")
    assert span_exporter.get_finished_spans() == ()


async def test_trace_db_adapter_class_and_errors(
    instrument_db: Callable[..., Settings], span_exporter: InMemorySpanExporter
) -> None:
    instrument_db()

    class Adapter(SqliteAdapter):
        pass

    with pytest.raises(AttributeError, match="no method 'fetch_many'"):
        _db.trace_db_adapter(Adapter(), methods=("fetch_many",))
    _db.trace_db_adapter(Adapter, system="sqlite")
    db = Adapter()
    assert db.fetch_all(sql="SELECT 3") == [(3,)]
    (span,) = span_exporter.get_finished_spans()
    assert span.name == "SELECT"
    assert span.attributes[A.DB_QUERY_TEXT] == "SELECT ?"
    assert A.DB_QUERY_PARAMETER_PREFIX + "0" not in span.attributes
    _db.untrace_db_adapter(Adapter)
    assert Adapter.fetch_all is SqliteAdapter.fetch_all or "fetch_all" not in vars(Adapter)


# --- end to end: instrument_bot + the offline Discord ---------------------------------------------------

from tests.helpers_roots import instrumented, wait_roots  # noqa: E402

__all__ = ["instrumented"]


async def test_e2e_slash_command_queries_are_children_of_the_interaction(
    offline_discord: Any, discord_bot: Any, span_exporter: InMemorySpanExporter, instrumented: Any,
    pg_pool_factory: Any,
) -> None:
    import discord

    pool = await pg_pool_factory(min_size=1, max_size=2)
    await _setup_players(pool)
    instrumented(discord_bot)

    @discord_bot.tree.command(name="roster", description="Show the roster")
    async def roster(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        names = []
        for i in range(5):  # the N+1 loop
            names.append(await pool.fetchval("SELECT name FROM players WHERE id = $1", i))
        await interaction.followup.send(", ".join(names))

    span_exporter.clear()
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("roster"))
    spans = await wait_roots(span_exporter, 1, name="/roster")
    root = only(spans, "/roster")
    assert root.kind is SpanKind.SERVER and root.parent is None
    queries = [s for s in spans if s.name == "SELECT players"]
    assert len(queries) == 5
    for span in queries:
        assert child_of(span, root)
        assert span.kind is SpanKind.CLIENT
        assert set(span.attributes or {}) >= CONNECTION_KEYS | {A.DB_COLLECTION_NAME}
        assert span.attributes[A.DB_QUERY_TEXT] == "SELECT name FROM players WHERE id = $1"
        assert isinstance(span.attributes[A.SERVER_PORT], int)
    assert all(child_of(s, root) for s in spans if s.name == _asyncpg.POOL_ACQUIRE_SPAN)
    events = [e for e in root.events if e.name == A.EVENT_REPEATED_QUERY]
    assert [(e.attributes[A.DB_QUERY_TEXT], e.attributes[A.BOT_DB_REPEAT_COUNT]) for e in events] == [
        ("SELECT name FROM players WHERE id = $1", 5)
    ]


async def test_e2e_db_error_escaping_to_the_root_is_scrubbed_there_too(
    offline_discord: Any, discord_bot: Any, span_exporter: InMemorySpanExporter, instrumented: Any,
    pg_pool_factory: Any,
) -> None:
    import discord

    pool = await pg_pool_factory(min_size=1, max_size=2)
    await _setup_players(pool)
    instrumented(discord_bot)
    secret = "hunter2-root-secret"

    @discord_bot.tree.command(name="lookup", description="Look a player up")
    async def lookup(interaction: discord.Interaction) -> None:
        await pool.fetchval(f"SELECT name FROM players WHERE id = '{secret}'")  # raises 22P02

    span_exporter.clear()
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("lookup"))
    spans = await wait_roots(span_exporter, 1, name="/lookup")
    root = only(spans, "/lookup")
    assert root.status.status_code is StatusCode.ERROR
    event = _exception_event(root)
    assert event[A.EXCEPTION_TYPE] == "asyncpg.exceptions.InvalidTextRepresentationError"
    assert event[A.EXCEPTION_MESSAGE] == 'invalid input syntax for type integer: "?"'
    for span in spans:
        assert secret not in repr(dict(span.attributes or {}))
        assert secret not in (span.status.description or "")
        for e in span.events:
            assert secret not in repr(dict(e.attributes or {}))


async def test_e2e_pool_of_one_second_interaction_shows_the_acquire_wait(
    offline_discord: Any, discord_bot: Any, span_exporter: InMemorySpanExporter, instrumented: Any,
    pg_pool_factory: Any,
) -> None:
    import discord

    pool = await pg_pool_factory(min_size=1, max_size=1)
    instrumented(discord_bot)

    @discord_bot.tree.command(name="hold", description="Hold a connection")
    async def hold(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        async with pool.acquire() as con:
            await con.execute("SELECT pg_sleep(0.2)")
        await interaction.followup.send("done")

    span_exporter.clear()
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("hold"))
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("hold"))
    spans = await wait_roots(span_exporter, 2, name="/hold")
    hold_roots = [s for s in spans if s.name == "/hold"]
    assert len(hold_roots) == 2 and hold_roots[0].context.trace_id != hold_roots[1].context.trace_id
    acquires = []
    for root in hold_roots:
        (acquire,) = [s for s in spans if s.name == _asyncpg.POOL_ACQUIRE_SPAN and child_of(s, root)]
        acquires.append(acquire)
    acquires.sort(key=lambda s: s.attributes[A.DB_POOL_WAIT_MS])
    first, second = acquires
    assert first.attributes[A.DB_POOL_IDLE] == 1
    assert second.attributes[A.DB_POOL_IDLE] == 0
    assert second.attributes[A.DB_POOL_MAX_SIZE] == 1 and second.attributes[A.DB_POOL_SIZE] == 1
    assert 100 <= second.attributes[A.DB_POOL_WAIT_MS] <= 5000
    assert first.attributes[A.DB_POOL_WAIT_MS] < 100


async def test_transaction_statements_are_not_an_n_plus_one(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db(repeated_query_threshold=2)
    pool = await pg_pool_factory()
    with unit_root() as unit:
        async with pool.acquire() as con:
            for _ in range(3):
                async with con.transaction():
                    await con.execute("SELECT 1")
    root = only(span_exporter.get_finished_spans(), "root")
    assert [e.attributes[A.DB_QUERY_TEXT] for e in root.events if e.name == A.EVENT_REPEATED_QUERY] == ["SELECT ?"]
    assert set(unit.query_counts) == {"SELECT ?"}


async def test_instrument_bot_round_trip_restores_every_patch(discord_bot: Any, pg_pool_factory: Any) -> None:
    import otel_bot

    targets = [
        (asyncpg.connection.Connection, "fetch"),
        (asyncpg.connection.Connection, "fetchmany"),
        (asyncpg.connection.Connection, "reset"),
        (asyncpg.pool.Pool, "_acquire"),
        (asyncpg.cursor.CursorIterator, "__anext__"),
        (asyncio.BaseEventLoop, "run_in_executor"),
        (asyncio.events.Handle, "_run"),
    ]
    before = [vars(owner)[name] for owner, name in targets]
    otel_bot.instrument_bot(discord_bot)
    try:
        assert _asyncpg.is_contrib_active()
        changed = [vars(owner)[name] is not original for (owner, name), original in zip(targets, before, strict=True)]
        assert changed == [True, True, True, True, False, True, True]  # __anext__: contrib's per-row wrapper taken out
    finally:
        otel_bot.uninstrument_bot(discord_bot)
    assert [vars(owner)[name] for owner, name in targets] == before
    assert all(vars(owner)[name] is original for (owner, name), original in zip(targets, before, strict=True))
    assert not _asyncpg.is_contrib_active()
    pool = await pg_pool_factory()
    assert await pool.fetchval("SELECT 2") == 2
    assert await asyncio.get_running_loop().run_in_executor(None, sum, [1, 2]) == 3


async def test_contrib_instrumented_before_us_is_taken_over_and_given_back(
    tracer_provider: TracerProvider, pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=tracer_provider)  # e.g. zero-code auto-instrumentation
    try:
        settings = Settings(tracer_provider=tracer_provider)
        _state.activate(settings)
        applied = _patching.apply(_db.PATCHES)
        _db.instrument(settings)
        pool = await pg_pool_factory()
        await pool.fetchval("SELECT 1 FROM pg_class LIMIT 1")
        assert [s.name for s in span_exporter.get_finished_spans() if s.kind is SpanKind.CLIENT] == ["SELECT pg_class"]
        _db.uninstrument()
        _patching.revert(applied)
        _state.deactivate()
        assert AsyncPGInstrumentor().is_instrumented_by_opentelemetry  # the plain one is back
        span_exporter.clear()
        await pool.fetchval("SELECT 1 FROM pg_class LIMIT 1")
        plain = [s for s in span_exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
        # plain contrib: op-only names, and the reset query on release shows up as noise
        assert [s.name for s in plain] == ["SELECT", "SELECT"]
        assert "RESET ALL" in str(plain[1].attributes.get(A.DB_QUERY_TEXT, plain[1].attributes.get(A.DB_LEGACY_STATEMENT)))
    finally:
        AsyncPGInstrumentor().uninstrument()


def test_missing_contrib_says_exactly_what_to_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.asyncpg", None)  # import fails
    with caplog.at_level("WARNING", logger="otel_bot"):
        _asyncpg.instrument(Settings())
    assert not _asyncpg.is_contrib_active()
    assert 'pip install "otel-bot[asyncpg]"' in caplog.text
    assert _asyncpg._contrib_module() is None  # the parameter patch is skipped too


# --- a failing sampler / span processor never reaches the query (audit finding 11) ---------------


@pytest.mark.parametrize("fault", FAULTS)
async def test_failing_span_start_never_reaches_the_query(
    fault: str, pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    bad_exporter = InMemorySpanExporter()
    provider = failing_provider(fault, bad_exporter)
    settings = Settings(tracer_provider=provider)
    pool = await pg_pool_factory(min_size=1, max_size=1)
    await _setup_players(pool, rows=3)
    _state.activate(settings)
    applied = _patching.apply(_db.PATCHES)
    _db.instrument(settings)
    db = SqliteAdapter()
    _db.trace_db_adapter(db, methods=("execute", "fetch_all"), system="sqlite")
    before = sum(_guard.error_counts().values())
    try:
        with lenient(), trace.get_tracer("test").start_as_current_span("root", kind=SpanKind.SERVER) as root:
            rows = await pool.fetch("SELECT id FROM players ORDER BY id")
            assert [r["id"] for r in rows] == [0, 1, 2]
            async with pool.acquire() as con:
                assert await con.fetchval("SELECT count(*) FROM players") == 3
                stmt = await con.prepare("SELECT id FROM players WHERE id = $1")
                assert await stmt.fetchval(2) == 2
            with pytest.raises(asyncpg.UndefinedTableError) as caught:
                await pool.fetch("SELECT * FROM missing_table")
            assert caught.value.sqlstate == "42P01"
            db.execute("CREATE TABLE t (x integer)")
            assert db.fetch_all("SELECT * FROM t") == []
            with pytest.raises(sqlite3.OperationalError):
                db.fetch_all("SELECT * FROM nowhere")
            assert trace.get_current_span() is root
    finally:
        _db.untrace_db_adapter(db)
        _db.uninstrument()
        _patching.revert(applied)
        _state.deactivate()
    assert bad_exporter.get_finished_spans() == ()
    assert [s.name for s in span_exporter.get_finished_spans()] == ["root"]
    assert sum(_guard.error_counts().values()) > before


# --- the process environment is left alone (audit finding 8) --------------------------------------


@pytest.mark.parametrize("user_value", [None, "http"])
async def test_instrument_bot_leaves_the_environment_alone(
    user_value: str | None, discord_bot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability as S

    import otel_bot

    # As in a fresh process: the conventions not decided yet (restored after the test).
    monkeypatch.setattr(S, "_initialized", False)
    monkeypatch.setattr(S, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", dict(S._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING))
    if user_value is None:
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    else:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", user_value)
    before = dict(os.environ)
    otel_bot.instrument_bot(discord_bot, trace_dbapi=True)
    try:
        assert _asyncpg.is_contrib_active()
        assert dict(os.environ) == before
    finally:
        otel_bot.uninstrument_bot(discord_bot)
    assert dict(os.environ) == before


async def test_contrib_spans_are_stable_whatever_its_mode(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    """Legacy keys from contrib (its default mode) come out as the stable ones, with the stable
    database schema URL on the scope, and a Unix socket address as network.transport=unix."""
    from opentelemetry.instrumentation._semconv import (
        _OpenTelemetrySemanticConventionStability,
        _OpenTelemetryStabilitySignalType,
        _StabilityMode,
    )

    instrument_db(trace_dbapi=True)
    pool = await pg_pool_factory()
    with unit_root():
        assert await pool.fetchval("SELECT 1") == 1
        con = sqlite3.connect(":memory:")
        con.cursor().execute("SELECT 2").fetchall()  # contrib traces cursor.execute
        con.close()
    spans = span_exporter.get_finished_spans()
    mode = _OpenTelemetrySemanticConventionStability._get_opentelemetry_stability_opt_in_mode(
        _OpenTelemetryStabilitySignalType.DATABASE
    )
    assert isinstance(mode, _StabilityMode)
    contrib = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name.startswith("opentelemetry.")]
    assert len(contrib) == 2, [(s.name, s.instrumentation_scope) for s in spans]
    for span in contrib:
        attrs = dict(span.attributes or {})
        assert not [k for k in attrs if k in ("db.system", "db.name", "db.statement", "db.user") or k.startswith("net.")]
        assert A.DB_SYSTEM_NAME in attrs and A.DB_QUERY_TEXT in attrs
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.schema_url == _dbspan.DB_SCHEMA_URL
    assert {dict(s.attributes or {})[A.DB_SYSTEM_NAME] for s in contrib} == {"postgresql", "sqlite"}
    legacy_unix = {
        A.DB_LEGACY_SYSTEM: "postgresql",
        A.NET_LEGACY_PEER_NAME: "/var/run/postgresql/.s.PGSQL.5432",
        A.NET_LEGACY_TRANSPORT: "other",
    }
    assert _dbspan.normalise(legacy_unix) == {
        A.DB_SYSTEM_NAME: "postgresql",
        A.SERVER_ADDRESS: "/var/run/postgresql/.s.PGSQL.5432",
        A.NETWORK_TRANSPORT: "unix",
    }
    assert _dbspan.normalise({A.SERVER_ADDRESS: "/tmp/.s.PGSQL.5432", A.NETWORK_TRANSPORT: "pipe"})[
        A.NETWORK_TRANSPORT
    ] == "unix"


# --- query literals: sanitised by default (audit finding 16) --------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # string constants, with '' escapes; E'' strings with backslash escapes; prefixed strings
        ("SELECT * FROM t WHERE name = 'it''s'", "SELECT * FROM t WHERE name = ?"),
        ("SELECT E'\\n', e'a\\'b''c' FROM t", "SELECT ?, ? FROM t"),
        ("SELECT E'\\\\', 'plain\\' FROM t", "SELECT ?, ? FROM t"),  # a plain string ends at its quote
        ("SELECT X'1F', B'1010', N'nat', U&'d\\0061t' UESCAPE '!'", "SELECT ?, ?, ?, ? UESCAPE ?"),
        ("SELECT 'a' || 'b'", "SELECT ? || ?"),
        ("WHERE'x' = name", "WHERE? = name"),  # the end of a word is not a prefix
        ("SELECT 'unterminated, AND secret", "SELECT ?"),
        ("SELECT '--not a comment', '/* nor this */'", "SELECT ?, ?"),
        # dollar quoting
        ("SELECT $$body 'with' quotes 1$$", "SELECT ?"),
        ("SELECT $fn$a $$ b$fn$ || $x$c$x$", "SELECT ? || ?"),
        ("DO $$ unterminated", "DO ?"),
        # placeholders untouched
        ("SELECT name FROM players WHERE id = $1 AND mmr > $2", "SELECT name FROM players WHERE id = $1 AND mmr > $2"),
        ("SELECT * FROM t WHERE a = ? AND b = ?2 AND c = :3 AND d = %s AND e = %(e)s",
         "SELECT * FROM t WHERE a = ? AND b = ?2 AND c = :3 AND d = %s AND e = %(e)s"),
        # identifiers untouched, numbers replaced
        ("SELECT t1.col2, a$1, \"Col 3\" FROM t1 JOIN t2 ON t1.id = t2.id", "SELECT t1.col2, a$1, \"Col 3\" FROM t1 JOIN t2 ON t1.id = t2.id"),
        ("SELECT id FROM players WHERE id = 42 LIMIT 10 OFFSET 20", "SELECT id FROM players WHERE id = ? LIMIT ? OFFSET ?"),
        ("SELECT 1e10, 1.5e-3, .5, 3., 0x1F, 0b101, 0o17, 1_000_000", "SELECT ?, ?, ?, ?, ?, ?, ?, ?"),
        ("SELECT -5, (-1), x = -2, y IN (-3,4), x - 1, x-1, mmr - -7", "SELECT ?, (?), x = ?, y IN (?,?), x - ?, x-?, mmr - ?"),
        ("SELECT '5'::int, x::numeric(10, 2)", "SELECT ?::int, x::numeric(?, ?)"),
        ("SELECT arr[1:2] FROM t", "SELECT arr[?:?] FROM t"),
        # keywords stay
        ("UPDATE t SET done = TRUE, note = NULL WHERE flag = false", "UPDATE t SET done = TRUE, note = NULL WHERE flag = false"),
        # comments are dropped (they can hold data; sqlcommenter adds one per call)
        ("SELECT 1 -- user 1234\nFROM t", "SELECT ? \nFROM t"),
        ("SELECT a /* x /* nested */ still */ FROM t WHERE b=1/*c*/AND c=2", "SELECT a  FROM t WHERE b=? AND c=?"),
        ("/*traceparent='00-abc-01'*/ SELECT id FROM t", "SELECT id FROM t"),
        ("SELECT a FROM t /* unterminated", "SELECT a FROM t"),
        # nothing to replace: the very same text
        ("BEGIN", "BEGIN"),
        ("", ""),
    ],
)
def test_sanitize_sql(sql: str, expected: str) -> None:
    assert _dbspan.sanitize_sql(sql) == expected
    assert _dbspan.sanitize_sql(expected) == expected  # idempotent


def test_sanitize_sql_caches_and_bounds() -> None:
    parameterised = "SELECT name FROM players WHERE id = $1"
    assert _dbspan.sanitize_sql(parameterised) is parameterised  # no copy when nothing changes
    _dbspan._sanitize_cached.cache_clear()
    query = "SELECT name FROM players WHERE id = 77"
    for _ in range(3):
        assert _dbspan.sanitize_sql(query) == "SELECT name FROM players WHERE id = ?"
    info = _dbspan._sanitize_cached.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (2, 1, 512)
    huge = "INSERT INTO t VALUES " + ", ".join(f"({i}, 'secret {i}')" for i in range(2000))
    sanitized = _dbspan.sanitize_sql(huge)
    assert len(sanitized) <= 4096 and "secret" not in sanitized and sanitized.startswith("INSERT INTO t VALUES (?, ?)")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('invalid input syntax for type integer: "abc"', 'invalid input syntax for type integer: "?"'),
        ('syntax error at or near "Brien"', 'syntax error at or near "?"'),
        ('duplicate key value violates unique constraint "players_pkey"\nDETAIL:  Key (id)=(5) already exists.',
         'duplicate key value violates unique constraint "players_pkey"\nDETAIL:  Key (id)=(?) already exists.'),
        ('null value in column "name" of relation "players" violates not-null constraint\n'
         'DETAIL:  Failing row contains (2, null, 7).',
         'null value in column "name" of relation "players" violates not-null constraint\n'
         'DETAIL:  Failing row contains (?).'),
        ('invalid input syntax for type integer: "abc"\nLINE 1: SELECT \'abc\'::int\n               ^\n',
         'invalid input syntax for type integer: "?"\nLINE 1: SELECT ?::int\n               ^\n'),
        ('invalid value for parameter "TimeZone": "Mars/Base"', 'invalid value for parameter "TimeZone": "?"'),
        ("unrecognized token: 'abc", "unrecognized token: 'abc"),  # no closing quote: nothing quoted
        ('relation "missing_table" does not exist', 'relation "missing_table" does not exist'),
    ],
)
def test_scrub_db_message(message: str, expected: str) -> None:
    assert _dbspan.scrub_db_message(message) == expected


def _exception_event(span: ReadableSpan) -> dict[str, Any]:
    (event,) = [e for e in span.events if e.name == "exception"]
    return dict(event.attributes or {})


async def test_f_string_query_text_is_sanitised_and_parameterised_unchanged(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    pool = await _players_pool(instrument_db, pg_pool_factory, span_exporter)
    name, guild = "p3", 123456789012345678
    with unit_root():
        await pool.fetch(f"SELECT id, mmr FROM players WHERE name = '{name}' AND mmr > {guild % 7} -- by {guild}")
        await pool.fetchval("SELECT id FROM players WHERE name = $1", name)
        await pool.fetchval("SELECT $tag$it's 'secret'$tag$ || E'\\tmore' || 'O''Brien' AS quote")
    spans = span_exporter.get_finished_spans()
    root = only(spans, "root")
    fstring, parameterised = by_name(spans, "SELECT players")
    assert fstring.attributes[A.DB_QUERY_TEXT] == "SELECT id, mmr FROM players WHERE name = ? AND mmr > ?"
    assert parameterised.attributes[A.DB_QUERY_TEXT] == "SELECT id FROM players WHERE name = $1"
    quoted = only(spans, "SELECT")
    assert quoted.attributes[A.DB_QUERY_TEXT] == "SELECT ? || ? || ? AS quote"
    for span in (fstring, parameterised, quoted):
        assert child_of(span, root) and span.kind is SpanKind.CLIENT
        assert span.attributes[A.DB_OPERATION_NAME] == "SELECT"
        assert isinstance(span.attributes[A.DB_QUERY_TEXT], str)
        assert all(str(guild) not in str(v) and "secret" not in str(v) for v in span.attributes.values())


async def test_query_literals_only_when_opted_in(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    settings = instrument_db(capture_db_query_literals=True)
    assert settings.capture_db_query_literals is True and Settings().capture_db_query_literals is False
    pool = await pg_pool_factory()
    await _setup_players(pool)
    span_exporter.clear()
    query = "SELECT mmr FROM players WHERE name = 'p2' /* note */"
    with unit_root():
        assert await pool.fetchval(query) == 1002
        with pytest.raises(asyncpg.InvalidTextRepresentationError):
            await pool.fetchval("SELECT 'not-a-number'::int")
    spans = span_exporter.get_finished_spans()
    assert only(spans, "SELECT players").attributes[A.DB_QUERY_TEXT] == query
    failed = only(spans, "SELECT")
    assert failed.attributes[A.DB_QUERY_TEXT] == "SELECT 'not-a-number'::int"
    assert _exception_event(failed)[A.EXCEPTION_MESSAGE] == 'invalid input syntax for type integer: "not-a-number"'


async def test_n_plus_one_with_f_string_literals_is_one_statement(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    pool = await _players_pool(instrument_db, pg_pool_factory, span_exporter)
    with unit_root() as unit:
        for i in range(7):
            await pool.fetchval(f"SELECT name FROM players WHERE id = {i}")
    spans = span_exporter.get_finished_spans()
    root = only(spans, "root")
    sanitized = "SELECT name FROM players WHERE id = ?"
    events = [e for e in root.events if e.name == A.EVENT_REPEATED_QUERY]
    assert len(events) == 1
    assert dict(events[0].attributes or {}) == {
        A.DB_QUERY_TEXT: sanitized,
        A.BOT_DB_REPEAT_COUNT: 5,
        A.DB_OPERATION_NAME: "SELECT",
        A.DB_COLLECTION_NAME: "players",
    }
    selects = by_name(spans, "SELECT players")
    assert [s.attributes.get(A.BOT_DB_REPEAT_COUNT) for s in selects] == [None, None, None, None, 5, 6, 7]
    assert {s.attributes[A.DB_QUERY_TEXT] for s in selects} == {sanitized}
    assert dict(unit.query_counts) == {sanitized: 7}
    # opted into raw text: still one statement; the event shows the run that crossed the threshold
    span_exporter.clear()
    instrument_db(capture_db_query_literals=True)
    with unit_root():
        for i in range(5):
            await pool.fetchval(f"SELECT name FROM players WHERE id = {i}")
    root = only(span_exporter.get_finished_spans(), "root")
    assert [e.attributes[A.DB_QUERY_TEXT] for e in root.events if e.name == A.EVENT_REPEATED_QUERY] == [
        "SELECT name FROM players WHERE id = 4"
    ]


async def test_db_error_message_quoting_input_is_scrubbed(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    pool = await _players_pool(instrument_db, pg_pool_factory, span_exporter)
    value = "hunter2-secret"
    with unit_root():
        with pytest.raises(asyncpg.InvalidTextRepresentationError) as caught:
            await pool.fetchval(f"SELECT name FROM players WHERE id = '{value}'")
        with pytest.raises(asyncpg.UniqueViolationError):
            await pool.execute("INSERT INTO players (id, name) VALUES (3, 'dupe-secret')")
    assert value in str(caught.value)  # the bot's own exception is untouched
    bad_input, duplicate = by_name(span_exporter.get_finished_spans(), "SELECT players") + by_name(
        span_exporter.get_finished_spans(), "INSERT players"
    )
    assert bad_input.attributes[A.DB_RESPONSE_STATUS_CODE] == "22P02"
    assert bad_input.attributes[A.ERROR_TYPE] == "asyncpg.exceptions.InvalidTextRepresentationError"
    assert bad_input.attributes[A.DB_QUERY_TEXT] == "SELECT name FROM players WHERE id = ?"
    event = _exception_event(bad_input)
    assert event[A.EXCEPTION_TYPE] == "asyncpg.exceptions.InvalidTextRepresentationError"
    assert event[A.EXCEPTION_MESSAGE] == 'invalid input syntax for type integer: "?"'
    assert value not in event[A.EXCEPTION_STACKTRACE]
    assert 'InvalidTextRepresentationError: invalid input syntax for type integer: "?"' in event[A.EXCEPTION_STACKTRACE]
    assert bad_input.status.status_code is StatusCode.ERROR
    assert bad_input.status.description == 'InvalidTextRepresentationError: invalid input syntax for type integer: "?"'
    assert duplicate.attributes[A.DB_RESPONSE_STATUS_CODE] == "23505"
    assert _exception_event(duplicate)[A.EXCEPTION_MESSAGE] == (
        'duplicate key value violates unique constraint "players_pkey"\nDETAIL:  Key (id)=(?) already exists.'
    )
    assert duplicate.attributes[A.DB_QUERY_TEXT] == "INSERT INTO players (id, name) VALUES (?, ?)"


async def test_literals_sanitised_on_otel_bots_own_asyncpg_spans(
    instrument_db: Callable[..., Settings], pg_pool_factory: Any, span_exporter: InMemorySpanExporter
) -> None:
    pool = await _players_pool(instrument_db, pg_pool_factory, span_exporter)
    with unit_root():
        async with pool.acquire() as con:
            await con.fetchmany("SELECT id FROM players WHERE id = $1 AND name <> 'x1'", [(1,), (2,)])
            stmt = await con.prepare("SELECT name FROM players WHERE mmr > 1003")
            await stmt.fetch()
            async with con.transaction():
                async for _row in con.cursor("SELECT * FROM players WHERE name <> 'x2'", prefetch=20):
                    pass
            out: list[bytes] = []

            async def sink(data: bytes) -> None:
                out.append(data)

            await con.copy_from_query("SELECT id FROM players WHERE name = 'x3'", output=sink)
    spans = span_exporter.get_finished_spans()
    texts = {s.name: s.attributes[A.DB_QUERY_TEXT] for s in spans if A.DB_QUERY_TEXT in (s.attributes or {})}
    assert texts["PREPARE SELECT players"] == "SELECT name FROM players WHERE mmr > ?"
    assert texts["CURSOR SELECT players"] == "SELECT * FROM players WHERE name <> ?"
    assert texts["COPY SELECT players"] == "SELECT id FROM players WHERE name = ?"
    fetchmany = [s for s in by_name(spans, "SELECT players") if s.attributes.get(A.DB_RESPONSE_RETURNED_ROWS) == 2]
    assert [s.attributes[A.DB_QUERY_TEXT] for s in fetchmany] == ["SELECT id FROM players WHERE id = $1 AND name <> ?"]
    assert not [v for v in texts.values() if "x1" in v or "x2" in v or "x3" in v or "1003" in v]


async def test_literals_sanitised_on_dbapi_and_adapter_spans(
    instrument_db: Callable[..., Settings], pg_dsn: str, span_exporter: InMemorySpanExporter
) -> None:
    instrument_db(trace_dbapi=True)
    with unit_root():
        con = sqlite3.connect(":memory:")
        cur = con.cursor()
        cur.execute("CREATE TABLE games (id integer, title text)")
        cur.execute("INSERT INTO games VALUES (1, 'chess')")
        cur.execute("SELECT id FROM games WHERE title = ?", ("chess",))
        con.close()
        psycopg2 = pytest.importorskip("psycopg2")
        pg = psycopg2.connect(pg_dsn)
        try:
            with pg.cursor() as pgcur:
                with pytest.raises(psycopg2.errors.InvalidTextRepresentation):
                    pgcur.execute("SELECT 'pg-secret'::int")
        finally:
            pg.close()
    spans = span_exporter.get_finished_spans()
    assert only(spans, "INSERT games").attributes[A.DB_QUERY_TEXT] == "INSERT INTO games VALUES (?, ?)"
    assert only(spans, "SELECT games").attributes[A.DB_QUERY_TEXT] == "SELECT id FROM games WHERE title = ?"
    failed = only(spans, "SELECT")
    assert failed.attributes[A.DB_SYSTEM_NAME] == "postgresql"
    assert failed.attributes[A.DB_QUERY_TEXT] == "SELECT ?::int"
    assert failed.attributes[A.DB_RESPONSE_STATUS_CODE] == "22P02"
    message = _exception_event(failed)[A.EXCEPTION_MESSAGE]
    assert message.startswith('invalid input syntax for type integer: "?"\nLINE 1: SELECT ?::int')
    assert "pg-secret" not in message and "pg-secret" not in (failed.status.description or "")
    # the adapter wrapper
    span_exporter.clear()
    db = SqliteAdapter()
    _db.trace_db_adapter(db, methods=("execute", "fetch_all"), system="sqlite")
    db.execute("CREATE TABLE users (id integer, name text)")
    db.execute("INSERT INTO users VALUES (7, 'ann')")
    assert db.fetch_all("SELECT id FROM users WHERE name = 'ann'") == [(7,)]
    assert [(s.name, s.attributes[A.DB_QUERY_TEXT]) for s in span_exporter.get_finished_spans()] == [
        ("CREATE users", "CREATE TABLE users (id integer, name text)"),
        ("INSERT users", "INSERT INTO users VALUES (?, ?)"),
        ("SELECT users", "SELECT id FROM users WHERE name = ?"),
    ]


def test_db_tracer_start_span_sanitises_too(tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter) -> None:
    tracer = _dbspan.DbTracerProvider(tracer_provider).get_tracer("test")
    tracer.start_span("q", attributes={A.DB_LEGACY_STATEMENT: "SELECT 'x' FROM t"}).end()
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes[A.DB_QUERY_TEXT] == "SELECT ? FROM t"
    assert A.DB_LEGACY_STATEMENT not in span.attributes


def test_error_scrubber_only_for_database_errors() -> None:
    pg_error = asyncpg.InvalidTextRepresentationError('invalid input syntax for type integer: "abc"')
    assert _dbspan.error_scrubber(pg_error, Settings()) is _dbspan.scrub_db_message
    assert _dbspan.error_scrubber(pg_error, Settings(capture_db_query_literals=True)) is None
    assert _dbspan.error_scrubber(ValueError('"not a db error"'), Settings()) is None
    sqlite_error = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as caught:
        sqlite_error.execute("SELECT * FROM nowhere")
    assert _dbspan.error_scrubber(caught.value, Settings()) is _dbspan.scrub_db_message


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_sanitize_sql_never_leaks_a_quoted_value(value: str) -> None:
    secret = f"SECRET{value}"
    quoted = secret.replace("'", "''")
    escaped = secret.replace("\\", "\\\\").replace("'", "\\'")
    tag = "q" * (max((len(run) for run in secret.split("$")), default=0) + 1)
    for literal in (f"'{quoted}'", f"E'{escaped}'", f"${tag}${secret}${tag}$", f"'{quoted}", f"$${secret}"):
        if literal.startswith("$$") and "$$" in secret:
            continue
        sanitized = _dbspan.sanitize_sql(f"SELECT id FROM t WHERE name = {literal} AND id = $1")
        assert "SECRET" not in sanitized
        assert sanitized.startswith("SELECT id FROM t WHERE name = ?")
