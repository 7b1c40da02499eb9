"""Database spans: asyncpg (see ``_asyncpg``), DB-API drivers, and bots' own database layers.

* ``instrument(settings)`` turns on the contrib asyncpg instrumentor (``Settings.trace_db``) and,
  with ``Settings.trace_dbapi``, the contrib sqlite3 and psycopg2 instrumentations when installed.
  All of them get otel_bot's :class:`~otel_bot._dbspan.DbTracerProvider`, so their spans share the
  stable attributes, the ``{operation} {table}`` names and the slow / repeated query checks.
* :func:`trace_db_adapter` traces the methods of any object a bot wraps its database in.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from . import _asyncpg, _state
from . import _attributes as A
from ._dbspan import QuerySpan, db_enabled, set_returned_rows
from ._patching import Patch

logger = logging.getLogger("otel_bot")

PATCHES: tuple[Patch, ...] = _asyncpg.PATCHES

DEFAULT_ADAPTER_METHODS: tuple[str, ...] = (
    "execute",
    "executemany",
    "executescript",
    "fetch",
    "fetch_one",
    "fetch_all",
    "fetch_val",
    "fetchrow",
    "fetchval",
    "fetchone",
    "fetchall",
    "query",
)
DBAPI_PIP_HINT = 'pip install "otel-bot[dbapi]"'

_T = TypeVar("_T")
_ADAPTED = "__otel_bot_adapted__"
_SQL_KEYWORDS = ("sql", "query", "statement", "operation")
_PARAM_KEYWORDS = ("params", "parameters", "args", "values")

# (driver module, contrib module, instrumentor class) for the DB-API switch
_DBAPI_INSTRUMENTATIONS: tuple[tuple[str, str, str], ...] = (
    ("sqlite3", "opentelemetry.instrumentation.sqlite3", "SQLite3Instrumentor"),
    ("psycopg2", "opentelemetry.instrumentation.psycopg2", "Psycopg2Instrumentor"),
)
_dbapi_on: list[Any] = []


def instrument(settings: Any) -> None:
    """Called by ``instrument_bot``: contrib asyncpg (``trace_db``) and DB-API (``trace_dbapi``)."""
    _asyncpg.instrument(settings)
    if settings.trace_db and settings.trace_dbapi:
        _instrument_dbapi(settings)


def uninstrument() -> None:
    """Called by ``uninstrument_bot``: turn off what :func:`instrument` turned on."""
    _asyncpg.uninstrument()
    while _dbapi_on:
        instrumentor = _dbapi_on.pop()
        instrumentor.uninstrument()


def _instrument_dbapi(settings: Any) -> None:
    from ._dbspan import DbTracerProvider

    missing: list[str] = []
    for driver, contrib, cls_name in _DBAPI_INSTRUMENTATIONS:
        try:
            __import__(driver)
        except ImportError:
            continue  # the bot does not use this driver
        try:
            module = __import__(contrib, fromlist=[cls_name])
        except ImportError:
            missing.append(contrib.rsplit(".", 1)[-1])
            continue
        instrumentor = getattr(module, cls_name)()
        if instrumentor.is_instrumented_by_opentelemetry:
            continue  # instrumented elsewhere (zero-code); leave it alone
        instrumentor.instrument(tracer_provider=DbTracerProvider(settings.tracer_provider), skip_dep_check=True)
        _dbapi_on.append(instrumentor)
    if missing:
        logger.warning(
            "otel_bot: trace_dbapi is on but the instrumentation for %s is not installed. Install it with: %s",
            ", ".join(missing),
            DBAPI_PIP_HINT,
        )


# --- bots' own database layers ----------------------------------------------------------------------


def trace_db_adapter(
    obj: _T,
    methods: Iterable[str] | None = None,
    *,
    system: str = "other_sql",
    namespace: str | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
) -> _T:
    """Trace the SQL-running methods of a bot's own database object as DB client spans.

    ``obj`` is an instance (only that instance is changed) or a class (every instance). Each named
    method, sync or async, becomes a span named ``{operation} {table}`` from its SQL argument (the
    first positional argument, or ``sql=`` / ``query=``), with the stable database attributes,
    ``db.system.name=system``, the slow / repeated query checks and, when it returns a list,
    ``db.response.returned_rows``. Parameters (the argument after the SQL, or ``params=``) are
    recorded only with ``capture_db_parameters``. ``methods`` defaults to the usual names
    (``execute``, ``fetch_one``, ``fetch_all``, ...) that ``obj`` has; a name given explicitly must
    exist. Wrapping twice is a no-op; :func:`untrace_db_adapter` undoes it. Returns ``obj``.

    Calls made inside a traced method (a ``fetch_all`` that calls ``execute``, or the asyncpg /
    DB-API spans of the driver underneath) add no spans of their own: one span per adapter call.
    """
    explicit = methods is not None
    names = tuple(methods) if methods is not None else DEFAULT_ADAPTER_METHODS
    is_class = isinstance(obj, type)
    base: dict[str, Any] = {A.DB_SYSTEM_NAME: system}
    if namespace:
        base[A.DB_NAMESPACE] = namespace
    if server_address:
        base[A.SERVER_ADDRESS] = server_address
    if server_port is not None:
        base[A.SERVER_PORT] = int(server_port)
    adapted: dict[str, Any] = dict(_adapted_of(obj))
    for name in names:
        if name in adapted:
            continue
        if not hasattr(obj, name):
            if explicit:
                raise AttributeError(f"trace_db_adapter: {obj!r} has no method {name!r}")
            continue
        raw = inspect.getattr_static(obj, name)
        if isinstance(raw, (staticmethod, classmethod)):
            raise TypeError(f"trace_db_adapter: {name!r} is a {type(raw).__name__}; wrap an instance method")
        original = getattr(obj, name)
        if not callable(original):
            if explicit:
                raise TypeError(f"trace_db_adapter: {name!r} on {obj!r} is not callable")
            continue
        func = raw if is_class else original
        own = is_class or name in getattr(obj, "__dict__", {})
        setattr(obj, name, _adapter_wrapper(func, base, skip_self=is_class))
        adapted[name] = raw if own else None
    try:
        setattr(obj, _ADAPTED, adapted)
    except AttributeError as exc:  # __slots__ without room for our marker
        raise TypeError(f"trace_db_adapter: cannot annotate {obj!r} (it has __slots__)") from exc
    return obj


def untrace_db_adapter(obj: Any) -> None:
    """Undo :func:`trace_db_adapter` on ``obj``, restoring the original methods."""
    adapted = _adapted_of(obj)
    for name, original in adapted.items():
        if original is None:
            try:
                delattr(obj, name)  # it came from the class: drop the instance attribute
            except AttributeError:
                pass
        else:
            setattr(obj, name, original)
    if _ADAPTED in getattr(obj, "__dict__", {}):
        delattr(obj, _ADAPTED)


def _adapted_of(obj: Any) -> Mapping[str, Any]:
    found = getattr(obj, "__dict__", {}).get(_ADAPTED)
    return found if isinstance(found, dict) else {}


def _sql_and_params(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[str | None, Any]:
    sql: Any = args[0] if args else None
    rest = args[1:]
    if sql is None:
        for key in _SQL_KEYWORDS:
            if key in kwargs:
                sql = kwargs[key]
                break
    params: Any = None
    if rest:
        params = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple, Mapping)) else rest
    else:
        for key in _PARAM_KEYWORDS:
            if key in kwargs:
                params = kwargs[key]
                break
    if isinstance(sql, bytes):
        sql = sql.decode("utf-8", "replace")
    return (sql if isinstance(sql, str) else None), params


def _adapter_wrapper(func: Callable[..., Any], base: dict[str, Any], *, skip_self: bool) -> Callable[..., Any]:
    system = str(base[A.DB_SYSTEM_NAME])

    def span_for(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> QuerySpan:
        sql, params = _sql_and_params(args[1:] if skip_self else args, kwargs)
        attrs = dict(base)
        if sql is not None:
            attrs[A.DB_QUERY_TEXT] = sql
        return QuerySpan(_state.get_tracer(), system, attrs, params=params)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if not db_enabled():
                return await func(*args, **kwargs)
            with span_for(args, kwargs) as span:
                result = await func(*args, **kwargs)
                set_returned_rows(span, result)
                return result

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not db_enabled():
            return func(*args, **kwargs)
        with span_for(args, kwargs) as span:
            result = func(*args, **kwargs)
            set_returned_rows(span, result)
            return result

    return wrapper


__all__ = [
    "DEFAULT_ADAPTER_METHODS",
    "PATCHES",
    "instrument",
    "trace_db_adapter",
    "uninstrument",
    "untrace_db_adapter",
]
