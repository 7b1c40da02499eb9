"""What hostile input and user data may become in telemetry: bounded, encodable, token-free.

Three jobs, shared by every module that writes span names, attributes or exception text:

* :func:`clean_text` / :func:`bound_name` / :func:`bound_value` / :func:`bound_attributes` — a
  gateway payload is untrusted: a command name, custom_id, locale or option value may be huge,
  or hold lone surrogates (``json.loads`` accepts ``"\\ud800"``). A lone surrogate cannot be
  encoded as UTF-8, so the OTLP encoder drops the attribute, or -- in a span name or status
  description -- fails the whole export batch. Every string derived from input is therefore made
  encodable (lone surrogates become ``U+FFFD``) and cut to a bound; sequences are cut in length;
  the number of attributes one call may add is capped.
* :func:`hash_user_id` — the one user-id transform (off / raw / HMAC-SHA256 by
  :class:`~otel_bot._config.Settings`), so every span of a user carries the same value.
* :func:`record_error` — ``span.record_exception(exc)`` + ERROR status with the message and the
  stack trace redacted (:func:`otel_bot._routes.redact`: the bot token, webhook and interaction
  tokens, token-shaped substrings) and made encodable; the one way a root, checkpoint, event or
  executor span records an exception that may carry a Discord URL.
* :class:`RedactingFilter` — installed on the ``otel_bot`` logger when this module is imported:
  every record otel_bot logs there (the guard's "internal error" warnings with their tracebacks,
  setup and exporter warnings) has its message and traceback text redacted the same way, so a
  bug whose exception text carries a Discord URL cannot write a token into the bot's logs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

from ._config import Settings

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_EXCEPTION_MESSAGE_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_SEQUENCE_LENGTH",
    "MAX_STACKTRACE_LENGTH",
    "MAX_STATUS_LENGTH",
    "RedactingFilter",
    "bound_attributes",
    "bound_name",
    "bound_value",
    "clean_text",
    "error_type",
    "hash_user_id",
    "install_log_redaction",
    "record_error",
]

#: Longest span name otel_bot writes (names come from command names and custom_id templates).
MAX_NAME_LENGTH = 128
#: Most items kept in a sequence attribute value.
MAX_SEQUENCE_LENGTH = 32
#: Most attributes one :func:`bound_attributes` call passes on.
MAX_ATTRIBUTES = 64
#: Longest exception stack trace recorded (characters; the tail, where the raise is, is kept).
MAX_STACKTRACE_LENGTH = 8192
#: Longest exception message recorded (characters).
MAX_EXCEPTION_MESSAGE_LENGTH = 1024
#: Longest status description.
MAX_STATUS_LENGTH = 256

_DEFAULT_LIMIT = 256
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str, limit: int | None = _DEFAULT_LIMIT) -> str:
    """``text`` as UTF-8 can carry it (lone surrogates -> U+FFFD), cut to ``limit`` characters
    (``None``: no cut). Cheap for ordinary text: one ``isascii`` / ``encode`` check."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _SURROGATE.sub("\ufffd", text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit)]
    return text


def _limit(settings: Settings | None) -> int:
    if settings is None:
        return _DEFAULT_LIMIT
    try:
        return int(settings.max_attribute_length)
    except (TypeError, ValueError):
        return _DEFAULT_LIMIT


def bound_name(name: Any) -> str:
    """A span name: a string, encodable, at most :data:`MAX_NAME_LENGTH` characters."""
    if not isinstance(name, str):
        name = str(name)
    return clean_text(name, MAX_NAME_LENGTH) or "?"


def bound_value(value: Any, settings: Settings | None = None) -> Any:
    """An attribute value that hostile input cannot bloat: strings cleaned and cut to
    ``Settings.max_attribute_length``, sequences cut to :data:`MAX_SEQUENCE_LENGTH` items (each
    item bounded), ints outside int64 as strings (OTLP carries int64); other values unchanged."""
    if isinstance(value, str):
        return clean_text(value, _limit(settings))
    if isinstance(value, bool) or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, (list, tuple)):
        items = [bound_value(v, settings) for v in list(value)[:MAX_SEQUENCE_LENGTH]]
        return tuple(items)
    return value


def bound_attributes(
    attributes: Mapping[str, Any] | None, settings: Settings | None = None
) -> dict[str, Any]:
    """``attributes`` without ``None`` values, each value through :func:`bound_value`, at most
    :data:`MAX_ATTRIBUTES` of them (keys are otel_bot's own constants, never input)."""
    out: dict[str, Any] = {}
    if not attributes:
        return out
    for key, value in attributes.items():
        if value is None:
            continue
        if len(out) >= MAX_ATTRIBUTES:
            break
        out[key] = bound_value(value, settings)
    return out


