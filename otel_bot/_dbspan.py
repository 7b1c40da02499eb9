"""The one place a database span is built: stable attributes, name, errors, slow and repeated queries.

Every DB span otel_bot produces or reshapes goes through :class:`QuerySpan`: the contrib asyncpg and
DB-API instrumentations (through :class:`DbTracerProvider`, the tracer provider handed to them),
otel_bot's own asyncpg additions, and :func:`otel_bot.trace_db_adapter`. So they all carry the same
stable database semantic conventions (``db.system.name``, ``db.query.text``, ``db.operation.name``,
``db.collection.name``, ``db.namespace``, ``server.address``, ``server.port``, and on failure
``db.response.status_code`` and ``error.type``), the name ``{operation} {table}``, and the slow and
repeated query checks.

Query literals (the database conventions: capture ``db.query.text`` by default only sanitised):
:func:`sanitize_sql` replaces every literal value with ``?`` and drops comments, so a bot that builds
SQL with f-strings puts no message content, names or option values into spans; placeholders
(``$1``, ``?``, ``%s``) stay, so a parameterised query keeps its exact text. The error message a DB
span records has the values it quotes scrubbed (:func:`scrub_db_message`; SQLSTATE and error type
kept). ``Settings.capture_db_query_literals=True`` records both raw.

Repeated queries (the N+1 pattern): every statement a unit of work runs is counted in
``WorkUnit.query_counts`` (whitespace-normalised *sanitised* text, so an f-string loop
``WHERE id = {i}`` is one statement, whatever ``capture_db_query_literals`` says). When one statement reaches
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
from collections.abc import Callable, Mapping, Sequence
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

def db_enabled() -> bool:
    """Whether DB spans are wanted right now: not suppressed, and ``Settings.trace_db`` (on when
    otel_bot is not instrumented). The first check of every otel_bot DB wrapper."""
    if _state.is_suppressed():
        return False
    settings = _state.settings()
    return settings is None or settings.trace_db


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


# --- SQL literal sanitiser --------------------------------------------------------------------------
#
# What goes: every literal value (string constants '...' with '' escapes, E'...' with backslash
# escapes, B'...'/X'...' bit and hex strings, N'...' and U&'...', dollar-quoted $tag$...$tag$ bodies,
# numbers: 42, -5, 1.5, .5, 1e10, 0x1F, 1_000) becomes ``?``; comments are dropped (``--`` to the end
# of the line, ``/* */`` nested as PostgreSQL nests them): they can hold data, and drivers append
# per-call comments (sqlcommenter's ``traceparent``) that would make each call a different statement.
# What stays: keywords (``TRUE``, ``FALSE``, ``NULL`` are keywords, not data), identifiers (``t1``,
# ``col2``, ``"Quoted 1"``), placeholders (``$1``, ``?``, ``?1``, ``:1``, ``%s``, ``%(name)s``),
# operators and whitespace. An unterminated literal or comment takes the rest of the text with it.

#: Where a token can start; a literal's letter prefix (``E``, ``B``, ``X``, ``N``, ``U&``) is
#: looked at from its quote, so the scan skips words at C speed.
_SQL_CANDIDATE = re.compile(r"""[-"/'$?:.\d]""")
_SQL_TOKEN = re.compile(
    r"""
     (?P<qident>"[^"]*(?:""[^"]*)*"?)
    |(?P<lcomment>--[^\n]*)
    |(?P<bcomment>/\*)
    |(?P<str>'[^']*(?:''[^']*)*'?)
    |(?P<dollar>(?<![\w$])\$(?:[^\W\d]\w*)?\$)
    |(?P<param>\$\d+|\?\d*|(?<![\w:\])]):\d+)
    |(?P<num>(?:-\s*)?(?<![\w$.])
        (?:0[xX][0-9A-Fa-f_]+|0[bB][01_]+|0[oO][0-7_]+
          |(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
    """,
    re.X,
)
#: The body of an ``E'...'`` string: backslash escapes as well as ``''``.
_ESCAPE_STRING = re.compile(r"'[^'\\]*(?:(?:\\.|'')[^'\\]*)*'?", re.S)
_STRING_PREFIXES = frozenset("EeBbXxNn")
#: Before a ``-``: these make it a binary minus (``a - 1``), unless the word is a keyword.
_OPERAND_END = re.compile(r"[\w)\]\"'?$]")
_UNARY_AFTER_WORDS = frozenset(
    "select where and or not then else when return returning limit offset by in is between values "
    "like ilike any all some case set on having distinct as".split()
)
_LAST_WORD = re.compile(r"(\w+)\s*$")


def _unary_minus(query: str, start: int) -> bool:
    """Whether the ``-`` at ``query[start]`` is a sign (``= -5``, ``(-1``, ``SELECT -1``)."""
    before = query[max(0, start - 64) : start].rstrip()
    if not before or not _OPERAND_END.match(before[-1]):
        return True
    word = _LAST_WORD.search(before[-24:])
    return word is not None and word.group(1).lower() in _UNARY_AFTER_WORDS


