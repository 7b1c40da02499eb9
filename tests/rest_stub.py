"""A scripted Discord REST stub on loopback for the REST span tests (transport edge only).

Real discord.py ``HTTPClient`` and ``AsyncWebhookAdapter`` talk to it over real HTTP; each test
scripts the responses of the routes it cares about and reads back what reached the server.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
from aiohttp import web
from discord.http import HTTPClient, Route

from otel_bot import _patching, _rest, _state
from otel_bot._config import Settings

# Canaries: shaped like the real thing, so shape-based redaction is exercised too.
BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GcAnRy.canaryBotTokenSecretValue_0123456789abcd"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmNhbmFyeUludGVyYWN0aW9uVG9rZW5TZWNyZXQ"
PLAIN_INTERACTION_TOKEN = "canary-plain-interaction-token-0000"  # no base64 shape: classified by callback
WEBHOOK_TOKEN = "canaryWebhookTokenSecret_ABCdef0123456789xyz"
CANARIES = (BOT_TOKEN, INTERACTION_TOKEN, PLAIN_INTERACTION_TOKEN, WEBHOOK_TOKEN)

APP_ID = 111111111111111111
CHANNEL_ID = 222222222222222222
INTERACTION_ID = 333333333333333333
WEBHOOK_ID = 444444444444444444
MESSAGE_ID = 555555555555555555


def message_payload(content: str = "hi", *, webhook_id: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(MESSAGE_ID),
        "channel_id": str(CHANNEL_ID),
        "type": 0,
        "content": content,
        "author": {"id": str(APP_ID), "username": "bot", "discriminator": "0", "avatar": None},
        "attachments": [],
        "embeds": [],
        "mentions": [],
        "mention_roles": [],
        "pinned": False,
        "mention_everyone": False,
        "tts": False,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "flags": 0,
        "components": [],
    }
    if webhook_id is not None:
        payload["webhook_id"] = str(webhook_id)
    return payload


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str -> text/plain; None -> default for the route
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def key(self) -> tuple[Any, ...]:
        return (self.method, self.path, self.query, self.headers, self.body)


class StubDiscord:
    """Scripted replies per (method, path); everything else answers 200 with a message payload."""

    def __init__(self) -> None:
        self.scripts: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self.received: list[Received] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    def script(self, method: str, path: str, *replies: Reply) -> None:
        self.scripts[(method, path)].extend(replies)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path.removeprefix("/api/v10")
        headers = tuple(sorted((k, v) for k, v in request.headers.items() if k.lower() not in {"host"}))
        self.received.append(Received(request.method, path, tuple(request.query.items()), headers, body))
        queue = self.scripts.get((request.method, path))
        reply = queue.popleft() if queue else Reply()
        body_out = reply.body
        if body_out is None:
            if path == "/users/@me":
                body_out = {"id": str(APP_ID), "username": "bot", "discriminator": "0", "avatar": None}
            elif reply.status == 204:
                return web.Response(status=204, headers=reply.headers)
            elif path.endswith("/callback"):
                return web.Response(status=204, headers=reply.headers)
            else:
                body_out = message_payload()
        if isinstance(body_out, str):
            return web.Response(status=reply.status, text=body_out, headers=reply.headers)
        # exactly "application/json": discord.py's json_or_text compares the header verbatim
        return web.Response(
            status=reply.status,
            body=json.dumps(body_out).encode(),
            headers={"Content-Type": "application/json", **reply.headers},
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def rate_limited(retry_after: float = 0.01, *, is_global: bool = False, scope: str = "user") -> Reply:
    return Reply(
        429,
        {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": is_global,
            "code": 0,
        },
        {
            "Via": "1.1 google",
            "Retry-After": "1",
            "X-RateLimit-Scope": scope,
            "X-RateLimit-Bucket": "b1e2c3k4",
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": str(retry_after),
        },
    )


def ok_with_limits(body: Any = None, *, remaining: int = 4) -> Reply:
    return Reply(
        200,
        body,
        {
            "X-RateLimit-Bucket": "b1e2c3k4",
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset-After": "1.5",
        },
    )


@asynccontextmanager
async def stub_discord() -> AsyncIterator[StubDiscord]:
    stub = StubDiscord()
    await stub.start()
    old_base = Route.BASE
    Route.BASE = stub.base
    try:
        yield stub
    finally:
        Route.BASE = old_base
        await stub.stop()


@asynccontextmanager
async def bot_http(token: str = BOT_TOKEN) -> AsyncIterator[HTTPClient]:
    """A real, logged-in discord.py HTTPClient (its login GET /users/@me hits the stub)."""
    http = HTTPClient(asyncio.get_running_loop())
    await http.static_login(token)
    try:
        yield http
    finally:
        await http.close()


@asynccontextmanager
async def webhook_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adapter() -> Any:
    return discord.webhook.async_.async_context.get()


@contextmanager
def instrumented(settings: Settings | None = None) -> Iterator[list[_patching.Applied]]:
    """Apply the REST patches with active settings; revert and deactivate afterwards.

    Every client counts as instrumented meanwhile (as under the zero-code instrumentor), so a
    client left registered by another test cannot filter these requests out."""
    from otel_bot import _roots

    all_clients = _roots.FLAGS.all_clients
    _roots.FLAGS.all_clients = True
    _state.activate(settings or Settings())
    applied = _patching.apply(_rest.PATCHES)
    try:
        yield applied
    finally:
        _patching.revert(applied)
        _state.deactivate()
        _roots.FLAGS.all_clients = all_clients
