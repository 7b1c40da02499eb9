"""asyncpg: the contrib instrumentor, reshaped to the stable conventions, plus what it misses.

The contrib ``opentelemetry-instrumentation-asyncpg`` traces ``Connection.execute / executemany /
fetch / fetchval / fetchrow``, prepared statements and cursors. It is handed
:class:`~otel_bot._dbspan.DbTracerProvider`, so its spans get the stable attributes and the
``{operation} {table}`` name, and the slow / repeated query checks. otel_bot adds:

* ``Pool._acquire``: an ``asyncpg.pool.acquire`` span with the pool's size, max size and idle
  connections at that moment and the wait in ``bot.db.pool.wait_ms``, so pool contention shows;
* ``Connection.fetchmany``, ``prepare``, ``copy_from_table``, ``copy_from_query``,
  ``copy_to_table``, ``copy_records_to_table``;
* cursor iteration (``async for row in con.cursor(...)``): one span per round trip (each prefetch
  batch), not contrib's one span per row;
* silence for the reset query asyncpg runs when a connection goes back to the pool.

otel_bot does not touch ``OTEL_SEMCONV_STABILITY_OPT_IN`` (an earlier version added
``database`` to ``os.environ``, which switched every other contrib DB instrumentation in the
process, and child processes, to other attribute names). It does not need to: the contrib
instrumentations write the legacy keys (``db.system``, ``db.name``, ``db.statement``,
``net.peer.*``) in their default mode, and :class:`~otel_bot._dbspan.DbTracer` translates every
span's attributes to the stable ones (and its scope's schema URL to the stable database
schema), so the exported spans are the same whatever mode the application chose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind

from . import _attributes as A
from . import _privacy, _state
from ._dbspan import DbTracerProvider, QuerySpan, quiet, set_returned_rows
from ._dbspan import db_enabled as _enabled
from ._guard import guard
from ._patching import Patch, attr_owner

logger = logging.getLogger("otel_bot")

PIP_HINT = 'pip install "otel-bot[asyncpg]"'
POOL_ACQUIRE_SPAN = "asyncpg.pool.acquire"
SYSTEM = "postgresql"

_contrib: Any = None  # the AsyncPGInstrumentor we turned on (None: we did not)
_iterator_anext: Any = None  # contrib's per-row CursorIterator.__anext__ wrapper we took out
_took_over = False  # contrib was instrumented by someone else before us


def _attr_of(module: str, cls: str) -> Callable[[], Any]:
    return attr_owner(f"asyncpg.{module}", cls)


def _contrib_module() -> Any:
    try:
        import opentelemetry.instrumentation.asyncpg as contrib
    except ImportError:
        return None
    return contrib


def connection_attributes(connection: Any) -> dict[str, Any]:
    """Stable attributes of one asyncpg connection (``db.namespace``, ``server.*``)."""
    attrs: dict[str, Any] = {A.DB_SYSTEM_NAME: SYSTEM}
    params = getattr(connection, "_params", None)
    database = getattr(params, "database", None)
    if database:
        attrs[A.DB_NAMESPACE] = str(database)
    addr = getattr(connection, "_addr", None)
    if isinstance(addr, tuple) and len(addr) >= 2:
        attrs[A.SERVER_ADDRESS] = str(addr[0])
        attrs[A.SERVER_PORT] = int(addr[1])
        attrs[A.NETWORK_TRANSPORT] = "tcp"
    elif isinstance(addr, str):
        attrs[A.SERVER_ADDRESS] = addr
        attrs[A.NETWORK_TRANSPORT] = "unix"
    return attrs


def _query_span(connection: Any, query: str | None, *, name: str = SYSTEM, prefix: str = "",
                params: Any = None, extra: dict[str, Any] | None = None) -> QuerySpan:
    attrs: dict[str, Any] = {A.DB_SYSTEM_NAME: SYSTEM}
    with guard("db.attributes"):
        attrs = connection_attributes(connection)
    if query is not None:
        attrs[A.DB_QUERY_TEXT] = query
    if extra:
        attrs.update(extra)
    return QuerySpan(_state.get_tracer(), name, attrs, prefix=prefix, params=params)


# --- Connection methods contrib does not cover -------------------------------------------------------


def _wrap_fetchmany(original: Any) -> Any:
    async def fetchmany(self: Any, query: str, args: Any, *a: Any, **kw: Any) -> Any:
        if not _enabled():
            return await original(self, query, args, *a, **kw)
        with _query_span(self, query, params=None) as span:
            result = await original(self, query, args, *a, **kw)
            set_returned_rows(span, result)
            return result

    return fetchmany


def _wrap_prepare(original: Any) -> Any:
    async def prepare(self: Any, query: str, *a: Any, **kw: Any) -> Any:
        if not _enabled():
            return await original(self, query, *a, **kw)
        with _query_span(self, query, prefix="PREPARE"):
            return await original(self, query, *a, **kw)

    return prepare


def _wrap_copy_table(original: Any) -> Any:
    """copy_from_table / copy_to_table / copy_records_to_table: the table is the first argument."""

    async def copy(self: Any, table_name: str, *a: Any, **kw: Any) -> Any:
        if not _enabled():
            return await original(self, table_name, *a, **kw)
        schema = kw.get("schema_name")
        table = f"{schema}.{table_name}" if schema else str(table_name)
        extra = {A.DB_OPERATION_NAME: "COPY", A.DB_COLLECTION_NAME: table}
        with _query_span(self, None, name=f"COPY {table}", extra=extra):
            return await original(self, table_name, *a, **kw)

    return copy


def _wrap_copy_query(original: Any) -> Any:
    async def copy_from_query(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        if not _enabled():
            return await original(self, query, *args, **kw)
        with _query_span(self, query, prefix="COPY", params=args):
            return await original(self, query, *args, **kw)

    return copy_from_query


def _wrap_reset(original: Any) -> Any:
    async def reset(self: Any, *a: Any, **kw: Any) -> Any:
        token = quiet.set(True)
        try:
            return await original(self, *a, **kw)
        finally:
            quiet.reset(token)

    return reset


# --- cursors: one span per round trip -------------------------------------------------------------


def _wrap_cursor_exec(original: Any) -> Any:
    # Resolved once, when the patch is applied (asyncpg.cursor is imported by then), not per round trip.
    iterator_cls = _attr_of("cursor", "CursorIterator")()

    async def _exec(self: Any, n: int, timeout: Any) -> Any:
        if not _enabled() or iterator_cls is None or not isinstance(self, iterator_cls):
            # Cursor.fetch / fetchrow / forward are traced by contrib, once per call.
            return await original(self, n, timeout)
        with _query_span(self._connection, self._query, prefix="CURSOR", params=self._args) as span:
            result = await original(self, n, timeout)
            set_returned_rows(span, result)
            return result

    return _exec


# --- the pool -----------------------------------------------------------------------------------------


def _wrap_pool_acquire(original: Any) -> Any:
    async def _acquire(self: Any, timeout: Any) -> Any:
        if not _enabled():
            return await original(self, timeout)
        attrs: dict[str, Any] = {A.DB_SYSTEM_NAME: SYSTEM}
        with guard("db.pool_attributes"):
            attrs[A.DB_POOL_SIZE] = int(self.get_size())
            attrs[A.DB_POOL_MAX_SIZE] = int(self.get_max_size())
            attrs[A.DB_POOL_IDLE] = int(self.get_idle_size())
            attrs[A.DB_POOL_NAME] = f"asyncpg.Pool@{id(self):x}"
        span: Span = INVALID_SPAN
        with guard("db.pool_start"):  # a failing provider/sampler/processor: acquire untraced
            span = _state.get_tracer().start_span(POOL_ACQUIRE_SPAN, kind=SpanKind.INTERNAL, attributes=attrs)
        if span is INVALID_SPAN:
            return await original(self, timeout)
        t0 = time.perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                return await original(self, timeout)
        except Exception as exc:
            if span.is_recording():
                with guard("db.pool_error"):
                    span.set_attribute(A.ERROR_TYPE, _privacy.error_type(exc))
                    _privacy.record_error(span, exc)
            raise
        finally:
            with guard("db.pool_end"):
                if span.is_recording():
                    span.set_attribute(A.DB_POOL_WAIT_MS, (time.perf_counter() - t0) * 1000.0)
                span.end()

    return _acquire


def _wrap_hydrate(original: Any) -> Any:
    """Contrib's attribute builder: parameters as ``db.query.parameter.<i>`` instead of one string."""

    def _hydrate_span_from_args(connection: Any, query: Any, parameters: Any, *a: Any, **kw: Any) -> Any:
        attrs = original(connection, query, None, *a, **kw)
        settings = _state.settings_or_default()
        if parameters and settings.capture_db_parameters:
            from ._dbspan import parameter_attributes

            with guard("db.parameters"):
                attrs.update(parameter_attributes(tuple(parameters), settings.max_attribute_length))
        return attrs

    return _hydrate_span_from_args


