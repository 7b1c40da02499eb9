"""The one place a database span is built: stable attributes, name, errors, slow and repeated queries.

Every DB span otel_bot produces or reshapes goes through :class:`QuerySpan`: the contrib asyncpg and
DB-API instrumentations (through :class:`DbTracerProvider`, the tracer provider handed to them),
otel_bot's own asyncpg additions, and :func:`otel_bot.trace_db_adapter`. So they all carry the same
stable database semantic conventions (``db.system.name``, ``db.query.text``, ``db.operation.name``,
``db.collection.name``, ``db.namespace``, ``server.address``, ``server.port``, and on failure
``db.response.status_code`` and ``error.type``), the name ``{operation} {table}``, and the slow and
repeated query checks.

Repeated queries (the N+1 pattern): every statement a unit of work runs is counted in
``WorkUnit.query_counts`` (whitespace-normalised text). When one statement reaches
``Settings.repeated_query_threshold`` runs, the unit's root span gets ONE ``db.repeated_query`` event
naming the statement, with ``bot.db.repeat_count`` = the threshold, at the moment it is crossed (so it
shows even if the root never ends cleanly, and its timestamp marks where the loop became visible).
Each later run of that statement carries its running count in ``bot.db.repeat_count`` on its own
span, so the last one holds the trace's total. Transaction control and session statements
(``BEGIN``, ``COMMIT``, ``SAVEPOINT``, ``SET``, ``PRAGMA``...) are not counted.

A statement a driver runs inside another DB span (``copy_from_query`` quoting its arguments, an
adapter method calling another traced method, a traced adapter around asyncpg) makes no span of its
own: one span per database call the bot made.
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import Attributes, AttributeValue

from . import _attributes as A
from . import _privacy, _state
from ._guard import guard

#: Set while a driver runs housekeeping SQL (asyncpg's reset query on release): no span at all.
quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("otel_bot_db_quiet", default=False)
#: Set inside a DB span: the driver's own nested statements (``copy_from_query`` quoting its
#: arguments, an adapter method calling another) add no spans of their own.
_in_query: contextvars.ContextVar[bool] = contextvars.ContextVar("otel_bot_db_in_query", default=False)

_MAX_QUERY_TEXT = 4096
#: The schema of the stable database conventions DbTracer writes (what contrib announces in its
#: ``database`` opt-in mode: ``opentelemetry.semconv.schemas.Schemas.V1_25_0``).
DB_SCHEMA_URL = "https://opentelemetry.io/schemas/1.25.0"

# --- SQL summary ---------------------------------------------------------------------------------

_LEADING_NOISE = re.compile(r"^(?:\s+|/\*.*?\*/|--[^\n]*(?:\n|$))+", re.S)
_IDENT = r'((?:"[^"]+"|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:"[^"]+"|[A-Za-z_][\w$]*))*)'
_FROM = re.compile(r"\bFROM\s+(?:ONLY\s+)?" + _IDENT, re.I)
_INTO = re.compile(r"\bINTO\s+" + _IDENT, re.I)
_UPDATE = re.compile(r"^UPDATE\s+(?:ONLY\s+)?" + _IDENT, re.I)
_DDL = re.compile(r"\bTABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:ONLY\s+)?" + _IDENT, re.I)
_TRUNCATE = re.compile(r"^TRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?" + _IDENT, re.I)
_COPY = re.compile(r"^COPY\s+" + _IDENT, re.I)
_CTE_MAIN = re.compile(r"\)\s*(SELECT|INSERT|UPDATE|DELETE|MERGE)\b", re.I)
_KEYWORDS = frozenset(
    "SELECT FROM WHERE VALUES SET ONLY LATERAL UNNEST GENERATE_SERIES JOIN AS ON".lower().split()
)

_TABLE_PATTERNS: dict[str, re.Pattern[str]] = {
    "SELECT": _FROM,
    "DELETE": _FROM,
    "INSERT": _INTO,
    "MERGE": _INTO,
    "UPDATE": _UPDATE,
    "CREATE": _DDL,
    "DROP": _DDL,
    "ALTER": _DDL,
    "TRUNCATE": _TRUNCATE,
    "COPY": _COPY,
}


@lru_cache(maxsize=1024)
def summarize(query: str) -> tuple[str, str | None, str]:
    """``(operation, table or None, normalised text)`` of one SQL statement; cached per text."""
    text = _LEADING_NOISE.sub("", query[:_MAX_QUERY_TEXT])
    normalised = " ".join(text.split())
    if not normalised:
        return "", None, normalised
    first = normalised.split(None, 1)[0].rstrip(";(").upper()
    operation, body = first, normalised
    if first == "WITH":
        matches = list(_CTE_MAIN.finditer(normalised))
        if matches:
            last = matches[-1]
            operation, body = last.group(1).upper(), normalised[last.start(1) :]
    pattern = _TABLE_PATTERNS.get(operation)
    table: str | None = None
    if pattern is not None:
        match = pattern.search(body)
        if match:
            candidate = re.sub(r"\s*\.\s*", ".", match.group(1)).replace('"', "")
            if candidate.lower() not in _KEYWORDS:
                table = candidate
    return operation, table, normalised


def span_name(operation: str, table: str | None, fallback: str, prefix: str = "") -> str:
    """``{prefix} {operation} {table}``, low-cardinality; ``fallback`` when the SQL says nothing."""
    core = f"{operation} {table}" if operation and table else (operation or fallback)
    return f"{prefix} {core}" if prefix else core


# --- attribute normalisation -------------------------------------------------------------------

_RENAMED: dict[str, str] = {
    A.DB_LEGACY_SYSTEM: A.DB_SYSTEM_NAME,
    A.DB_LEGACY_NAME: A.DB_NAMESPACE,
    A.DB_LEGACY_STATEMENT: A.DB_QUERY_TEXT,
    A.NET_LEGACY_PEER_NAME: A.SERVER_ADDRESS,
    A.NET_LEGACY_PEER_PORT: A.SERVER_PORT,
}
_DROPPED = frozenset({A.DB_LEGACY_USER, A.DB_LEGACY_PARAMETERS, A.NET_LEGACY_TRANSPORT})
_LEGACY_TRANSPORTS = {"ip_tcp": "tcp", "ip_udp": "udp", "pipe": "pipe", "unix": "unix"}


def translate(key: str, value: Any) -> tuple[str, Any] | None:
    """One attribute as the stable conventions spell it, or ``None`` to drop it."""
    if key in _DROPPED:
        if key == A.NET_LEGACY_TRANSPORT and value in _LEGACY_TRANSPORTS:
            return A.NETWORK_TRANSPORT, _LEGACY_TRANSPORTS[value]
        return None
    key = _RENAMED.get(key, key)
    if key == A.SERVER_PORT and isinstance(value, str) and value.isdigit():
        value = int(value)
    elif key == A.DB_QUERY_TEXT and isinstance(value, str) and len(value) > _MAX_QUERY_TEXT:
        value = value[:_MAX_QUERY_TEXT]
    return key, value


def normalise(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Translate a whole attribute mapping; a stable key already present wins over a legacy one.

    A server address that is a filesystem path is a Unix socket: ``network.transport=unix``
    (contrib writes ``other`` in its legacy mode and ``pipe`` in its stable one)."""
    out: dict[str, Any] = {}
    if not attributes:
        return out
    for key, value in attributes.items():
        pair = translate(key, value)
        if pair is None:
            continue
        new_key, new_value = pair
        if new_key != key and new_key in attributes:
            continue
        out[new_key] = new_value
    address = out.get(A.SERVER_ADDRESS)
    if isinstance(address, str) and address.startswith("/") and out.get(A.NETWORK_TRANSPORT) in (None, "pipe"):
        out[A.NETWORK_TRANSPORT] = "unix"
    return out