def hash_user_id(user_id: Any, settings: Settings) -> str | None:
    """A user id as written to telemetry: ``None`` when ``capture_user_ids`` is off, the
    HMAC-SHA256 hex digest of the decimal id when ``user_id_hmac_key`` is set, else the decimal id.
    Accepts an int, a numeric string or an object with ``.id``; anything else gives ``None``."""
    if user_id is None or not settings.capture_user_ids:
        return None
    raw_id = getattr(user_id, "id", user_id)
    try:
        raw = str(int(raw_id))
    except (TypeError, ValueError):
        return None
    key = settings.user_id_hmac_key
    if key:
        secret = key if isinstance(key, bytes) else str(key).encode()
        return hmac.new(secret, raw.encode(), hashlib.sha256).hexdigest()
    return raw


def error_type(exc: BaseException | type[BaseException]) -> str:
    """The one ``error.type`` / ``exception.type`` value for an exception (or its class):
    module-qualified (``discord.errors.NotFound``), bare for builtins and ``__main__``
    (``ValueError``), so one class groups the same way on every span."""
    cls = exc if isinstance(exc, type) else type(exc)
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", None) or repr(cls)
    if not isinstance(module, str) or module in ("builtins", "__main__"):
        return clean_text(str(name), None)
    return clean_text(f"{module}.{name}", None)


def record_error(
    span: Span,
    exc: BaseException,
    secrets: Iterable[str | None] = (),
    *,
    status_limit: int | None = MAX_STATUS_LENGTH,
    scrub: Callable[[str], str] | None = None,
) -> str:
    """Drop-in for ``span.record_exception(exc)`` + ``set_status(ERROR, "Type: message")``:
    message and stack trace redacted (known and token-shaped secrets), made encodable, the stack
    trace cut to its last :data:`MAX_STACKTRACE_LENGTH` characters. Returns the description.

    ``scrub`` (optional) rewrites the redacted message once more (the DB spans pass
    :func:`otel_bot._dbspan.scrub_db_message`: the values a database error quotes become ``?``);
    the message where the stack trace repeats it is rewritten the same way. Without it, a
    database error (one with a SQLSTATE) is scrubbed the same way on whichever span records it
    (a root whose command let an asyncpg error escape, an executor job), unless
    ``capture_db_query_literals`` is on."""
    from . import _attributes as A
    from ._routes import exception_attributes

    attrs = exception_attributes(exc, secrets)
    if scrub is None:
        scrub = _db_scrubber(exc)
    if scrub is not None:
        raw_message = attrs[A.EXCEPTION_MESSAGE]
        scrubbed = scrub(raw_message)
        if scrubbed != raw_message:
            attrs[A.EXCEPTION_MESSAGE] = scrubbed
            attrs[A.EXCEPTION_STACKTRACE] = attrs[A.EXCEPTION_STACKTRACE].replace(raw_message, scrubbed)
    message = clean_text(attrs[A.EXCEPTION_MESSAGE], MAX_EXCEPTION_MESSAGE_LENGTH)
    stack = clean_text(attrs[A.EXCEPTION_STACKTRACE], None)
    if len(stack) > MAX_STACKTRACE_LENGTH:
        stack = stack[-MAX_STACKTRACE_LENGTH:]
    attrs[A.EXCEPTION_MESSAGE] = message
    attrs[A.EXCEPTION_STACKTRACE] = stack
    span.add_event(A.EVENT_EXCEPTION, attrs)
    name = clean_text(type(exc).__name__, None)
    description = f"{name}: {message}" if message else name
    if status_limit is not None:
        description = description[:status_limit]
    span.set_status(Status(StatusCode.ERROR, description))
    return description


def _db_scrubber(exc: BaseException) -> Callable[[str], str] | None:
    """The DB error-message scrubber for ``exc`` when it is a database error, else ``None``."""
    if not any(hasattr(exc, a) for a in ("sqlstate", "pgcode", "sqlite_errorname")):
        return None
    try:
        from ._dbspan import error_scrubber
    except ImportError:  # pragma: no cover - part of the package
        return None
    return error_scrubber(exc)


class RedactingFilter(logging.Filter):
    """Redacts tokens from a record's message and traceback text (never drops a record).

    The message is rendered and redacted (``msg`` becomes the text, ``args`` empty); the
    traceback is rendered into ``exc_text`` (which every :class:`logging.Formatter` prints
    instead of formatting ``exc_info`` again) and redacted; ``exc_info`` itself is kept for code
    that inspects it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            from ._routes import redact

            message = record.getMessage()
            clean = redact(message)
            if clean != message or record.args:
                record.msg = clean
                record.args = None
            if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
                record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
        except Exception:  # pragma: no cover - never lose a log record to the filter
            pass
        return True


_FILTER = RedactingFilter("otel_bot")


def install_log_redaction(logger: logging.Logger | str = "otel_bot") -> None:
    """Add the :class:`RedactingFilter` to ``logger`` (idempotent)."""
    target = logging.getLogger(logger) if isinstance(logger, str) else logger
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(_FILTER)


install_log_redaction()