_CONNECTION = _attr_of("connection", "Connection")

PATCHES: tuple[Patch, ...] = (
    Patch(owner=_CONNECTION, name="fetchmany", wrap=_wrap_fetchmany, group="db"),
    Patch(owner=_CONNECTION, name="prepare", wrap=_wrap_prepare, group="db"),
    Patch(owner=_CONNECTION, name="copy_from_table", wrap=_wrap_copy_table, group="db"),
    Patch(owner=_CONNECTION, name="copy_to_table", wrap=_wrap_copy_table, group="db"),
    Patch(owner=_CONNECTION, name="copy_records_to_table", wrap=_wrap_copy_table, group="db"),
    Patch(owner=_CONNECTION, name="copy_from_query", wrap=_wrap_copy_query, group="db"),
    Patch(owner=_CONNECTION, name="reset", wrap=_wrap_reset, group="db"),
    Patch(owner=_attr_of("cursor", "BaseCursor"), name="_exec", wrap=_wrap_cursor_exec, group="db"),
    Patch(owner=_attr_of("cursor", "BaseCursor"), name="_bind_exec", wrap=_wrap_cursor_exec, group="db"),
    Patch(owner=_attr_of("pool", "Pool"), name="_acquire", wrap=_wrap_pool_acquire, group="db"),
    Patch(owner=_contrib_module, name="_hydrate_span_from_args", wrap=_wrap_hydrate, group="db"),
)


