"""The console waterfall: one block per finished trace, printed when its root span ends.

::

    🔴 /queue  3456.0 ms  CRITICAL  ok  ack 120.0 ms  trace 0af7651916cd43dd8448eb211c80319c
    ├─ 📍 guard_checks                                12.0 ms     +1.0 ms  |█                   |
    ├─ 📍 queue_command                             3385.0 ms    +15.0 ms  |████████████████████|
    │  ├─ 💾 SELECT players                          300.0 ms    +20.0 ms  |██                  |
    │  ├─ 🧵 compute_mmr                            2800.0 ms   +400.0 ms  |  █████████████████ |
    │  └─ 🔸 view_built                                        +3000.0 ms  |                 ▲  |
    └─ 🌐 POST /interactions/{interaction_id}/{in…    90.0 ms  +3300.0 ms  |                   █|
       🐢 slowest: compute_mmr 2800.0 ms (81% of 3456.0 ms)
       🚨 /queue took 3456 ms (threshold 500 ms, 591% over)

Header: severity marker, root name, total, severity, status (plus the command outcome, the
acknowledgement time and a missed-deadline flag when the root has them) and the trace id to paste
into Jaeger/Tempo. Tree: every span by start time with duration, start offset from the root and a
bar on the root's timeline; checkpoints/flows, DB, REST and executor spans have their own symbols;
unpaired FlowTracker checkpoints show as marks; failed steps get the error type. Highlights: the
slowest step by its own time, notable events from the other modules (event loop blocked, rate
limits, slow and repeated queries), and one line per threshold breach.

How it behaves:

* Spans are buffered per trace; the block is formatted when the root (a span with no parent, or
  a remote parent) ends and every child this processor saw start has ended. A child still running
  when the root ends gets a short grace (``grace_s``); after it the block prints without it.
  Children arriving after their trace printed are dropped (a bounded memory of printed traces).
* Traces whose root never arrives are evicted after ``orphan_timeout_s`` or when more than
  ``max_traces`` are buffered (oldest first); :meth:`~WaterfallProcessor.shutdown` and
  :meth:`~WaterfallProcessor.force_flush` print what is left, orphans as ``(root not seen)``.
* Output goes through :mod:`logging` (logger ``otel_bot.waterfall``) at a level that follows the
  root's severity: FAST and OK ``INFO``, SLOW ``WARNING``, CRITICAL ``ERROR``; a threshold breach
  or an ERROR status raise it to at least ``WARNING``.
* It never blocks the event loop on I/O: formatting happens in ``on_end`` (string work only), and
  when the processor installs its own console handler (an explicit ``stream``, or a logger with no
  handlers anywhere), that handler is a :class:`logging.handlers.QueueHandler` feeding a
  :class:`logging.handlers.QueueListener` thread that does the writing, and the logger stops
  propagating (no duplicates if logging is configured later). Handlers you configured yourself
  are used as they are (make them non-blocking if they write to slow sinks). The logger's level
  is set to INFO if it was unset, so the blocks are not lost to the root's default WARNING.
* Symbols are emoji by default; clean ASCII when asked (``ascii=True``), when ``NO_COLOR`` is set,
  or when the stream's encoding cannot encode them.
* Nothing here raises into the bot (every hook runs under the guard).
"""

from __future__ import annotations

import logging
import logging.handlers
import math
import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from . import _attributes as A
from . import _sla, _state
from ._guard import guard

__all__ = ["ASCII_SYMBOLS", "EMOJI_SYMBOLS", "Symbols", "WaterfallProcessor", "format_trace"]

LOGGER_NAME = "otel_bot.waterfall"


@dataclass(frozen=True)
class Symbols:
    """The glyphs one waterfall style uses."""

    severity: dict[str, str]
    db: str
    rest: str
    executor: str
    checkpoint: str
    span: str
    event: str
    error: str
    slowest: str
    breach: str
    tee: str
    last: str
    pipe: str
    blank: str
    bar: str
    bar_empty: str
    mark: str
    ellipsis: str
    unknown: str
    notice: str

    def pad(self, symbol: str) -> str:
        width = max(len(s) for s in (self.db, self.rest, self.executor, self.checkpoint, self.span))
        return symbol.ljust(width)


