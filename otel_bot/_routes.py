"""Discord route templates, token-free URLs and redaction of free text.

Four jobs, no discord.py import:

* :func:`route_info` turns a discord.py ``Route`` path (the template it was built from, e.g.
  ``/channels/{channel_id}/messages``) into the low-cardinality template otel_bot names spans by.
  discord.py's ``HTTPClient`` templates are already readable and kept as they are. The webhook
  adapter reuses ``{webhook_id}/{webhook_token}`` for everything, so those are renamed by what they
  carry: ``/interactions/{interaction_id}/{interaction_token}/callback``,
  ``/webhooks/{application_id}/{interaction_token}/messages/@original`` for interaction followups
  and edits, ``/webhooks/{webhook_id}/{webhook_token}`` for real webhooks. A path that was built
  without placeholders (an f-string route, a hand-made ``Route``) has its snowflakes replaced by
  ``{id}`` and its token-like segments by ``{token}``. Results are cached per (method, path, kind).
* :func:`full_url` rebuilds ``url.full`` with every token segment replaced by its placeholder and
  secret-looking query values replaced by ``REDACTED``.
* :func:`redact` scrubs tokens out of free text (exception messages and stack traces) before it is
  recorded: known secrets (the bot token and recent webhook/interaction tokens, registered with
  :func:`register_secret`), then the shapes tokens take (``/webhooks/<id>/<token>``,
  ``/interactions/<id>/<token>``, ``Bot <token>``, bot-token and interaction-token shapes, secret
  query parameters). Every module that records exception text uses it.
* :func:`exception_attributes` is the ``exception`` event's attributes with message and stack
  trace redacted (a failing ``__str__`` gives ``<unprintable X object>``), what
  :func:`otel_bot._privacy.record_error` (the one way otel_bot records an exception) builds on.
"""

from __future__ import annotations

import re
import threading
import traceback
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from . import _privacy
from ._attributes import EXCEPTION_MESSAGE, EXCEPTION_STACKTRACE, EXCEPTION_TYPE

__all__ = [
    "REDACTED",
    "RouteInfo",
    "exception_attributes",
    "full_url",
    "is_interaction_token",
    "looks_like_token",
    "note_interaction_token",
    "redact",
    "register_secret",
    "route_info",
    "server_of",
]

REDACTED = "REDACTED"
#: base64("interaction:") — every real interaction token starts with it.
INTERACTION_TOKEN_PREFIX = "aW50ZXJhY3Rpb246"

# Route kinds: which discord.py entry point sent the request.
HTTP = "http"  # HTTPClient.request (bot token in the Authorization header)
WEBHOOK = "webhook"  # AsyncWebhookAdapter.request, a real webhook
INTERACTION = "interaction"  # AsyncWebhookAdapter.request carrying an interaction token


@dataclass(frozen=True)
class RouteInfo:
    """What one (method, route path, kind) resolves to; computed once and cached."""

    method: str
    template: str  # "/interactions/{interaction_id}/{interaction_token}/callback"
    name: str  # "POST /interactions/{interaction_id}/{interaction_token}/callback"
    segments: tuple[str, ...]  # the template split on "/"
    secret_segments: tuple[int, ...]  # indexes of segments that carry a token
    is_callback: bool  # an interaction callback (the acknowledgement)
    webhook: bool  # sent through the webhook adapter


_WEBHOOK_PREFIX = "/webhooks/{webhook_id}/{webhook_token}"
_INTERACTION_WEBHOOK_PREFIX = "/webhooks/{application_id}/{interaction_token}"
_CALLBACK_PREFIX = "/interactions/{webhook_id}/{webhook_token}"
_CALLBACK_NORMALISED = "/interactions/{interaction_id}/{interaction_token}"

_cache: dict[tuple[str, str, str], RouteInfo] = {}
_CACHE_MAX = 4096  # distinct templates are few; this only bounds hand-made literal paths

_SNOWFLAKE = re.compile(r"^\d+$")
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-.%=~+]+$")


def looks_like_token(segment: str) -> bool:
    """A path segment that is probably a secret: long, URL-safe and not a plain word."""
    if segment.startswith(INTERACTION_TOKEN_PREFIX):
        return True
    if len(segment) < 24 or segment.isdigit() or not _TOKEN_CHARS.match(segment):
        return False
    # Discord's literal path segments are lowercase words with dashes ("application-commands").
    return any(c.isdigit() or c.isupper() or c in "_.%=~+" for c in segment)


def _is_placeholder(segment: str) -> bool:
    return len(segment) > 2 and segment[0] == "{" and segment[-1] == "}"


def _is_secret_placeholder(segment: str) -> bool:
    return _is_placeholder(segment) and "token" in segment