def instrument(settings: Any) -> None:
    """Turn on the contrib asyncpg instrumentor (through our tracer provider), when installed."""
    global _contrib, _iterator_anext, _took_over
    if not settings.trace_db or _contrib is not None:
        return
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return  # no asyncpg, nothing to trace
    try:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    except ImportError:
        logger.warning(
            "otel_bot: asyncpg is installed but opentelemetry-instrumentation-asyncpg is not, so "
            "queries are not traced. Install it with: %s",
            PIP_HINT,
        )
        return
    # Contrib hands parameters to its attribute builder only with capture_parameters on; our
    # wrapper of that builder (PATCHES) records them, as db.query.parameter.<i>, only when
    # Settings.capture_db_parameters is on at call time (contrib's own string is always dropped).
    instrumentor = AsyncPGInstrumentor(capture_parameters=True)
    if instrumentor.is_instrumented_by_opentelemetry:
        # Instrumented before us (zero-code auto-instrumentation loads it too): re-instrument it
        # through our tracer provider so its spans get otel_bot's names and checks; uninstrument()
        # puts a plain instrumentation back.
        logger.info("otel_bot: asyncpg was already instrumented; re-instrumenting it through otel_bot")
        instrumentor.uninstrument()
        _took_over = True
    instrumentor.instrument(tracer_provider=DbTracerProvider(settings.tracer_provider))
    _contrib = instrumentor
    # Contrib makes one span per row of `async for row in con.cursor(...)`; we trace each round
    # trip instead (BaseCursor._exec / _bind_exec), so take its per-row wrapper out.
    iterator_cls = _attr_of("cursor", "CursorIterator")()
    wrapped = iterator_cls.__dict__.get("__anext__") if iterator_cls is not None else None
    if wrapped is not None and hasattr(wrapped, "__wrapped__"):
        _iterator_anext = wrapped
        iterator_cls.__anext__ = wrapped.__wrapped__


def uninstrument() -> None:
    """Turn the contrib asyncpg instrumentor off again (only if otel_bot turned it on)."""
    global _contrib, _iterator_anext, _took_over
    instrumentor, _contrib = _contrib, None
    if instrumentor is None:
        return
    if _iterator_anext is not None:
        iterator_cls = _attr_of("cursor", "CursorIterator")()
        if iterator_cls is not None and iterator_cls.__dict__.get("__anext__") is _iterator_anext.__wrapped__:
            iterator_cls.__anext__ = _iterator_anext  # contrib's unwrap expects its wrapper back
        _iterator_anext = None
    instrumentor.uninstrument()
    if _took_over:
        _took_over = False
        instrumentor.instrument()  # give back the plain instrumentation we replaced


def is_contrib_active() -> bool:
    """True while otel_bot's call turned the contrib asyncpg instrumentor on."""
    return _contrib is not None


__all__ = ["PATCHES", "connection_attributes", "instrument", "uninstrument"]