EMOJI_SYMBOLS = Symbols(
    severity={"FAST": "⚡", "OK": "🟢", "SLOW": "🟡", "CRITICAL": "🔴"},
    db="💾",
    rest="🌐",
    executor="🧵",
    checkpoint="📍",
    span="🔹",
    event="🔸",
    error="❌",
    slowest="🐢",
    breach="🚨",
    tee="├─ ",
    last="└─ ",
    pipe="│  ",
    blank="   ",
    bar="█",
    bar_empty=" ",
    mark="▲",
    ellipsis="…",
    unknown="❔",
    notice="🔔",
)

ASCII_SYMBOLS = Symbols(
    severity={"FAST": "[>]", "OK": "[+]", "SLOW": "[*]", "CRITICAL": "[!]"},
    db="[db]",
    rest="[rest]",
    executor="[exec]",
    checkpoint="[cp]",
    span="[-]",
    event="*",
    error="[ERROR]",
    slowest="~",
    breach="!",
    tee="|- ",
    last="`- ",
    pipe="|  ",
    blank="   ",
    bar="#",
    bar_empty=" ",
    mark="^",
    ellipsis="...",
    unknown="[?]",
    notice="!",
)

_PROBE = "".join(
    [*EMOJI_SYMBOLS.severity.values(), EMOJI_SYMBOLS.db, EMOJI_SYMBOLS.rest, EMOJI_SYMBOLS.tee, EMOJI_SYMBOLS.bar]
)

_LEVELS = {"FAST": logging.INFO, "OK": logging.INFO, "SLOW": logging.WARNING, "CRITICAL": logging.ERROR}


def wants_ascii(stream: Any = None) -> bool:
    """True when ``NO_COLOR`` is set or ``stream`` (default ``sys.stderr``) cannot encode emoji."""
    if os.environ.get("NO_COLOR", ""):
        return True
    target = stream if stream is not None else sys.stderr
    encoding = getattr(target, "encoding", None)
    if not encoding:
        return False  # e.g. io.StringIO: text, any character goes
    try:
        _PROBE.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return True
    return False


# --- formatting ---------------------------------------------------------------------------------


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.1f} ms"


def _sid(span: ReadableSpan) -> int:
    return span.context.span_id if span.context is not None else 0


def _kind_symbol(span: ReadableSpan, sym: Symbols) -> str:
    attrs = span.attributes or {}
    if attrs.get(A.BOT_CHECKPOINT) is True or A.BOT_FLOW_NAME in attrs:
        return sym.checkpoint
    if A.DB_SYSTEM_NAME in attrs or A.DB_LEGACY_SYSTEM in attrs:
        return sym.db
    if A.HTTP_REQUEST_METHOD in attrs or A.HTTP_METHOD_LEGACY in attrs:
        return sym.rest
    if A.BOT_EXECUTOR_KIND in attrs:
        return sym.executor
    return sym.span


def _cut(text: str, limit: int, ellipsis: str) -> str:
    return text if len(text) <= limit else text[: max(1, limit - len(ellipsis))] + ellipsis


def _bar(start_ns: int, end_ns: int, origin: int, total: int, width: int, sym: Symbols) -> str:
    if total <= 0:
        return sym.bar * width
    a = (start_ns - origin) / total * width
    b = (end_ns - origin) / total * width
    lo = min(width - 1, max(0, math.floor(a)))
    hi = min(width, max(lo + 1, math.ceil(b)))
    return sym.bar_empty * lo + sym.bar * (hi - lo) + sym.bar_empty * (width - hi)


def _mark(ts: int, origin: int, total: int, width: int, sym: Symbols) -> str:
    col = 0 if total <= 0 else min(width - 1, max(0, math.floor((ts - origin) / total * width)))
    return sym.bar_empty * col + sym.mark + sym.bar_empty * (width - col - 1)


