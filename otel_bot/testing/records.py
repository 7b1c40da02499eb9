"""Records, faults and small helpers shared by the offline Discord's modules."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

__all__ = [
    "CALLBACK",
    "CHANNEL_MESSAGE",
    "CHANNEL_MESSAGES",
    "FOLLOWUP",
    "FOLLOWUP_MESSAGE",
    "ORIGINAL",
    "TYPING",
    "Fault",
    "InteractionRecord",
    "MultipartPart",
    "RecordedRequest",
]

JSON = dict[str, Any]

#: Route templates (Discord documentation names), for ``requests_for`` / ``wait_for_request``.
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"
FOLLOWUP = "/webhooks/{application_id}/{interaction_token}"
ORIGINAL = "/webhooks/{application_id}/{interaction_token}/messages/@original"
FOLLOWUP_MESSAGE = "/webhooks/{application_id}/{interaction_token}/messages/{message_id}"
CHANNEL_MESSAGES = "/channels/{channel_id}/messages"
CHANNEL_MESSAGE = "/channels/{channel_id}/messages/{message_id}"
TYPING = "/channels/{channel_id}/typing"

INTERACTION_WINDOW_MS = 3000
TOKEN_LIFETIME_MS = 15 * 60 * 1000

# Interaction callback types
_PONG, _MESSAGE, _DEFERRED_MESSAGE, _DEFERRED_UPDATE, _UPDATE, _AUTOCOMPLETE, _MODAL = 1, 4, 5, 6, 7, 8, 9
_EPHEMERAL = 1 << 6
_LOADING = 1 << 7


@dataclass
class MultipartPart:
    """One part of a multipart/form-data request body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def text(self) -> str:
        """The part decoded as UTF-8."""
        return self.data.decode("utf-8", "replace")


@dataclass
class RecordedRequest:
    """One request the offline Discord received, with its response."""

    method: str
    path: str
    """The path below the API base, e.g. ``/channels/123/messages``."""
    route: str | None
    """The matched route template, e.g. ``/channels/{channel_id}/messages`` (None if unknown)."""
    params: dict[str, str]
    """Values of the template's ``{placeholders}``."""
    query: dict[str, str]
    headers: CIMultiDict[str]
    """Every request header (case-insensitive keys), including ``Authorization``."""
    body: bytes
    json: Any
    """The JSON body; for multipart requests the parsed ``payload_json`` part."""
    parts: list[MultipartPart]
    received_ms: float
    """The fake's clock (``now_ms()``) when the request arrived."""
    api_version: int = 10
    status: int = 0
    response: Any = None
    response_headers: CIMultiDict[str] = field(default_factory=CIMultiDict)

    @property
    def route_key(self) -> str:
        """``"METHOD /template"`` (or the raw path for unknown routes)."""
        return f"{self.method} {self.route or self.path}"

    @property
    def files(self) -> list[MultipartPart]:
        """The multipart parts that carry files."""
        return [p for p in self.parts if p.filename is not None]

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.route_key} -> {self.status}>"


@dataclass
class Fault:
    """An injected failure: the next ``times`` matching requests get ``status`` (429 or 5xx)."""

    method: str | None
    route: str | None
    status: int
    times: int
    retry_after: float = 0.0
    is_global: bool = False
    scope: str = "user"
    via: bool = True
    body: Any = None
    hits: int = 0

    def matches(self, method: str, route: str | None) -> bool:
        return (
            self.hits < self.times
            and (self.method is None or self.method == method)
            and (self.route is None or self.route == route)
        )


@dataclass
class InteractionRecord:
    """What the fake knows about one interaction."""

    id: int
    token: str
    type: int
    created_ms: int
    payload: JSON | None = None
    ack_type: int | None = None
    ack_ms: float | None = None
    original: JSON | None = None
    followups: list[JSON] = field(default_factory=list)


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[RecordedRequest, dict[str, str]], "_Reply | Awaitable[_Reply]"]


def _error(status: int, code: int, message: str, errors: JSON | None = None) -> _Reply:
    body: JSON = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return _Reply(status, body)


def _not_found() -> _Reply:
    return _error(404, 0, "404: Not Found")


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


class _Bucket:
    __slots__ = ("count", "reset_at")

    def __init__(self) -> None:
        self.count = 0
        self.reset_at = 0.0


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


async def _parse_multipart(request: web.Request, body: bytes) -> list[MultipartPart]:
    """Parse multipart/form-data from the already-read ``body``."""
    import email.parser
    import email.policy

    ctype = request.headers.get("Content-Type", "")
    raw = b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts: list[MultipartPart] = []
    if not msg.is_multipart():
        return parts
    for part in msg.iter_parts():
        disposition = part.get("Content-Disposition", "")
        params = dict(part.get_params(header="content-disposition") or [])
        name = params.get("name", "")
        filename = params.get("filename")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        del disposition
        parts.append(
            MultipartPart(
                name=str(name),
                filename=str(filename) if filename is not None else None,
                content_type=part.get_content_type() if part.get("Content-Type") else None,
                data=data,
            )
        )
    return parts