def _block_comment_end(query: str, pos: int) -> int:
    """Index after the ``*/`` closing the (nested) comment opened just before ``pos``."""
    depth, n = 1, len(query)
    while depth:
        close = query.find("*/", pos)
        if close < 0:
            return n
        opened = query.find("/*", pos, close)
        if opened >= 0:
            depth, pos = depth + 1, opened + 2
        else:
            depth, pos = depth - 1, close + 2
    return pos


def _string_prefix(query: str, quote: int) -> int:
    """How many characters before the quote at ``quote`` are a literal prefix (``E``, ``U&``...)."""
    if quote >= 1 and query[quote - 1] in _STRING_PREFIXES:
        size = 1
    elif quote >= 2 and query[quote - 1] == "&" and query[quote - 2] in "Uu":
        size = 2
    else:
        return 0
    head = quote - size
    if head and (query[head - 1].isalnum() or query[head - 1] in "_$"):
        return 0  # the end of a word (WHERE'x'), not a prefix
    return size


def _sanitize(query: str) -> str:
    out: list[str] = []
    pos = scan = 0  # query[pos:] is not yet copied; the next token starts at or after scan
    n = len(query)
    candidate = _SQL_CANDIDATE.search
    token = _SQL_TOKEN.match
    while True:
        found = candidate(query, scan)
        if found is None:
            break
        start = found.start()
        match = token(query, start)
        if match is None:
            scan = start + 1
            continue
        kind = match.lastgroup
        end = match.end()
        if kind == "qident" or kind == "param":
            scan = end
            continue
        if kind == "str":
            prefix = _string_prefix(query, start)
            if prefix == 1 and query[start - 1] in "Ee":
                escaped = _ESCAPE_STRING.match(query, start)
                if escaped is not None:  # always: the pattern matches any text after a quote
                    end = escaped.end()
            start -= prefix
        out.append(query[pos:start])
        if kind == "lcomment" or kind == "bcomment":
            if kind == "bcomment":
                end = _block_comment_end(query, end)
            # a comment separates tokens: one space where it had no whitespace around it
            before = query[start - 1] if start else " "
            after = query[end] if end < n else " "
            if not before.isspace() and not after.isspace():
                out.append(" ")
        elif kind == "dollar":
            tag = match.group()
            close = query.find(tag, end)
            end = n if close < 0 else close + len(tag)
            out.append("?")
        elif kind == "num" and query[start] == "-" and not _unary_minus(query, start):
            text = match.group()
            out.append(text[: len(text) - len(text[1:].lstrip())] + "?")  # "- ?": a binary minus
        else:
            out.append("?")
        pos = scan = end
    if not out:
        return query
    out.append(query[pos:])
    return "".join(out).strip()


_sanitize_cached = lru_cache(maxsize=512)(_sanitize)


def sanitize_sql(query: str) -> str:
    """``query`` with every literal value replaced by ``?`` and comments dropped; the text itself
    when it holds neither (a parameterised query). Cut to the first 4096 characters (all a span
    carries); cached per text (LRU, 512 statements: a bot repeats the same ones)."""
    if len(query) > _MAX_QUERY_TEXT:
        query = query[:_MAX_QUERY_TEXT]
    return _sanitize_cached(query)


def query_text(query: str, settings: Any) -> str:
    """What ``db.query.text`` carries: the sanitised text unless
    ``Settings.capture_db_query_literals`` is on."""
    if getattr(settings, "capture_db_query_literals", False):
        return query
    return sanitize_sql(query)


# --- database error messages ------------------------------------------------------------------------

#: A double-quoted name after one of these words names a schema object: kept (``relation "t"``).
_OBJECT_WORDS = (
    "relation|table|column|constraint|index|type|function|procedure|aggregate|operator|schema|"
    "sequence|view|database|role|extension|trigger|domain|parameter|savepoint|cursor|statement|"
    "portal|collation|tablespace|policy|rule|publication|subscription|server|attribute|enum"
)
_MESSAGE_SCRUB = re.compile(
    r"""(?P<line>^(?P<line_head>\s*LINE\s+\d+:\s?)(?P<line_sql>[^\n]*))
    |(?P<key>(?P<key_head>\bKey\s+\([^\n]*?\)=\()[^\n]*\))
    |(?P<row>(?P<row_head>\bFailing\ row\ contains\s+\()[^\n]*\))
    |(?P<obj>\b(?:"""
    + _OBJECT_WORDS
    + r""")\s+"[^"\n]*")
    |(?P<dq>"[^"\n]*")
    |(?P<sq>'[^'\n]*')
    """,
    re.X | re.M | re.I,
)