_MAX_NOTICES = 5


def _notices(items: list[ReadableSpan], origin: int, sym: Symbols, name_width: int) -> list[str]:
    """Highlight lines for the events other modules write: event loop blocked, rate limits,
    slow and repeated queries."""
    found: list[tuple[int, str]] = []
    for s in items:
        where = _cut(s.name, name_width, sym.ellipsis)
        for ev in s.events:
            attrs = ev.attributes or {}
            if ev.name == A.EVENT_LOOP_BLOCKED:
                ms = attrs.get(A.BOT_LOOP_BLOCKED_MS)
                fn = attrs.get(A.CODE_FUNCTION_NAME)
                text = "event loop blocked"
                if isinstance(ms, (int, float)):
                    text += f" {float(ms):.1f} ms"
                if isinstance(fn, str) and fn:
                    text += f" by {_cut(fn, name_width, sym.ellipsis)}"
            elif ev.name == A.EVENT_RATE_LIMITED:
                retry = attrs.get(A.DISCORD_RATELIMIT_RETRY_AFTER)
                scope = " (global)" if attrs.get(A.DISCORD_RATELIMIT_GLOBAL) is True else ""
                text = f"rate limited{scope}: {where}"
                if isinstance(retry, (int, float)):
                    text += f", retry after {float(retry):.2f} s"
            elif ev.name == A.EVENT_SLOW_QUERY:
                text = f"slow query: {where}"
                if s.start_time is not None and s.end_time is not None:
                    text += f" {_ms(s.end_time - s.start_time)}"
            elif ev.name == A.EVENT_REPEATED_QUERY:
                count = attrs.get(A.BOT_DB_REPEAT_COUNT)
                what = " ".join(
                    str(v) for v in (attrs.get(A.DB_OPERATION_NAME), attrs.get(A.DB_COLLECTION_NAME)) if v
                )
                text = f"query repeated {count}x: {what or 'same statement'}"
            else:
                continue
            found.append((ev.timestamp, f"{sym.blank}{sym.notice} {text} at +{_ms(ev.timestamp - origin)}"))
    found.sort(key=lambda f: f[0])
    lines = [line for _, line in found[:_MAX_NOTICES]]
    if len(found) > _MAX_NOTICES:
        lines.append(f"{sym.blank}{sym.notice} {sym.ellipsis} {len(found) - _MAX_NOTICES} more")
    return lines


def _self_time(span: ReadableSpan, kids: list[ReadableSpan]) -> int:
    """``span``'s duration minus the union of its children's intervals (clipped to it)."""
    start, end = span.start_time or 0, span.end_time or 0
    covered = 0
    cursor = start
    for k in sorted(kids, key=lambda k: k.start_time or 0):
        a = max(cursor, k.start_time or 0)
        b = min(end, k.end_time or 0)
        if b > a:
            covered += b - a
            cursor = b
    return max(0, end - start - covered)


@dataclass
class _Row:
    left: str
    duration: str
    offset: str
    bar: str
    tail: str = ""


def _severity_of(root: ReadableSpan, total_ns: int) -> str:
    value = (root.attributes or {}).get(A.BOT_FLOW_SEVERITY)
    parsed = _sla.Severity.parse(value)
    if parsed is not None:
        return parsed.value
    return _sla.classify(total_ns / 1e6, _state.settings_or_default().severity_bounds).value


def _breach(span: ReadableSpan) -> str | None:
    attrs = span.attributes or {}
    if attrs.get(A.BOT_FLOW_THRESHOLD_EXCEEDED) is not True:
        return None
    threshold = attrs.get(A.BOT_FLOW_THRESHOLD_MS)
    if not isinstance(threshold, (int, float)) or span.start_time is None or span.end_time is None:
        return None
    return _sla.breach_text(span.name, (span.end_time - span.start_time) / 1e6, float(threshold))


def _status_text(span: ReadableSpan) -> str:
    if span.status.status_code is StatusCode.ERROR:
        desc = span.status.description
        return f"error: {desc}" if desc else "error"
    return "ok"