def parameter_attributes(params: Any, limit: int) -> dict[str, str]:
    """``db.query.parameter.<index or name>`` for opted-in parameter capture."""
    out: dict[str, str] = {}
    if params is None:
        return out
    if isinstance(params, Mapping):
        items: Any = params.items()
    elif isinstance(params, (list, tuple)):
        items = enumerate(params)
    else:
        return out
    for key, value in items:
        text = value if isinstance(value, str) else repr(value)
        out[f"{A.DB_QUERY_PARAMETER_PREFIX}{key}"] = text[:limit]
    return out


def error_status_code(exc: BaseException) -> str | None:
    """The database's own error code: SQLSTATE (asyncpg, psycopg2) or SQLite's error name."""
    for attr in ("sqlstate", "pgcode", "sqlite_errorname"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


# --- repeated queries ----------------------------------------------------------------------------

_count_lock = threading.Lock()


#: Statements that repeat by nature (transaction control, session settings): never an N+1.
_NOT_COUNTED = frozenset(
    {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "RESET", "SHOW",
     "PRAGMA", "DISCARD", "LISTEN", "UNLISTEN", "NOTIFY"}
)


def _count_repeat(normalised: str, span: Span, settings: Any) -> None:
    threshold = settings.repeated_query_threshold
    if threshold <= 0 or not normalised:
        return
    operation = summarize(normalised)[0]
    if operation in _NOT_COUNTED:
        return
    unit = _state.get_unit()
    if unit is None:
        return
    with _count_lock:
        count = unit.query_counts[normalised] + 1
        unit.query_counts[normalised] = count
        first_report = count >= threshold and normalised not in unit.reported_queries
        if first_report:
            unit.reported_queries.add(normalised)
    if count < threshold:
        return
    if span.is_recording():
        span.set_attribute(A.BOT_DB_REPEAT_COUNT, count)
    if first_report and unit.span.is_recording():
        operation, table, _ = summarize(normalised)
        event: dict[str, AttributeValue] = {
            A.DB_QUERY_TEXT: normalised,
            A.BOT_DB_REPEAT_COUNT: count,
            A.DB_OPERATION_NAME: operation,
        }
        if table:
            event[A.DB_COLLECTION_NAME] = table
        unit.span.add_event(A.EVENT_REPEATED_QUERY, event)


# --- the span ------------------------------------------------------------------------------------


class DbSpan(Span):
    """The span handed to a DB instrumentation: translates legacy keys as they are set and names
    the span from the query text once it is known (DB-API sets it after the span starts)."""

    def __init__(self, span: Span, owner: QuerySpan) -> None:
        self._span = span
        self._owner = owner

    # -- what DB instrumentations call
    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pair = translate(key, value)
        if pair is None:
            return
        key, value = pair
        if key == A.DB_QUERY_TEXT and isinstance(value, str) and not self._owner.named:
            self._owner.on_query(value)
            return
        self._span.set_attribute(key, value)

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        for key, value in normalise(attributes).items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        self._span.add_event(name, attributes, timestamp)

    def add_link(self, context: trace.SpanContext, attributes: Attributes = None) -> None:
        self._span.add_link(context, attributes)

    def update_name(self, name: str) -> None:
        # The instrumentations' own names ("SELECT", "CURSOR: SELECT") lose to ours.
        if not self._owner.named:
            self._span.update_name(name)

    def is_recording(self) -> bool:
        return self._span.is_recording()

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self._span.set_status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        # QuerySpan records the exception once, on the way out.
        pass

    def get_span_context(self) -> trace.SpanContext:
        return self._span.get_span_context()

    def end(self, end_time: int | None = None) -> None:
        # QuerySpan ends the span after its own checks.
        pass

    @property
    def inner(self) -> Span:
        return self._span


class QuerySpan:
    """Context manager around one database call; yields the span (a :class:`DbSpan`).

    ``prefix`` goes before the ``{operation} {table}`` name (``CURSOR``, ``PREPARE``);
    ``params`` are captured only when ``Settings.capture_db_parameters`` is on.
    """

    __slots__ = ("_attrs", "_kind", "_name", "_nested", "_prefix", "_settings", "_span", "_t0",
                 "_token", "_tracer", "named", "params")

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        attributes: Mapping[str, Any] | None,
        *,
        kind: SpanKind = SpanKind.CLIENT,
        prefix: str = "",
        params: Any = None,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._attrs = attributes
        self._kind = kind
        self._prefix = prefix
        self.params = params
        self.named = False
        self._span: Span | None = None
        self._token: object = None
        self._nested: object = None
        self._t0 = 0.0

    def on_query(self, query: str) -> None:
        """The query text became known: stable attributes, name, repeat count."""
        span = self._span
        if span is None:
            return
        operation, table, normalised = summarize(query)
        span.set_attribute(A.DB_QUERY_TEXT, query)
        if operation:
            span.set_attribute(A.DB_OPERATION_NAME, operation)
        if table:
            span.set_attribute(A.DB_COLLECTION_NAME, table)
        span.update_name(span_name(operation, table, self._name, self._prefix))
        self.named = True
        _count_repeat(normalised, span, self._settings)

    def __enter__(self) -> Span:
        if quiet.get() or _in_query.get():
            return INVALID_SPAN
        settings = self._settings = _state.settings_or_default()
        span: Span | None = None
        normalised = ""
        # Guarded: a provider, sampler or span processor that raises (or our own name and
        # attribute work failing) must not fail the user's query: it then runs untraced.
        with guard("db.start"):
            attrs = normalise(self._attrs)
            name = self._name
            query = attrs.get(A.DB_QUERY_TEXT)
            if isinstance(query, str):
                operation, table, normalised = summarize(query)
                if operation:
                    attrs[A.DB_OPERATION_NAME] = operation
                if table:
                    attrs[A.DB_COLLECTION_NAME] = table
                name = span_name(operation, table, name, self._prefix)
                self.named = True
            elif self._prefix:
                name = f"{self._prefix} {name}"
            if settings.capture_db_parameters and self.params is not None:
                with guard("db.parameters"):
                    attrs.update(parameter_attributes(self.params, settings.max_attribute_length))
            span = self._tracer.start_span(name, kind=self._kind, attributes=attrs)
        if span is None:
            return INVALID_SPAN
        self._span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))
        self._nested = _in_query.set(True)
        self._t0 = time.perf_counter()
        if normalised:
            with guard("db.repeated_query"):
                _count_repeat(normalised, span, settings)
        return DbSpan(span, self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        if span is None:
            return
        elapsed_ms = (time.perf_counter() - self._t0) * 1000.0
        _in_query.reset(self._nested)  # type: ignore[arg-type]
        otel_context.detach(self._token)  # type: ignore[arg-type]
        try:
            if span.is_recording():
                with guard("db.span_end"):
                    self._finish(span, exc, elapsed_ms)
        finally:
            with guard("db.span_end"):
                span.end()

    def _finish(self, span: Span, exc: BaseException | None, elapsed_ms: float) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, (StopAsyncIteration, StopIteration)):
            code = error_status_code(exc)
            if code:
                span.set_attribute(A.DB_RESPONSE_STATUS_CODE, code)
            span.set_attribute(A.ERROR_TYPE, _privacy.error_type(exc))
            _privacy.record_error(span, exc)  # redacted message / stack, ERROR status
        threshold = self._settings.slow_query_ms
        if threshold > 0 and elapsed_ms >= threshold:
            span.set_attribute(A.BOT_DB_SLOW, True)
            span.set_attribute(A.BOT_DB_SLOW_THRESHOLD_MS, float(threshold))
            span.add_event(
                A.EVENT_SLOW_QUERY,
                {A.BOT_DB_DURATION_MS: elapsed_ms, A.BOT_DB_SLOW_THRESHOLD_MS: float(threshold)},
            )