def route_info(method: str, path: str, kind: str) -> RouteInfo:
    """The cached :class:`RouteInfo` for a discord.py route path."""
    key = (method, path, kind)
    info = _cache.get(key)
    if info is None:
        info = _build(method, path, kind)
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = info
    return info


def _build(method: str, path: str, kind: str) -> RouteInfo:
    template = path.split("?", 1)[0]
    if template.startswith(_CALLBACK_PREFIX):
        template = _CALLBACK_NORMALISED + template[len(_CALLBACK_PREFIX) :]
    elif kind == INTERACTION and template.startswith(_WEBHOOK_PREFIX):
        template = _INTERACTION_WEBHOOK_PREFIX + template[len(_WEBHOOK_PREFIX) :]
    segments = template.split("/")
    if (
        len(segments) >= 4
        and segments[0] == ""
        and segments[1] == "interactions"
        and _is_placeholder(segments[2])
        and _is_secret_placeholder(segments[3])
    ):
        # any spelling of /interactions/{id}/{token}/... (a hand-made Route through HTTPClient)
        segments[2], segments[3] = "{interaction_id}", "{interaction_token}"
    out: list[str] = []
    secret: list[int] = []
    for i, seg in enumerate(segments):
        if _is_placeholder(seg):
            if "token" in seg:
                secret.append(i)
            out.append(seg)
        elif seg and _SNOWFLAKE.match(seg):
            out.append("{id}")
        elif seg and looks_like_token(seg):
            out.append("{token}")
            secret.append(i)
        else:
            out.append(seg)
    is_callback = len(out) == 5 and out[1] == "interactions" and out[4] == "callback" and bool(secret)
    if is_callback:
        out[2], out[3] = "{interaction_id}", "{interaction_token}"
    template = "/".join(out)
    method = method.upper()
    return RouteInfo(
        method=method,
        template=template,
        name=f"{method} {template}",
        segments=tuple(out),
        secret_segments=tuple(secret),
        is_callback=is_callback,
        webhook=kind != HTTP,
    )


# --- url.full ------------------------------------------------------------------------------------

_SECRET_QUERY_KEYS = re.compile(
    r"token|secret|code|key|auth|password|passwd|signature|sig\b|credential", re.I
)
_servers: dict[str, tuple[str, int | None, str]] = {}


def server_of(base: str) -> tuple[str, int | None, str]:
    """``(host, port, origin)`` of a base URL, cached (``Route.BASE`` rarely changes).

    The port is ``None`` when the URL's port is invalid (the request will fail in aiohttp)."""
    hit = _servers.get(base)
    if hit is None:
        parts = urlsplit(base)
        host = parts.hostname or ""
        port: int | None
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = None
        hit = (host, port, f"{parts.scheme}://{parts.netloc}")
        if len(_servers) > 64:
            _servers.clear()
        _servers[base] = hit
    return hit


def full_url(url: str, base: str, info: RouteInfo, params: Any = None, secrets: Iterable[str] = ()) -> str:
    """``url`` (a ``Route.url``) with token segments replaced by placeholders and query secrets
    redacted; ``params`` is the query mapping discord.py passes to aiohttp."""
    if url.startswith(base):
        prefix, rest = base, url[len(base) :]
    else:
        parts = urlsplit(url)
        prefix = f"{parts.scheme}://{parts.netloc}"
        rest = url[len(prefix) :]
    query = ""
    if "?" in rest:
        rest, query = rest.split("?", 1)
    segments = rest.split("/")
    aligned = len(segments) == len(info.segments)
    if aligned:
        for i in info.secret_segments:
            segments[i] = info.segments[i]
    known = {s for s in secrets if s}
    for i, seg in enumerate(segments):
        if not seg or _is_placeholder(seg) or (aligned and seg == info.segments[i]):
            continue  # empty, already a placeholder, or a literal segment of the template
        if seg in known or looks_like_token(seg):
            segments[i] = "{token}"
    out = prefix + "/".join(segments)
    pairs = _query_pairs(query, params)
    if pairs:
        out += "?" + "&".join(f"{quote(str(k), safe='')}={v}" for k, v in pairs)
    return out


def _query_pairs(query: str, params: Any) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if query:
        for item in query.split("&"):
            k, _, v = item.partition("=")
            pairs.append((k, v))
    if params:
        items: Iterable[tuple[Any, Any]]
        if isinstance(params, Mapping):
            items = params.items()
        elif isinstance(params, (list, tuple)):
            items = params
        else:
            return pairs
        for k, v in items:
            pairs.append((str(k), quote(str(v), safe="")))
    return [(k, REDACTED if _SECRET_QUERY_KEYS.search(k) or looks_like_token(v) else v) for k, v in pairs]


# --- known secrets and redaction -------------------------------------------------------------------