def format_trace(
    spans: Iterable[ReadableSpan],
    *,
    ascii: bool = False,
    width: int = 20,
    name_width: int = 40,
    max_spans: int = 200,
    dropped: int = 0,
) -> tuple[str, int]:
    """Format one trace's spans as a waterfall block; returns ``(text, logging level)``.

    The root is the span with no parent among ``spans`` (the earliest such span if several);
    without one, the block is headed ``(root not seen)`` and spans whose parent is missing are
    listed at the top level.
    """
    sym = ASCII_SYMBOLS if ascii else EMOJI_SYMBOLS
    items = [s for s in spans if s.start_time is not None and s.end_time is not None]
    if not items:
        return "", logging.DEBUG
    ids = {_sid(s) for s in items}
    roots = [s for s in items if s.parent is None or s.parent.is_remote]
    root = min(roots, key=lambda s: s.start_time or 0) if roots else None
    children: dict[int | None, list[ReadableSpan]] = {}
    for s in items:
        if s is root:
            continue
        pid = s.parent.span_id if s.parent is not None and not s.parent.is_remote else None
        key = pid if pid in ids else None  # parent missing (or another root): top level
        if root is not None and key is None:
            key = _sid(root)
        children.setdefault(key, []).append(s)
    for lst in children.values():
        lst.sort(key=lambda s: (s.start_time or 0, s.end_time or 0))

    if root is not None:
        assert root.start_time is not None and root.end_time is not None
        origin, end = root.start_time, root.end_time
    else:
        origin = min(s.start_time or 0 for s in items)
        end = max(s.end_time or 0 for s in items)
    total = max(0, end - origin)
    # a child may outlive its root: scale the bars to cover it
    scale_end = max([end, *(s.end_time or 0 for s in items)])
    scale = max(1, scale_end - origin)

    trace_id = next((f"{s.context.trace_id:032x}" for s in items if s.context is not None), "")
    level = logging.INFO
    lines: list[str] = []
    if root is not None:
        severity = _severity_of(root, total)
        level = _LEVELS.get(severity, logging.INFO)
        header = [f"{sym.severity.get(severity, '')} {root.name}", _ms(total), severity, _status_text(root)]
        attrs = root.attributes or {}
        outcome = attrs.get(A.DISCORD_COMMAND_OUTCOME)
        if isinstance(outcome, str) and outcome:
            header.append(f"outcome {outcome}")
        ack = attrs.get(A.DISCORD_INTERACTION_ACK_MS)
        if isinstance(ack, (int, float)):
            header.append(f"ack {float(ack):.1f} ms")
        if attrs.get(A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED) is True:
            header.append("ACK DEADLINE MISSED")
        header.append(f"trace {trace_id}")
        lines.append("  ".join(header))
        if root.status.status_code is StatusCode.ERROR:
            level = max(level, logging.WARNING)
    else:
        lines.append(f"{sym.unknown} (root not seen)  {_ms(total)}  trace {trace_id}")

    rows: list[_Row] = []
    count = 0
    truncated = 0

    def event_rows(span: ReadableSpan, prefix: str) -> list[tuple[int, Callable[[str, str], None]]]:
        out: list[tuple[int, Callable[[str, str], None]]] = []
        for ev in span.events:
            if (ev.attributes or {}).get(A.BOT_CHECKPOINT) is not True:
                continue

            def add(branch: str, _cont: str, ev: Any = ev) -> None:
                rows.append(
                    _Row(
                        left=f"{prefix}{branch}{sym.pad(sym.event)} {_cut(ev.name, name_width, sym.ellipsis)}",
                        duration="",
                        offset=f"+{_ms(ev.timestamp - origin)}",
                        bar=_mark(ev.timestamp, origin, scale, width, sym),
                    )
                )

            out.append((ev.timestamp, add))
        return out

    def walk(parent: ReadableSpan | None, prefix: str) -> None:
        nonlocal count, truncated
        key = _sid(parent) if parent is not None else None
        entries: list[tuple[int, Callable[[str, str], None]]] = []
        if parent is not None:
            entries.extend(event_rows(parent, prefix))
        for child in children.get(key, []):

            def add(branch: str, cont: str, child: ReadableSpan = child) -> None:
                nonlocal count, truncated
                if count >= max_spans:
                    truncated += 1 + _descendants(child)
                    return
                count += 1
                assert child.start_time is not None and child.end_time is not None
                tail = ""
                if child.status.status_code is StatusCode.ERROR:
                    err = (child.attributes or {}).get(A.ERROR_TYPE) or child.status.description or ""
                    tail = f"  {sym.error} {err}".rstrip()
                rows.append(
                    _Row(
                        left=f"{prefix}{branch}{sym.pad(_kind_symbol(child, sym))} "
                        f"{_cut(child.name, name_width, sym.ellipsis)}",
                        duration=_ms(child.end_time - child.start_time),
                        offset=f"+{_ms(child.start_time - origin)}",
                        bar=_bar(child.start_time, child.end_time, origin, scale, width, sym),
                        tail=tail,
                    )
                )
                walk(child, prefix + cont)

            entries.append((child.start_time or 0, add))
        entries.sort(key=lambda e: e[0])
        for i, (_, emit) in enumerate(entries):
            last = i == len(entries) - 1
            emit(sym.last if last else sym.tee, sym.blank if last else sym.pipe)

    def _descendants(span: ReadableSpan) -> int:
        return sum(1 + _descendants(c) for c in children.get(_sid(span), []))

    walk(root, "")  # without a root: the spans whose parent is missing, at the top level

    if rows:
        lw = max(len(r.left) for r in rows)
        dw = max(len(r.duration) for r in rows)
        ow = max(len(r.offset) for r in rows)
        for r in rows:
            lines.append(f"{r.left.ljust(lw)}  {r.duration.rjust(dw)}  {r.offset.rjust(ow)}  |{r.bar}|{r.tail}")
    truncated += dropped
    if truncated:
        lines.append(f"{sym.blank}{sym.ellipsis} {truncated} more spans not shown")

    # highlights
    steps = [s for s in items if s is not root]
    if steps and total > 0:
        # the slowest step by its own time (its duration minus what its children cover), so a
        # flow span wrapping everything does not hide the query or offload that made it slow
        own = {_sid(s): _self_time(s, children.get(_sid(s), [])) for s in steps}
        slowest = max(steps, key=lambda s: (own[_sid(s)], -(s.start_time or 0)))
        dur = own[_sid(slowest)]
        note = " self" if children.get(_sid(slowest)) else ""
        lines.append(
            f"{sym.blank}{sym.slowest} slowest: {_cut(slowest.name, name_width, sym.ellipsis)} "
            f"{_ms(dur)}{note} ({dur / total * 100:.0f}% of {_ms(total)})"
        )
    lines.extend(_notices(items, origin, sym, name_width))
    breached = [root] if root is not None else []
    breached += sorted(steps, key=lambda s: s.start_time or 0)
    for s in breached:
        text = _breach(s)
        if text is not None:
            lines.append(f"{sym.blank}{sym.breach} {text}")
            level = max(level, logging.WARNING)
    return "\n".join(lines), level