def set_returned_rows(span: Span, result: Any) -> None:
    """``db.response.returned_rows`` when the driver handed back a list of rows."""
    if isinstance(result, (list, tuple)) and span.is_recording():
        span.set_attribute(A.DB_RESPONSE_RETURNED_ROWS, len(result))


# --- the tracer handed to the contrib instrumentations ----------------------------------------------


class DbTracer(Tracer):
    """Wraps the real tracer so contrib DB spans go through :class:`QuerySpan`."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        span: Span = INVALID_SPAN
        with guard("db.start"):  # a failing provider/sampler/processor: the query runs untraced
            span = self._tracer.start_span(
                name, context, kind, normalise(attributes), links, start_time, record_exception,
                set_status_on_exception,
            )
        return span

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> QuerySpan:
        prefix = ""
        if name.startswith("CURSOR:"):  # contrib asyncpg's cursor spans
            prefix, name = "CURSOR", name[len("CURSOR:") :].strip()
        return QuerySpan(self._tracer, name, attributes, kind=kind, prefix=prefix)


class DbTracerProvider:
    """The tracer provider otel_bot hands to contrib DB instrumentations (keeps their scope)."""

    def __init__(self, provider: Any) -> None:
        self._provider = provider

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Tracer:
        provider = self._provider if self._provider is not None else trace.get_tracer_provider()
        # DbTracer writes the stable database conventions whatever contrib's mode: say so.
        return DbTracer(
            trace.get_tracer(
                instrumenting_module_name, instrumenting_library_version, provider, DB_SCHEMA_URL, attributes
            )
        )