_lock = threading.Lock()
_bot_tokens: set[str] = set()  # bot tokens are few: keep them all
_recent: OrderedDict[str, None] = OrderedDict()  # recent webhook / interaction tokens, bounded
_RECENT_MAX = 256
_interaction_token_hashes: OrderedDict[int, None] = OrderedDict()  # hashes only, for classification
_HASHES_MAX = 8192


def register_secret(secret: str | None, *, bot: bool = False) -> None:
    """Remember a secret so :func:`redact` scrubs it from any text (bot token, webhook token).

    Only kept in this process's memory, never exported. Webhook and interaction tokens are kept
    in a bounded most-recent set; bot tokens all.
    """
    if not secret or len(secret) < 8:
        return
    if bot and secret in _bot_tokens:  # every REST call passes the bot token: the common case
        return
    with _lock:
        if bot:
            _bot_tokens.add(secret)
            quoted = quote(secret, safe="", errors="surrogatepass")  # hostile tokens: never raise
            if quoted != secret:
                _bot_tokens.add(quoted)
            return
        _recent[secret] = None
        _recent.move_to_end(secret)
        quoted = quote(secret, safe="", errors="surrogatepass")  # hostile tokens: never raise
        if quoted != secret:
            _recent[quoted] = None
        while len(_recent) > _RECENT_MAX:
            _recent.popitem(last=False)


def note_interaction_token(token: str | None) -> None:
    """Mark ``token`` as an interaction token (its followups are then named as interaction
    webhooks) and register it for redaction. The REST wrapper calls it for every callback; the
    interaction root may call it as soon as the interaction arrives."""
    if not token:
        return
    h = hash(token)
    with _lock:
        _interaction_token_hashes[h] = None
        _interaction_token_hashes.move_to_end(h)
        while len(_interaction_token_hashes) > _HASHES_MAX:
            _interaction_token_hashes.popitem(last=False)
    register_secret(token)


def is_interaction_token(token: Any) -> bool:
    """True for a token an interaction carries (by its shape, or because it was noted)."""
    if not isinstance(token, str) or not token:
        return False
    return token.startswith(INTERACTION_TOKEN_PREFIX) or hash(token) in _interaction_token_hashes


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # a token segment inside a webhook / interaction URL path (quoted or not)
    (re.compile(r"(/(?:webhooks|interactions)/[^/\s?#'\"]+/)(?!\{)[^/\s?#'\"<>)]+"), r"\1" + REDACTED),
    # Authorization header values
    (re.compile(r"\b(Bot|Bearer)(\s+|%20|\+)[A-Za-z0-9_\-.=]{16,}"), r"\1\2" + REDACTED),
    # bot token shape: base64(user id) . timestamp . hmac
    (re.compile(r"[A-Za-z0-9_\-]{23,28}\.[A-Za-z0-9_\-]{6,7}\.[A-Za-z0-9_\-]{27,}"), REDACTED),
    # interaction token shape
    (re.compile(INTERACTION_TOKEN_PREFIX + r"[A-Za-z0-9_\-.=%]*"), REDACTED),
    # secret query values
    (
        re.compile(
            r"([?&;](?:[A-Za-z_]*(?:token|secret|code|key|password|signature|auth)[A-Za-z_]*)=)[^&\s#'\"]+",
            re.I,
        ),
        r"\1" + REDACTED,
    ),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every known secret, every ``secrets`` entry and every token-shaped substring
    replaced by ``REDACTED``. Use on any exception message or stack trace before recording it."""
    if not text:
        return text
    with _lock:
        known = [*_bot_tokens, *_recent]
    for s in secrets:
        if s and len(s) >= 8:
            known.append(s)
            q = quote(s, safe="", errors="surrogatepass")
            if q != s:
                known.append(q)
    # longest first, so a quoted form and a prefix do not leave half a token behind
    for s in sorted(set(known), key=len, reverse=True):
        if s in text:
            text = text.replace(s, REDACTED)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


# --- recording exceptions without their secrets ----------------------------------------------------


def exception_attributes(exc: BaseException, secrets: Iterable[str | None] = ()) -> dict[str, str]:
    """The OpenTelemetry ``exception`` event attributes for ``exc``, message and stack trace
    passed through :func:`redact` (what ``span.record_exception`` would write, minus tokens)."""
    secrets = list(secrets)
    try:
        message = str(exc)
    except Exception:  # a user exception whose __str__ raises: what the SDK writes too
        message = f"<unprintable {type(exc).__name__} object>"
    try:
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # pragma: no cover - format_exception guards str() itself
        stack = f"{type(exc).__name__}: {message}"
    return {
        EXCEPTION_TYPE: _privacy.error_type(exc),
        EXCEPTION_MESSAGE: redact(message, secrets),
        EXCEPTION_STACKTRACE: redact(stack, secrets),
    }

