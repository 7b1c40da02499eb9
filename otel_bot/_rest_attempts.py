"""What a Discord REST call's responses said: per-attempt capture and the final attributes.

The ``json_or_text`` hook (discord.py calls it once per response) hands each response's status,
headers and parsed body to the per-call :class:`_Call` in a contextvar, which adds the
``discord.rate_limited`` / ``discord.rest.retry`` span events; :func:`_finish` then sets the final
status code, resend count, rate-limit and Discord error attributes. Why attempts are observed
this way is explained in :mod:`otel_bot._rest`, which holds the request wrappers and re-exports
these names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from opentelemetry.trace import Span

from . import _attributes as A
from . import _privacy
from ._guard import guard

#: Status codes discord.py's HTTPClient retries unconditionally (the webhook adapter: any 5xx).
_HTTP_RETRIED = frozenset({500, 502, 504, 524})


class _Call:
    """Per-request state the ``json_or_text`` hook fills in, one response at a time."""

    __slots__ = ("attempts", "data", "headers", "pending", "recording", "span", "status", "webhook")

    def __init__(self, span: Span, recording: bool, webhook: bool) -> None:
        self.span = span
        self.recording = recording
        self.webhook = webhook
        self.attempts = 0
        self.status: int | None = None
        self.headers: Any = None
        self.data: Any = None
        self.pending: tuple[int, int, int] | None = None  # (status, attempt, time_ns) awaiting retry

    def on_response(self, status: int, headers: Any, data: Any) -> None:
        attempt = self.attempts
        self.attempts = attempt + 1
        self.status = status
        self.headers = headers
        self.data = data
        if not self.recording:
            return
        if self.pending is not None:
            # the previous response was followed by another attempt: discord.py retried it
            p_status, p_attempt, p_time = self.pending
            self.pending = None
            self.span.add_event(
                A.EVENT_REST_RETRY,
                {A.HTTP_RESPONSE_STATUS_CODE: p_status, A.HTTP_REQUEST_RESEND_COUNT: p_attempt},
                timestamp=p_time,
            )
        if status == 429:
            self.span.add_event(A.EVENT_RATE_LIMITED, _rate_limit_event(headers, data, attempt))
        elif status >= 500 and (self.webhook or status in _HTTP_RETRIED):
            self.pending = (status, attempt, time.time_ns())


def _rate_limit_event(headers: Any, data: Any, attempt: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {A.HTTP_REQUEST_RESEND_COUNT: attempt}
    retry_after: Any = None
    is_global: Any = None
    if isinstance(data, dict):
        retry_after = data.get("retry_after")
        is_global = data.get("global")
    if retry_after is None:
        retry_after = headers.get("Retry-After")
    if is_global is None:
        is_global = headers.get("X-RateLimit-Global", "").lower() == "true"
    number = _as_float(retry_after)
    if number is not None:
        attrs[A.DISCORD_RATELIMIT_RETRY_AFTER] = number
    attrs[A.DISCORD_RATELIMIT_GLOBAL] = bool(is_global)
    scope = headers.get("X-RateLimit-Scope")
    if scope:
        attrs[A.DISCORD_RATELIMIT_SCOPE] = str(scope)
    bucket = headers.get("X-RateLimit-Bucket")
    if bucket:
        attrs[A.DISCORD_RATELIMIT_BUCKET] = str(bucket)
    return attrs


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_current: ContextVar[_Call | None] = ContextVar("otel_bot_rest_call", default=None)


# --- the json_or_text hook ---------------------------------------------------------------------


def _wrap_json_or_text(original: Callable[..., Any]) -> Callable[..., Any]:
    async def json_or_text(response: Any) -> Any:
        call = _current.get()
        if call is None:
            return await original(response)
        data = await original(response)
        with guard("rest.response"):
            call.on_response(int(response.status), response.headers, data)
        return data

    return json_or_text


def _finish(span: Span, call: _Call, exc: Exception | None, route: Any) -> None:
    attrs: dict[str, Any] = {}
    status = call.status
    if exc is not None and status is None:
        status = _as_int(getattr(exc, "status", None))
    if status is not None:
        attrs[A.HTTP_RESPONSE_STATUS_CODE] = status
    if call.attempts > 1:
        attrs[A.HTTP_REQUEST_RESEND_COUNT] = call.attempts - 1
    headers = call.headers
    if headers is not None:
        bucket = headers.get("X-RateLimit-Bucket")
        if bucket:
            attrs[A.DISCORD_RATELIMIT_BUCKET] = str(bucket)
        for header, key, conv in _RATE_LIMIT_HEADERS:
            value = conv(headers.get(header))
            if value is not None:
                attrs[key] = value
        scope = headers.get("X-RateLimit-Scope")
        if scope:
            attrs[A.DISCORD_RATELIMIT_SCOPE] = str(scope)
    if call.pending is not None and (exc is None or getattr(exc, "status", None) is None):
        # a 5xx discord.py retried, whose retry ended without a response (a connection error);
        # when discord.py raised for it instead, it was the final attempt, not a retry
        p_status, p_attempt, p_time = call.pending
        span.add_event(
            A.EVENT_REST_RETRY,
            {A.HTTP_RESPONSE_STATUS_CODE: p_status, A.HTTP_REQUEST_RESEND_COUNT: p_attempt},
            timestamp=p_time,
        )
    if exc is not None:
        code = _discord_code(call, exc)
        if code:
            attrs[A.DISCORD_ERROR_CODE] = code
        if status is not None and status >= 400:
            attrs[A.ERROR_TYPE] = str(status)
        else:
            attrs[A.ERROR_TYPE] = _privacy.error_type(exc)
        _privacy.record_error(span, exc, [getattr(route, "webhook_token", None)])
    elif status is not None and status >= 400:  # pragma: no cover - discord.py raises for these
        attrs[A.ERROR_TYPE] = str(status)
    span.set_attributes(attrs)


_RATE_LIMIT_HEADERS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("X-RateLimit-Limit", A.DISCORD_RATELIMIT_LIMIT, _as_int),
    ("X-RateLimit-Remaining", A.DISCORD_RATELIMIT_REMAINING, _as_int),
    ("X-RateLimit-Reset-After", A.DISCORD_RATELIMIT_RESET_AFTER, _as_float),
)


def _discord_code(call: _Call, exc: BaseException | None) -> int | None:
    code = _as_int(getattr(exc, "code", None)) if exc is not None else None
    if not code and isinstance(call.data, dict):
        code = _as_int(call.data.get("code"))
    return code or None
