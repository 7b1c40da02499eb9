"""Discord REST and webhook spans: one CLIENT span per logical Discord API request.

Coverage
    ``discord.http.HTTPClient.request`` (every bot-token call) and
    ``discord.webhook.async_.AsyncWebhookAdapter.request`` (interaction callbacks, followups,
    ``@original`` edits and real webhooks). The span is named ``{METHOD} {route template}``
    (templates and token scrubbing live in :mod:`otel_bot._routes`) and is a child of whatever span
    is current, normally the interaction / command / event root.

One span per logical request, one event per extra attempt (the per-attempt choice)
    discord.py retries inside ``request`` (429 after sleeping ``retry_after``; 500/502/504/524 and
    webhook 5xx after a back-off). otel_bot keeps ONE span for the call the bot made, covering the
    rate-limit waits and every attempt, because that is the latency the bot experiences and it
    keeps the trace tree flat. Each attempt is visible as a span event instead of a child span:

    * every 429 response: ``discord.rate_limited`` with ``discord.ratelimit.retry_after`` (s),
      ``discord.ratelimit.global``, the scope and bucket when present, and
      ``http.request.resend_count`` = the index of that attempt (0 for the first);
    * every other response that discord.py retried (5xx): ``discord.rest.retry`` with
      ``http.response.status_code`` and ``http.request.resend_count`` of that attempt.

    The span's ``http.request.resend_count`` is the number of resends (attempts - 1), set only when
    there was at least one; its status code, rate-limit attributes and error data describe the
    final attempt. (OSError retries on connection reset do not produce a response and are not
    counted.)

How attempts are observed (no behaviour change, least overhead)
    Both retry loops call the module-level ``json_or_text(response)`` exactly once per response,
    and discord.py looks it up in the module globals at call time. otel_bot wraps that function in
    ``discord.http`` and ``discord.webhook.async_``: the request wrapper puts its per-call state in
    a contextvar, and the ``json_or_text`` wrapper (one ``ContextVar.get`` when nothing is traced)
    hands the response's status, headers and the already-parsed body to it. Nothing extra is read
    or sent: the body is the one discord.py parses anyway, so retry_after, ``global`` and the
    Discord error code come from the same data discord.py acts on. An aiohttp ``TraceConfig`` was
    rejected: it must be added to discord.py's private session, fires for the gateway too, and
    cannot see the parsed body.

    While the span is current, OpenTelemetry's "suppress HTTP instrumentation" context key is set,
    so a generic aiohttp-client instrumentation does not add a duplicate CLIENT span (or inject
    trace headers into requests to Discord).

Attributes (OpenTelemetry HTTP client conventions)
    ``http.request.method``, ``url.template`` (the route template, without the ``/api/v10`` base),
    ``server.address``, ``server.port``, ``url.full`` (tokens replaced by their placeholders, secret
    query values by ``REDACTED``), ``http.response.status_code``, ``error.type`` (the status code
    as a string, else the exception's qualified class name), ``http.request.resend_count``,
    ``discord.rest.webhook`` for webhook-adapter calls, ``discord.ratelimit.bucket`` / ``limit`` /
    ``remaining`` / ``reset_after`` / ``scope`` from the final response headers, and
    ``discord.error.code`` (Discord's JSON error code: 10062, 50013, 40060, ...) on failure.
    A request that ends in an exception gets status ERROR and an ``exception`` event whose
    message and stack trace went through :func:`otel_bot._routes.redact`; discord.py's exception is
    re-raised untouched. Cancellation ends the span without an error.

Interaction acknowledgement
    When ``POST /interactions/{interaction_id}/{interaction_token}/callback`` completes (success or
    error), ``otel_bot._interactions.record_callback(interaction_id, status=, discord_code=,
    end_ns=, callback_type=)`` is called (if that module provides it), even when the span is not
    sampled and when ``trace_rest`` is off, so acknowledgement timing does not depend on REST spans.

Off switch and cost
    The wrappers' first lines: no active settings or ``suppress_instrumentation()`` -> straight to
    discord.py; ``trace_rest=False`` -> straight through, except that callbacks still report the
    acknowledgement. A request of an ``HTTPClient`` whose client was not passed to
    ``instrument_bot`` passes straight through too (webhook-adapter calls are traced when their
    session is an instrumented client's, or when they run inside a traced unit of work). Measured
    (2 cores, CPython 3.11, discord.py's transport stubbed out): under 1 us added per request
    when off (the ``json_or_text`` pass-through ~70 ns of it); ~10 us for a sampled-out span and
    ~30 us for a recording one (mostly the SDK's attribute handling) -- against tens of ms for
    any Discord request.
    Route templates are cached per (method, path); attribute work runs only when the span records;
    a sampled-out span skips the per-attempt bookkeeping (except for callbacks: acknowledgement).

``discord.SyncWebhook``
    The ``requests``-based adapter (``discord.webhook.sync.WebhookAdapter.request``) gets the same
    spans, attributes and events (:mod:`otel_bot._rest_sync`). Its retry loop has no ``json_or_text``, so while a recording span
    is open the adapter is handed a thin proxy of its session whose ``request`` forwards to the
    real one and reads the status, headers and (for errors only) the already-downloaded body. It is
    traced inside a unit of work, or whenever no client filter applies (zero-code instrumentor).

Not covered
    CDN downloads (``HTTPClient.get_from_cdn``: not an API route).

Layout
    This module: the request wrappers, span start, acknowledgement reporting and the patch table.
    :mod:`otel_bot._rest_attempts`: per-attempt capture (``_Call``, the ``json_or_text`` hook) and
    the final attributes (``_finish``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind

from . import _attributes as A
from . import _state
from ._guard import guard
from ._patching import Patch, attr_owner, module_owner
from ._rest_attempts import _as_int, _Call, _current, _discord_code, _finish, _wrap_json_or_text
from ._routes import (
    HTTP,
    INTERACTION,
    WEBHOOK,
    RouteInfo,
    full_url,
    is_interaction_token,
    note_interaction_token,
    redact,
    register_secret,
    route_info,
    server_of,
)

try:
    from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY as _SUPPRESS_HTTP_KEY
except ImportError:  # pragma: no cover - old API
    _SUPPRESS_HTTP_KEY = otel_context.create_key("suppress_http_instrumentation")

__all__ = ["PATCHES", "redact"]


# --- the request wrappers ----------------------------------------------------------------------


def _wrap_http_request(original: Callable[..., Any]) -> Callable[..., Any]:
    async def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        settings = _state.settings()
        if settings is None or not settings.trace_rest or _state.is_suppressed() or not _http_enabled(self):
            return await original(self, *args, **kwargs)
        route = args[0] if args else kwargs.get("route")
        return await _traced(original, self, args, kwargs, route, HTTP, self, True)

    return request


def _wrap_adapter_request(original: Callable[..., Any]) -> Callable[..., Any]:
    async def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        settings = _state.settings()
        if settings is None or _state.is_suppressed():
            return await original(self, *args, **kwargs)
        session = args[1] if len(args) > 1 else kwargs.get("session")
        if not _session_enabled(session):
            return await original(self, *args, **kwargs)
        route = args[0] if args else kwargs.get("route")
        if not settings.trace_rest and not _is_callback_path(route):
            return await original(self, *args, **kwargs)
        # trace_rest off: no span, but the acknowledgement of an interaction is still reported
        return await _traced(original, self, args, kwargs, route, WEBHOOK, None, bool(settings.trace_rest))

    return request


def _roots_module() -> Any:
    return sys.modules.get("otel_bot._roots")


def _http_enabled(http: Any) -> bool:
    """Is this ``HTTPClient``'s client instrumented? (Every client under the zero-code
    instrumentor; every HTTPClient when settings were activated without registering clients.)"""
    roots = _roots_module()
    if roots is None or roots.FLAGS.all_clients or not roots.CLIENTS:
        return True
    try:
        return http in roots.HTTP_CLIENTS
    except TypeError:  # not weak-referenceable: fall back to the scan
        return any(getattr(client, "http", None) is http for client in list(roots.CLIENTS))


def _session_enabled(session: Any) -> bool:
    """Webhook-adapter calls: traced when the aiohttp session is an instrumented client's (the
    interaction path), or when they run inside a traced unit of work (a user's own webhook)."""
    roots = _roots_module()
    if roots is None or roots.FLAGS.all_clients or not roots.CLIENTS:
        return True
    if _state.get_unit() is not None:
        return True
    for client in list(roots.CLIENTS):
        http = getattr(client, "http", None)
        if http is not None and getattr(http, "_HTTPClient__session", None) is session:
            return True
    return False


def _is_callback_path(route: Any) -> bool:
    path = getattr(route, "path", "")
    return isinstance(path, str) and path.startswith("/interactions/") and path.endswith("/callback")


async def _traced(
    original: Callable[..., Any],
    self: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    route: Any,
    kind: str,
    http_client: Any,
    make_span: bool,
) -> Any:
    info: RouteInfo | None = None
    with guard("rest.route"):
        info = _info_for(route, kind)
    if info is None:
        return await original(self, *args, **kwargs)

    span: Span = INVALID_SPAN
    recording = False
    ctx_token: Any = None
    if make_span:
        span, recording, ctx_token = _start(route, info, kwargs, http_client)
    if not recording and not info.is_callback:
        # sampled out: the span only carries context; no per-attempt bookkeeping
        try:
            return await original(self, *args, **kwargs)
        finally:
            _end(span, ctx_token)
    call = _Call(span, recording, info.webhook)
    call_token = _current.set(call)
    try:
        result = await original(self, *args, **kwargs)
    except asyncio.CancelledError:
        _current.reset(call_token)
        _end(span, ctx_token)
        raise
    except BaseException as exc:
        end_ns = time.time_ns()
        _current.reset(call_token)
        if isinstance(exc, Exception):
            with guard("rest.error"):
                if recording:
                    _finish(span, call, exc, route)
                if info.is_callback:
                    _report_callback(route, call, exc, kwargs, end_ns)
        _end(span, ctx_token, end_ns)
        raise
    end_ns = time.time_ns()
    _current.reset(call_token)
    with guard("rest.finish"):
        if recording:
            _finish(span, call, None, route)
        if info.is_callback:
            _report_callback(route, call, None, kwargs, end_ns)
    _end(span, ctx_token, end_ns)
    return result


def _start(route: Any, info: RouteInfo, kwargs: dict[str, Any], http_client: Any) -> tuple[Span, bool, Any]:
    """Start the CLIENT span and make it current with HTTP instrumentation suppressed:
    ``(span, recording, context token)``; whatever part failed is left out (guarded)."""
    span: Span = INVALID_SPAN
    recording = False
    ctx_token: Any = None
    with guard("rest.start"):
        span = _state.get_tracer().start_span(info.name, kind=SpanKind.CLIENT)
        recording = span.is_recording()
        if recording:
            _start_attributes(span, route, info, kwargs, http_client)
        ctx_token = otel_context.attach(
            otel_context.set_value(_SUPPRESS_HTTP_KEY, True, trace.set_span_in_context(span))
        )
    return span, recording, ctx_token


def _end(span: Span, ctx_token: Any, end_ns: int | None = None) -> None:
    if ctx_token is not None:
        otel_context.detach(ctx_token)
    if span is not INVALID_SPAN:
        span.end(end_time=end_ns)


def _info_for(route: Any, kind: str) -> RouteInfo | None:
    path = getattr(route, "path", None)
    method = getattr(route, "method", None)
    if not isinstance(path, str) or not isinstance(method, str):
        return None
    if kind == WEBHOOK:
        token = getattr(route, "webhook_token", None)
        if path.startswith("/interactions/"):
            note_interaction_token(token)
            kind = INTERACTION
        elif token is not None:
            register_secret(token)
            if is_interaction_token(token):
                kind = INTERACTION
    info = route_info(method, path, kind)
    if info.is_callback and kind == HTTP:  # a raw callback through HTTPClient: token only in the URL
        note_interaction_token(_callback_segment(route, 3))
    return info


def _callback_segment(route: Any, index: int) -> str | None:
    """Segment ``index`` of a callback URL path (2: the interaction id, 3: its token)."""
    url = getattr(route, "url", None)
    if not isinstance(url, str):
        return None
    marker = url.find("/interactions/")
    if marker < 0:
        return None
    parts = url[marker:].split("?", 1)[0].split("/")
    return parts[index] if len(parts) > index else None


def _start_attributes(
    span: Span, route: Any, info: RouteInfo, kwargs: dict[str, Any], http_client: Any
) -> None:
    secrets: list[str] = []
    token = getattr(route, "webhook_token", None)
    if isinstance(token, str):
        secrets.append(token)
    if http_client is not None:
        bot_token = getattr(http_client, "token", None)
        if isinstance(bot_token, str) and bot_token:
            register_secret(bot_token, bot=True)
    base = getattr(route, "BASE", "") or ""
    url = getattr(route, "url", "") or ""
    host, port, _origin = server_of(base if url.startswith(base) else url)
    attrs: dict[str, Any] = {
        A.HTTP_REQUEST_METHOD: info.method,
        A.URL_TEMPLATE: info.template,
        A.SERVER_ADDRESS: host,
        A.URL_FULL: full_url(url, base, info, kwargs.get("params"), secrets),
    }
    if port is not None:
        attrs[A.SERVER_PORT] = port
    if info.webhook:
        attrs[A.DISCORD_REST_WEBHOOK] = True
    span.set_attributes(attrs)


# --- the sync webhook adapter: see _rest_sync ---------------------------------------------------------


def _wrap_sync_adapter_request(original: Callable[..., Any]) -> Callable[..., Any]:
    from ._rest_sync import wrap_sync_adapter_request

    return wrap_sync_adapter_request(original)


# --- interaction acknowledgement -----------------------------------------------------------------

_record_callback: Any = None  # resolved lazily: otel_bot._interactions.record_callback, or False


def _callback_hook() -> Any:
    global _record_callback
    hook = _record_callback
    if hook is None:
        module = sys.modules.get("otel_bot._interactions")
        if module is None:
            try:
                module = importlib.import_module("otel_bot._interactions")
            except ImportError:
                module = None
        hook = getattr(module, "record_callback", None) or False
        if hook is not False:
            _record_callback = hook  # cache only a found hook: the module may arrive later
    return hook


def _report_callback(
    route: Any, call: _Call, exc: BaseException | None, kwargs: dict[str, Any], end_ns: int
) -> None:
    hook = _callback_hook()
    if not hook:
        return
    interaction_id = _as_int(getattr(route, "webhook_id", None))
    if interaction_id is None:
        interaction_id = _as_int(_callback_segment(route, 2))
    if interaction_id is None:
        return
    status = call.status
    if status is None:
        status = _as_int(getattr(exc, "status", None)) if exc is not None else None
    status = status or 0
    code = _discord_code(call, exc) if (exc is not None or status >= 400) else None
    hook(
        interaction_id,
        status=status,
        discord_code=code,
        end_ns=end_ns,
        callback_type=_callback_type(kwargs),
    )


def _callback_type(kwargs: dict[str, Any]) -> int | None:
    payload = kwargs.get("payload")  # the webhook adapter
    if payload is None:
        payload = kwargs.get("json")  # HTTPClient.request
    if isinstance(payload, dict):
        return _as_int(payload.get("type"))
    multipart = kwargs.get("multipart") or kwargs.get("form")
    if isinstance(multipart, list):
        for part in multipart:
            if isinstance(part, dict) and part.get("name") == "payload_json":
                value = part.get("value")
                if isinstance(value, (str, bytes)):
                    try:
                        parsed = json.loads(value)
                    except ValueError:
                        return None
                    if isinstance(parsed, dict):
                        return _as_int(parsed.get("type"))
    return None


# --- the patch table -------------------------------------------------------------------------------


PATCHES: tuple[Patch, ...] = (
    Patch(owner=module_owner("discord.http"), name="json_or_text", wrap=_wrap_json_or_text, group="rest"),
    Patch(
        owner=module_owner("discord.webhook.async_"),
        name="json_or_text",
        wrap=_wrap_json_or_text,
        group="rest",
    ),
    Patch(
        owner=attr_owner("discord.http", "HTTPClient"),
        name="request",
        wrap=_wrap_http_request,
        group="rest",
    ),
    Patch(
        owner=attr_owner("discord.webhook.async_", "AsyncWebhookAdapter"),
        name="request",
        wrap=_wrap_adapter_request,
        group="rest",
    ),
    Patch(
        owner=attr_owner("discord.webhook.sync", "WebhookAdapter"),
        name="request",
        wrap=_wrap_sync_adapter_request,
        group="rest",
    ),
)
"""The REST patches, in apply order; ``_instrument`` concatenates them into its one table."""
