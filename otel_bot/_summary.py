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

This module holds the processor (buffering, eviction, output); the formatting of one block,
:func:`format_trace` and the symbol sets, is in :mod:`otel_bot._waterfall` (re-exported here).
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from . import _privacy
from ._guard import guard, report

# format_trace is looked up here at call time, so patching otel_bot._summary.format_trace works.
from ._waterfall import ASCII_SYMBOLS, EMOJI_SYMBOLS, Symbols, format_trace, wants_ascii

__all__ = ["ASCII_SYMBOLS", "EMOJI_SYMBOLS", "Symbols", "WaterfallProcessor", "format_trace"]

LOGGER_NAME = "otel_bot.waterfall"
# A logger's filters see only records logged to it, not those propagating from a child: the
# ``otel_bot`` logger's RedactingFilter never sees this logger's records, so it gets its own.
_privacy.install_log_redaction(LOGGER_NAME)


class _GuardedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The writer thread's console handler: a failing write (closed pipe, full disk) is reported
    through the guard (``waterfall.write``: logged once, counted) instead of logging's stderr dump."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if exc is not None:
            report("waterfall.write", exc)


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
        self._redaction: logging.Filter | None = None
        self._shutdown = False
        self.printed = 0
        self.evicted = 0
        self._setup_output(stream)

    # --- output ------------------------------------------------------------------------------------
    def _setup_output(self, stream: IO[str] | None) -> None:
        self._saved = (self._logger.level, self._logger.propagate)
        # Status descriptions and error types reach the blocks: redact tokens on the logger the
        # blocks are logged to (whichever handlers then write them), removed again at shutdown.
        if not any(isinstance(f, _privacy.RedactingFilter) for f in self._logger.filters):
            self._redaction = _privacy.RedactingFilter()
            self._logger.addFilter(self._redaction)
        if self._logger.level == logging.NOTSET:
            self._logger.setLevel(logging.INFO)  # console=True asked for the blocks: not lost to WARNING
        if stream is None and self._logger.hasHandlers():
            return  # the application's handlers and formats decide
        target = stream if stream is not None else sys.stderr
        writer = _GuardedStreamHandler(target)
        writer.setFormatter(logging.Formatter("%(message)s"))
        q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        handler = logging.handlers.QueueHandler(q)
        handler.addFilter(_privacy.RedactingFilter())
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
                swept, schedule = self._sweep_locked()
                ready.extend(swept)
            for t in ready:
                self._emit(t.spans, t.root, t.dropped)
            if schedule and self.timer:
                self._schedule()

    def sweep(self) -> int:
        """Print traces whose grace ran out and evict stale orphans now; returns blocks printed."""
        ready: list[_Trace] = []
        with guard("waterfall.sweep"):
            with self._lock:
                ready, _ = self._sweep_locked()
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
            if self._redaction is not None:
                self._logger.removeFilter(self._redaction)
                self._redaction = None
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

    def _sweep_locked(self) -> tuple[list[_Trace], bool]:
        """Pop the traces whose grace ran out, evict stale orphans; also whether a trace whose
        root ended is still waiting (one pass over the buffer, on every span end)."""
        now = self._clock()
        ready: list[_Trace] = []
        waiting = False
        for tid in list(self._traces):
            tr = self._traces[tid]
            if tr.root is not None and tr.root_ended_at is not None and now - tr.root_ended_at >= self.grace_s:
                ready.append(self._pop(tid))
            elif tr.root is None and now - tr.first_seen >= self.orphan_timeout_s:
                self._traces.pop(tid)
                self._remember(tid)
                self.evicted += 1
            elif tr.root is not None:
                waiting = True
        return ready, waiting

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
