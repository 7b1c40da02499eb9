"""The waterfall text itself: :func:`format_trace` turns one trace's finished spans into a block.

Pure formatting (string work only, no I/O, no state): the glyph sets (:class:`Symbols`,
:data:`EMOJI_SYMBOLS`, :data:`ASCII_SYMBOLS`, :func:`wants_ascii`), the tree with durations,
offsets and bars, and the highlights (slowest step, notices, threshold breaches). The layout is
shown in :mod:`otel_bot._summary`, whose :class:`~otel_bot._summary.WaterfallProcessor` buffers
spans per trace and logs these blocks.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from . import _attributes as A
from . import _sla, _state

__all__ = ["ASCII_SYMBOLS", "EMOJI_SYMBOLS", "Symbols", "format_trace", "wants_ascii"]


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
