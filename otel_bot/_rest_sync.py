"""Discord REST spans for ``discord.SyncWebhook`` (the ``requests``-based webhook adapter).

Same spans, attributes and events as :mod:`otel_bot._rest` (whose helpers this reuses). The sync
retry loop in ``discord.webhook.sync.WebhookAdapter.request`` has no ``json_or_text`` to hook, so
while a recording span is open the adapter is handed a thin proxy of its session whose
``request`` forwards to the real one and reads the status, headers and -- for errors only -- the
body ``requests`` already downloaded. discord.py only ever calls ``session.request`` on it; every
other attribute is forwarded. Calls are traced inside a unit of work, or whenever no client filter
applies (the zero-code instrumentor, or settings activated without registered clients).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from . import _state
from ._guard import guard
from ._rest import _Call, _end, _finish, _info_for, _roots_module, _start
from ._routes import WEBHOOK, RouteInfo

__all__ = ["wrap_sync_adapter_request"]


class _SyncSession:
    """Stands in for the ``requests`` session discord.py's sync adapter calls ``.request`` on, to
    see each attempt's response (the sync retry loop has no ``json_or_text`` to hook). The
    response object is the real one; the body was already downloaded by ``requests``."""

    __slots__ = ("_call", "_session")

    def __init__(self, session: Any, call: _Call) -> None:
        self._session = session
        self._call = call

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = self._session.request(*args, **kwargs)
        with guard("rest.response"):
            status = int(response.status_code)
            data: Any = None
            if status >= 400 and response.headers.get("Content-Type") == "application/json":
                try:
                    data = json.loads(response.content.decode("utf-8", "replace"))
                except ValueError:
                    data = None
            self._call.on_response(status, response.headers, data)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def wrap_sync_adapter_request(original: Callable[..., Any]) -> Callable[..., Any]:
    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        settings = _state.settings()
        if settings is None or not settings.trace_rest or _state.is_suppressed() or not _sync_enabled():
            return original(self, *args, **kwargs)
        return _traced_sync(original, self, args, kwargs)

    return request


def _sync_enabled() -> bool:
    """SyncWebhook calls have no client: traced inside a unit of work, or when every client is."""
    roots = _roots_module()
    if roots is None or roots.FLAGS.all_clients or not roots.CLIENTS:
        return True
    return _state.get_unit() is not None


def _traced_sync(
    original: Callable[..., Any], self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    route = args[0] if args else kwargs.get("route")
    info: RouteInfo | None = None
    with guard("rest.route"):
        info = _info_for(route, WEBHOOK)
    if info is None:
        return original(self, *args, **kwargs)
    span, recording, ctx_token = _start(route, info, kwargs, None)
    call = _Call(span, recording, True)
    if recording:
        if len(args) > 1:
            args = (args[0], _SyncSession(args[1], call), *args[2:])
        elif "session" in kwargs:
            kwargs = {**kwargs, "session": _SyncSession(kwargs["session"], call)}
    try:
        result = original(self, *args, **kwargs)
    except BaseException as exc:
        end_ns = time.time_ns()
        if recording and isinstance(exc, Exception):
            with guard("rest.error"):
                _finish(span, call, exc, route)
        _end(span, ctx_token, end_ns)
        raise
    end_ns = time.time_ns()
    if recording:
        with guard("rest.finish"):
            _finish(span, call, None, route)
    _end(span, ctx_token, end_ns)
    return result