def _scrub_one(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "line_sql" or kind == "line":
        return match.group("line_head") + sanitize_sql(match.group("line_sql"))
    if kind == "key":
        return match.group("key_head") + "?)"
    if kind == "row":
        return match.group("row_head") + "?)"
    if kind == "obj":
        return match.group()
    return '"?"' if kind == "dq" else "'?'"


@lru_cache(maxsize=128)
def scrub_db_message(message: str) -> str:
    """A database error message with the values it quotes replaced by ``?``.

    PostgreSQL quotes input values (``invalid input syntax for type integer: "abc"``,
    ``syntax error at or near "Brien"``, ``DETAIL:  Key (id)=(5) already exists.``, ``Failing row
    contains (...)``) and psycopg2 echoes the statement (``LINE 1: ...``). Names of schema objects
    (``relation "t"``, ``column "n"``, ``constraint "t_pkey"``) stay, so the message still says what
    failed."""
    return _MESSAGE_SCRUB.sub(_scrub_one, message)


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


def error_scrubber(exc: BaseException, settings: Any = None) -> Callable[[str], str] | None:
    """What to pass as ``record_error(..., scrub=)`` for ``exc``: :func:`scrub_db_message` when it
    is a database error (it has a SQLSTATE or SQLite error name) and literals are not captured,
    else ``None``. For spans other than the DB span that record the same exception (a root whose
    command let an asyncpg error escape, an executor job)."""
    if settings is None:
        settings = _state.settings_or_default()
    if getattr(settings, "capture_db_query_literals", False) or error_status_code(exc) is None:
        return None
    return scrub_db_message


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


def _count_repeat(normalised: str, span: Span, settings: Any, text: str | None = None) -> None:
    """Count one run of the statement ``normalised`` (the whitespace-normalised *sanitised*
    text, so ``WHERE id = 1`` and ``WHERE id = 2`` are one statement); ``text`` is what the
    ``db.repeated_query`` event shows (the raw statement when literals are captured)."""
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
            A.DB_QUERY_TEXT: text or normalised,
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
        if key == A.DB_QUERY_TEXT and isinstance(value, str):
            if not self._owner.named:
                self._owner.on_query(value)
                return
            value = query_text(value, self._owner.settings)
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

    @property
    def settings(self) -> Any:
        """The settings this call runs under (known once the span started)."""
        return self._settings

    def on_query(self, query: str) -> None:
        """The query text became known: stable attributes, name, repeat count."""
        span = self._span
        if span is None:
            return
        settings = self._settings
        attrs, name, normalised, shown = self._describe(query, settings)
        span.set_attributes(attrs)
        span.update_name(name)
        self.named = True
        _count_repeat(normalised, span, settings, shown)

    def _describe(self, query: str, settings: Any) -> tuple[dict[str, Any], str, str, str | None]:
        """``(attributes, span name, normalised sanitised text, what a db.repeated_query event
        shows when not that text)`` for the query text ``query``."""
        sanitized = sanitize_sql(query)
        operation, table, normalised = summarize(sanitized)
        raw = settings.capture_db_query_literals
        attrs: dict[str, Any] = {A.DB_QUERY_TEXT: query if raw else sanitized}
        if operation:
            attrs[A.DB_OPERATION_NAME] = operation
        if table:
            attrs[A.DB_COLLECTION_NAME] = table
        name = span_name(operation, table, self._name, self._prefix)
        return attrs, name, normalised, (summarize(query)[2] if raw else None)

    def __enter__(self) -> Span:
        if quiet.get() or _in_query.get():
            return INVALID_SPAN
        settings = self._settings = _state.settings_or_default()
        span: Span | None = None
        normalised = ""
        shown: str | None = None  # what a db.repeated_query event shows, when not ``normalised``
        # Guarded: a provider, sampler or span processor that raises (or our own name and
        # attribute work failing) must not fail the user's query: it then runs untraced.
        with guard("db.start"):
            attrs = normalise(self._attrs)
            name = self._name
            query = attrs.get(A.DB_QUERY_TEXT)
            if isinstance(query, str):
                found, name, normalised, shown = self._describe(query, settings)
                attrs.update(found)
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
                _count_repeat(normalised, span, settings, shown)
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
            # redacted message / stack, ERROR status; the values the message quotes scrubbed
            # unless literals are captured (PostgreSQL quotes the input it could not take)
            scrub = None if self._settings.capture_db_query_literals else scrub_db_message
            _privacy.record_error(span, exc, scrub=scrub)  # any DB-span error, SQLSTATE or not
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
            attrs = normalise(attributes)
            query = attrs.get(A.DB_QUERY_TEXT)
            if isinstance(query, str):
                attrs[A.DB_QUERY_TEXT] = query_text(query, _state.settings_or_default())
            span = self._tracer.start_span(
                name, context, kind, attrs, links, start_time, record_exception,
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