# --- the processor -----------------------------------------------------------------------------------


@dataclass
class _Trace:
    first_seen: float
    spans: list[ReadableSpan] = field(default_factory=list)
    open: set[int] = field(default_factory=set)
    root: ReadableSpan | None = None
    root_ended_at: float | None = None
    dropped: int = 0


class WaterfallProcessor(SpanProcessor):
    """A span processor that logs one waterfall block per finished trace (see the module doc).

    Args:
        stream: write the blocks to this stream (through a queue and a writer thread). ``None``:
            log to ``logger``; if no handler is configured anywhere, a stderr handler is added.
        ascii: force ASCII (``True``) or emoji (``False``); ``None`` decides from ``NO_COLOR``
            and the stream's encoding.
        logger: the logger (or its name) blocks go to; default ``otel_bot.waterfall``.
        clock: monotonic seconds, for the grace period and eviction (tests pass a fake clock).
        grace_s: how long a finished root waits for children still running.
        orphan_timeout_s: how long spans whose root never arrives are kept.
        max_traces: most traces buffered at once (oldest evicted first).
        max_spans: most spans kept (and printed) per trace.
        width: bar width in characters.
        min_duration_ms: traces shorter than this are not printed.
        include: optional predicate on the root span; a ``False`` skips the trace.
        timer: run a daemon timer so a root waiting for late children prints after ``grace_s``
            even when no other span ends (tests turn it off and call :meth:`sweep`).
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        ascii: bool | None = None,
        logger: logging.Logger | str | None = None,
        clock: Callable[[], float] | None = None,
        *,
        grace_s: float = 0.5,
        orphan_timeout_s: float = 60.0,
        max_traces: int = 1000,
        max_spans: int = 200,
        width: int = 20,
        min_duration_ms: float = 0.0,
        include: Callable[[ReadableSpan], bool] | None = None,
        timer: bool = True,
    ) -> None:
        self._logger = (
            logger if isinstance(logger, logging.Logger) else logging.getLogger(logger or LOGGER_NAME)
        )
        self._clock = clock or time.monotonic
        self.grace_s = grace_s
        self.orphan_timeout_s = orphan_timeout_s
        self.max_traces = max(1, max_traces)
        self.max_spans = max(1, max_spans)
        self.width = max(5, width)
        self.min_duration_ms = min_duration_ms
        self.include = include
        self.timer = timer
        self.ascii = ascii if ascii is not None else wants_ascii(stream)
        self._lock = threading.Lock()
        self._traces: OrderedDict[int, _Trace] = OrderedDict()
        self._done: OrderedDict[int, None] = OrderedDict()  # recently printed trace ids
        self._timer: threading.Timer | None = None
        self._listener: logging.handlers.QueueListener | None = None
        self._handler: logging.Handler | None = None
        self._shutdown = False
        self.printed = 0
        self.evicted = 0
        self._setup_output(stream)

    # --- output ------------------------------------------------------------------------------------
    def _setup_output(self, stream: IO[str] | None) -> None:
        self._saved = (self._logger.level, self._logger.propagate)
        if self._logger.level == logging.NOTSET:
            self._logger.setLevel(logging.INFO)  # console=True asked for the blocks: not lost to WARNING
        if stream is None and self._logger.hasHandlers():
            return  # the application's handlers and formats decide
        target = stream if stream is not None else sys.stderr
        writer = logging.StreamHandler(target)
        writer.setFormatter(logging.Formatter("%(message)s"))
        q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        handler = logging.handlers.QueueHandler(q)
        self._listener = logging.handlers.QueueListener(q, writer, respect_handler_level=False)
        self._listener.start()
        self._handler = handler
        self._logger.addHandler(handler)
        self._logger.propagate = False  # our own writer: no duplicates if logging is configured later

    def _emit(self, spans: list[ReadableSpan], root: ReadableSpan | None, dropped: int = 0) -> None:
        if root is not None:
            if self.include is not None and not self.include(root):
                return
            if root.start_time is not None and root.end_time is not None:
                if (root.end_time - root.start_time) / 1e6 < self.min_duration_ms:
                    return
        text, level = format_trace(
            spans, ascii=self.ascii, width=self.width, max_spans=self.max_spans, dropped=dropped
        )
        if text and self._logger.isEnabledFor(level):
            self.printed += 1
            self._logger.log(level, text)

    # --- SpanProcessor -----------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        with guard("waterfall.on_start"):
            ctx = span.get_span_context()
            if self._shutdown or not ctx.is_valid:
                return
            with self._lock:
                if ctx.trace_id in self._done:
                    return
                tr = self._get(ctx.trace_id)
                tr.open.add(ctx.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        with guard("waterfall.on_end"):
            ctx = span.context
            if self._shutdown or ctx is None or not ctx.is_valid:
                return
            ready: list[_Trace] = []
            with self._lock:
                if ctx.trace_id in self._done:
                    return  # a late child of a trace already printed
                tr = self._get(ctx.trace_id)
                tr.open.discard(ctx.span_id)
                is_root = span.parent is None or span.parent.is_remote
                if len(tr.spans) < self.max_spans or (is_root and tr.root is None):
                    tr.spans.append(span)
                else:
                    tr.dropped += 1
                if is_root:
                    if tr.root is None:
                        tr.root = span
                        tr.root_ended_at = self._clock()
                if tr.root is not None and not tr.open:
                    ready.append(self._pop(ctx.trace_id))
                ready.extend(self._sweep_locked())
                schedule = any(t.root is not None for t in self._traces.values())
            for t in ready:
                self._emit(t.spans, t.root, t.dropped)
            if schedule and self.timer:
                self._schedule()

    def sweep(self) -> int:
        """Print traces whose grace ran out and evict stale orphans now; returns blocks printed."""
        ready: list[_Trace] = []
        with guard("waterfall.sweep"):
            with self._lock:
                ready = self._sweep_locked()
            for t in ready:
                self._emit(t.spans, t.root, t.dropped)
        return len(ready)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Print every buffered trace now (orphans as ``(root not seen)``) and drain the writer."""
        with guard("waterfall.flush"):
            with self._lock:
                pending = list(self._traces)
                ready = [self._pop(tid) for tid in pending]
            for t in ready:
                self._emit(t.spans, t.root, t.dropped)
            self._drain()
        return True

    def shutdown(self) -> None:
        with guard("waterfall.shutdown"):
            if self._shutdown:
                return
            self.force_flush()
            self._shutdown = True
            if self._timer is not None:
                self._timer.cancel()
            if self._listener is not None:
                self._listener.stop()
                self._listener = None
            if self._handler is not None:
                self._logger.removeHandler(self._handler)
                self._handler = None
            self._logger.setLevel(self._saved[0])
            self._logger.propagate = self._saved[1]

    # --- internals ----------------------------------------------------------------------------------
    def _get(self, trace_id: int) -> _Trace:
        tr = self._traces.get(trace_id)
        if tr is None:
            tr = _Trace(first_seen=self._clock())
            self._traces[trace_id] = tr
            while len(self._traces) > self.max_traces:
                old_id, old = self._traces.popitem(last=False)
                self.evicted += 1
                self._remember(old_id)
                del old
        return tr

    def _pop(self, trace_id: int) -> _Trace:
        tr = self._traces.pop(trace_id)
        self._remember(trace_id)
        return tr

    def _remember(self, trace_id: int) -> None:
        self._done[trace_id] = None
        while len(self._done) > 4 * self.max_traces:
            self._done.popitem(last=False)

    def _sweep_locked(self) -> list[_Trace]:
        now = self._clock()
        ready: list[_Trace] = []
        for tid in list(self._traces):
            tr = self._traces[tid]
            if tr.root is not None and tr.root_ended_at is not None and now - tr.root_ended_at >= self.grace_s:
                ready.append(self._pop(tid))
            elif tr.root is None and now - tr.first_seen >= self.orphan_timeout_s:
                self._traces.pop(tid)
                self._remember(tid)
                self.evicted += 1
        return ready

    def _schedule(self) -> None:
        """Make sure a waiting root prints after its grace even if no other span ends."""
        if self._timer is not None and self._timer.is_alive():
            return
        timer = threading.Timer(self.grace_s + 0.05, self._on_timer)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _on_timer(self) -> None:
        self._timer = None
        self.sweep()
        with self._lock:
            waiting = any(t.root is not None for t in self._traces.values())
        if waiting and not self._shutdown:
            self._schedule()

    def _drain(self) -> None:
        listener = self._listener
        if listener is None:
            return
        # QueueListener has no flush: restart it, which waits for the queue to empty.
        listener.stop()
        listener.start()
