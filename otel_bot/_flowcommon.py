"""Helpers shared by ``checkpoint()``/``measure()`` (:mod:`otel_bot._flow`) and ``FlowTracker``
(:mod:`otel_bot._flowtracker`): cleaning attribute values, the user id as the settings allow,
recording an error on a span, and the parent context new step spans start in.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from . import _attributes as A
from . import _privacy, _state

# --- attribute values ---------------------------------------------------------------------------


def clean_value(value: Any, max_length: int) -> Any:
    """An OpenTelemetry-valid attribute value: str/bool/int/float (and homogeneous sequences of
    them) pass, strings are made encodable (:func:`otel_bot._privacy.clean_text`) and cut to
    ``max_length``; sequences keep at most :data:`otel_bot._privacy.MAX_SEQUENCE_LENGTH` items;
    anything else is ``str()``-ed and cut. ``None`` stays ``None`` (the caller drops it)."""
    if value is None:
        return None
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else _cut(str(value), max_length)
    if isinstance(value, str):
        return _cut(value, max_length)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        head = [v for v in value if v is not None][: _privacy.MAX_SEQUENCE_LENGTH]
        items = [clean_value(v, max_length) for v in head]
        kinds = {type(v) for v in items}
        if len(kinds) <= 1 and all(not isinstance(v, tuple) for v in items):
            return tuple(items)
        return tuple(_cut(str(v), max_length) for v in items)
    return _cut(str(value), max_length)


def clean_attributes(attributes: Mapping[str, Any] | None, max_length: int | None = None) -> dict[str, Any]:
    """:func:`clean_value` over a mapping; ``None`` values and non-string keys are dropped."""
    if not attributes:
        return {}
    limit = max_length if max_length is not None else _state.settings_or_default().max_attribute_length
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            continue
        cleaned = clean_value(value, limit)
        if cleaned is not None:
            out[key] = cleaned
    return out


def _cut(text: str, limit: int) -> str:
    """``text`` made encodable by :func:`otel_bot._privacy.clean_text` (lone surrogates become
    U+FFFD, or the OTLP encoder drops the value), then cut to ``limit`` characters with "…"."""
    text = _privacy.clean_text(text, None)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _user_id_value(user_id: Any) -> str | None:
    """The user id as the settings allow (raw, HMAC or off): the same transform the root spans
    use, so a flow and its interaction carry the same value for one user."""
    settings = _state.settings_or_default()
    value = _privacy.hash_user_id(user_id, settings)
    if value is None and user_id is not None and settings.capture_user_ids:
        # A flow may be keyed by a non-numeric id (a name, a UUID): same transform, as text.
        raw = _privacy.clean_text(str(getattr(user_id, "id", user_id)))
        key = settings.user_id_hmac_key
        value = hmac.new(key, raw.encode(), "sha256").hexdigest() if key else raw
    return value


def _record_error(span: Span, exc: BaseException) -> None:
    """Record ``exc`` on ``span`` and set ERROR; ``CancelledError`` is not a failure."""
    if isinstance(exc, asyncio.CancelledError) or not isinstance(exc, Exception):
        return
    if span.is_recording():
        span.set_attribute(A.ERROR_TYPE, _privacy.error_type(exc))
        _privacy.record_error(span, exc)  # redacted, bounded, encodable
    else:
        span.set_status(Status(StatusCode.ERROR))


def _is_noop(tracer: Any) -> bool:
    """True for a tracer that records nothing: a NoOp one, or the API's proxy before any SDK
    provider is set (so an uninstrumented bot pays microseconds, not span bookkeeping)."""
    if isinstance(tracer, trace.NoOpTracer):
        return True
    if isinstance(tracer, trace.ProxyTracer):
        return isinstance(getattr(tracer, "_tracer", None), trace.NoOpTracer)
    return False


def _parent_context() -> otel_context.Context | None:
    """The context new spans start in: the current span's, else the current unit's root span."""
    current = trace.get_current_span()
    if current.get_span_context().is_valid:
        return None  # the current context already carries it
    unit = _state.get_unit()
    if unit is not None and unit.span.get_span_context().is_valid:
        return trace.set_span_in_context(unit.span)
    return None
