"""PostgreSQL fixtures: a reachable server, a fresh schema per test, asyncpg pools on it.

The DSN comes from ``OTEL_BOT_TEST_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
When nothing answers there and the PostgreSQL server binaries exist (``/usr/lib/postgresql/*/bin``),
a throwaway cluster is started in a temp dir on a free port (as ``nobody`` when run as root) and
stopped after the session. Otherwise the tests that need PostgreSQL are skipped with one line saying
why, or fail when ``CI=true`` or ``OTEL_BOT_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _redacted(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn


def _probe(dsn: str, timeout: float = 3.0) -> str | None:
    """``None`` when a connection works, else why not."""
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed"

    async def attempt() -> None:
        con = await asyncpg.connect(dsn, timeout=timeout)
        await con.close()

    try:
        asyncio.run(attempt())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Cluster:
    """A throwaway PostgreSQL cluster, trust auth, loopback only."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix="otel_bot_pg_")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self.user: str | None = "nobody" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, user=self.user)
            os.chmod(self.root, 0o700)

    def _run(self, *args: str) -> None:
        subprocess.run(
            list(args), check=True, capture_output=True, timeout=120, cwd=self.root, user=self.user
        )

    def start(self) -> str:
        self._run(os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres",
                  "--auth=trust", "--no-sync", "-E", "UTF8")
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-o", opts,
                  "-l", os.path.join(self.root, "log"), "-w", "-t", "60", "start")
        dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        admin = _probe(dsn)
        if admin is not None:
            raise RuntimeError(admin)
        subprocess.run(
            [os.path.join(self.bindir, "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "postgres", "test"], check=True, capture_output=True, timeout=60, user=self.user,
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/test"

    def stop(self) -> None:
        try:
            self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def _server_bindir() -> str | None:
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(bindir, "initdb")) and os.path.exists(os.path.join(bindir, "pg_ctl")):
            return bindir
    return None


def _must_have_postgres() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("OTEL_BOT_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A DSN that works: the configured server, else a throwaway cluster, else skip (or fail in CI)."""
    dsn = os.environ.get("OTEL_BOT_TEST_DSN", DEFAULT_DSN)
    reason = _probe(dsn)
    if reason is None:
        yield dsn
        return
    bindir = _server_bindir()
    if bindir is not None:
        cluster = _Cluster(bindir)
        try:
            started = cluster.start()
        except Exception as exc:
            cluster.stop()
            reason = f"{reason}; a throwaway cluster from {bindir} failed too: {exc}"
        else:
            try:
                yield started
            finally:
                cluster.stop()
            return
    message = f"PostgreSQL is not reachable at {_redacted(dsn)} ({reason}) and no server binaries to start one"
    if _must_have_postgres():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
async def pg_schema(pg_dsn: str) -> AsyncIterator[str]:
    """A fresh, uniquely named schema for one test; dropped (cascade) afterwards."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    con = await asyncpg.connect(pg_dsn)
    try:
        await con.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await con.close()
    try:
        yield name
    finally:
        con = await asyncpg.connect(pg_dsn)
        try:
            await con.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await con.close()


PoolFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def pg_pool_factory(pg_dsn: str, pg_schema: str) -> AsyncIterator[PoolFactory]:
    """``await make_pool(**create_pool_kwargs)``: an asyncpg pool whose search_path is the test's
    schema; every pool made is closed after the test."""
    import asyncpg

    pools: list[Any] = []

    async def make_pool(**kwargs: Any) -> Any:
        kwargs.setdefault("min_size", 1)
        kwargs.setdefault("max_size", 2)
        settings = dict(kwargs.pop("server_settings", {}) or {})
        settings.setdefault("search_path", pg_schema)
        pool = await asyncpg.create_pool(pg_dsn, server_settings=settings, **kwargs)
        pools.append(pool)
        return pool

    try:
        yield make_pool
    finally:
        for pool in pools:
            await pool.close()
