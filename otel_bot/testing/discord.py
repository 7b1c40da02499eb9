"""An offline Discord: the REST API v10 on 127.0.0.1 plus a fake gateway, for real discord.py bots.

Usage::

    async with OfflineDiscord() as discord:
        bot = commands.Bot(command_prefix="!", intents=discord_py.Intents.default())
        await discord.login(bot)
        await discord.dispatch_ready(bot)
        discord.inject(bot, "INTERACTION_CREATE", discord.payloads.slash_command("ping"))
        req = await discord.wait_for_request("POST", CALLBACK)

While it runs, ``discord.http.Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` point at it;
both are restored exactly on exit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from otel_bot.testing.fake_gateway import FakeGateway
from otel_bot.testing.gateway import Payloads, World, inject
from otel_bot.testing.records import (
    CALLBACK,
    CHANNEL_MESSAGE,
    CHANNEL_MESSAGES,
    FOLLOWUP,
    FOLLOWUP_MESSAGE,
    JSON,
    ORIGINAL,
    TYPING,
    Fault,
    Handler,
    InteractionRecord,
    MultipartPart,
    RecordedRequest,
    _Bucket,
    _compile,
    _error,
    _loads,
    _not_found,
    _parse_multipart,
    _Reply,
)
from otel_bot.testing.rest_routes import RestRoutes
from otel_bot.testing.snowflakes import snowflake, snowflake_time_ms

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
    "OfflineDiscord",
    "RecordedRequest",
]


class OfflineDiscord(RestRoutes):
    """A fake Discord (REST API v10 + gateway websocket) on 127.0.0.1, for real discord.py clients.

    Use as ``async with OfflineDiscord() as discord: ...`` (or ``await start()`` / ``await stop()``).

    Parameters:
        world: the application, bot user, guild, channel and member payloads refer to.
        token: when set, requests must carry ``Authorization: Bot <token>`` (else 401).
        default_latency_ms: delay added to every response (overridable per route).
        bucket_limit / bucket_window_s: the per-route rate-limit window advertised in
            ``X-RateLimit-*`` headers (requests are counted per bucket and major parameters).
        heartbeat_interval_ms: the gateway HELLO's heartbeat interval.
    """

    def __init__(
        self,
        world: World | None = None,
        *,
        token: str | None = None,
        default_latency_ms: float = 0.0,
        bucket_limit: int = 50,
        bucket_window_s: float = 1.0,
        heartbeat_interval_ms: int = 41250,
    ) -> None:
        self.world = world or World()
        self.token = token
        self.default_latency_ms = default_latency_ms
        self.bucket_limit = bucket_limit
        self.bucket_window_s = bucket_window_s
        self.requests: list[RecordedRequest] = []
        self.interactions: dict[int, InteractionRecord] = {}
        self.messages: dict[int, dict[int, JSON]] = {}
        """Stored channel messages: channel id -> message id -> payload."""
        self.global_commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}
        self.webhooks: dict[str, JSON] = {}
        """Channel webhooks by token (see :meth:`create_webhook`)."""
        self.dm_channels: dict[int, JSON] = {}
        self.payloads = Payloads(self.world, clock=self.now_ms, on_interaction=self.register_interaction)
        self.gateway = FakeGateway(self, heartbeat_interval_ms=heartbeat_interval_ms)
        self._clock_offset_ms = 0.0
        self._latency: dict[tuple[str | None, str | None], float] = {}
        self._faults: list[Fault] = []
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._by_token: dict[str, InteractionRecord] = {}
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port: int | None = None
        self._saved: list[tuple[Any, str, Any]] = []
        self._routes: list[tuple[str, str, re.Pattern[str], Handler]] = []
        self._build_routes()

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> OfflineDiscord:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server on an ephemeral 127.0.0.1 port and point discord.py at it."""
        if self._runner is not None:
            raise RuntimeError("OfflineDiscord is already running")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_route("*", "/api/v{version:\\d+}{tail:/.*}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._handle_unversioned)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()
        self._port = int(self._runner.addresses[0][1])
        self._patch()

    async def stop(self) -> None:
        """Close gateway sessions, stop the server and restore discord.py's base URLs."""
        self._unpatch()
        await self.gateway.close_all()
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._site = None

    def _patch(self) -> None:
        import discord.gateway
        import discord.http
        import discord.webhook.async_
        import yarl

        targets: list[tuple[Any, str, Any]] = [
            (discord.http.Route, "BASE", self.api_base),
            (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.gateway_url)),
        ]
        webhook_route = discord.webhook.async_.Route
        if webhook_route is not discord.http.Route:
            targets.append((webhook_route, "BASE", self.api_base))
        for owner, name, value in targets:
            self._saved.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, value)

    def _unpatch(self) -> None:
        while self._saved:
            owner, name, value = self._saved.pop()
            setattr(owner, name, value)

    @property
    def port(self) -> int:
        """The server's TCP port."""
        if self._port is None:
            raise RuntimeError("OfflineDiscord is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """The REST base discord.py uses while the fake runs (``.../api/v10``)."""
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The fake gateway's websocket URL."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def application_id(self) -> int:
        """The fake application's id (also the bot user's id)."""
        return self.world.application_id

    # ------------------------------------------------------------------ clock
    def now_ms(self) -> float:
        """The fake's clock in Unix milliseconds (wall clock plus :meth:`advance` offsets)."""
        return time.time() * 1000.0 + self._clock_offset_ms

    def advance(self, ms: float) -> None:
        """Move the fake's clock forward by ``ms`` (e.g. to expire interactions without waiting)."""
        self._clock_offset_ms += ms

    # ------------------------------------------------------------------ configuration
    def set_latency(self, ms: float, method: str | None = None, route: str | None = None) -> None:
        """Delay responses by ``ms``: for ``method`` + route template, every method of a template
        (``method=None``), every route of a method (``route=None``), or the default (both None)."""
        if method is None and route is None:
            self.default_latency_ms = ms
        else:
            self._latency[(method.upper() if method else None, route)] = ms

    def _latency_for(self, method: str, template: str | None) -> float:
        for key in ((method, template), (None, template), (method, None)):
            if key in self._latency:
                return self._latency[key]
        return self.default_latency_ms

    def rate_limit(
        self,
        method: str | None = None,
        route: str | None = None,
        *,
        retry_after: float = 0.05,
        times: int = 1,
        is_global: bool = False,
        scope: str | None = None,
        via: bool = True,
    ) -> Fault:
        """Answer the next ``times`` matching requests with 429 (``route`` None: any route).

        ``via=False`` leaves out the ``Via`` header, which discord.py reads as a Cloudflare ban.
        """
        fault = Fault(
            method.upper() if method else None,
            route,
            429,
            times,
            retry_after=retry_after,
            is_global=is_global,
            scope=scope or ("global" if is_global else "user"),
            via=via,
        )
        self._faults.append(fault)
        return fault

    def server_error(
        self,
        method: str | None = None,
        route: str | None = None,
        *,
        status: int = 500,
        times: int = 1,
        body: Any = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with a 5xx."""
        if not 500 <= status <= 599:
            raise ValueError("server_error needs a 5xx status")
        fault = Fault(method.upper() if method else None, route, status, times, body=body)
        self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Drop every pending :meth:`rate_limit` / :meth:`server_error` fault."""
        self._faults.clear()

    # ------------------------------------------------------------------ assertions
    def requests_for(self, method: str | None = None, route: str | None = None) -> list[RecordedRequest]:
        """Recorded requests matching ``method`` and route template (None matches anything)."""
        m = method.upper() if method else None
        return [
            r for r in self.requests if (m is None or r.method == m) and (route is None or r.route == route)
        ]

    def clear_requests(self) -> None:
        """Forget the recorded requests (e.g. the login requests before the part under test)."""
        self.requests.clear()

    async def wait_for_requests(self, n: int, *, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least ``n`` requests were answered; returns all recorded requests."""
        await self._wait(
            lambda: len([r for r in self.requests if r.status]) >= n,
            timeout,
            f"{n} requests (have {len(self.requests)})",
        )
        return list(self.requests)

    async def wait_for_request(
        self, method: str | None = None, route: str | None = None, *, count: int = 1, timeout: float = 5.0
    ) -> RecordedRequest:
        """Wait until ``count`` answered requests match; returns the ``count``-th one."""

        def matching() -> list[RecordedRequest]:
            return [r for r in self.requests_for(method, route) if r.status]

        await self._wait(lambda: len(matching()) >= count, timeout, f"{count} x {method} {route}")
        return matching()[count - 1]

    async def _wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        if pred():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            seen = ", ".join(r.route_key for r in self.requests) or "none"
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; received: {seen}") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _notify(self) -> None:
        for pred, fut in list(self._waiters):
            if not fut.done() and pred():
                fut.set_result(None)

    # ------------------------------------------------------------------ bots
    async def login(self, client: Any, token: str | None = None) -> None:
        """``await client.login(token)`` against the fake (a real login: HTTP session, app info)."""
        await client.login(token or self.token or f"offline.{secrets.token_urlsafe(24)}")

    def inject(self, client: Any, event: str, payload: JSON) -> None:
        """Dispatch ``payload`` into ``client`` through its connection's parsers, as the gateway does."""
        if event == "INTERACTION_CREATE":
            self.register_interaction(payload)
        inject(client, event, payload)

    async def dispatch_ready(
        self,
        client: Any,
        guilds: Sequence[JSON] | None = None,
        *,
        timeout: float = 5.0,
        guild_ready_timeout: float = 0.01,
    ) -> None:
        """Inject READY and a GUILD_CREATE per guild (default: the world's guild) and wait until
        the client is ready, so its cache holds the guild, channel and member objects.

        discord.py waits ``guild_ready_timeout`` after the last GUILD_CREATE before READY; the
        fake shortens that wait for the call and then restores the client's setting.
        """
        guild_list = [self.world.guild()] if guilds is None else list(guilds)
        state = client._connection
        saved = state.guild_ready_timeout
        state.guild_ready_timeout = guild_ready_timeout
        try:
            ready = self.payloads.ready(
                guild_ids=[int(g["id"]) for g in guild_list], resume_gateway_url=self.gateway_url
            )
            inject(client, "READY", ready)
            for guild in guild_list:
                inject(client, "GUILD_CREATE", guild)
            await asyncio.wait_for(client.wait_until_ready(), timeout)
        finally:
            state.guild_ready_timeout = saved

    async def gateway_dispatch(self, event: str, payload: JSON) -> int:
        """Send a dispatch through every identified gateway websocket; returns how many got it."""
        if event == "INTERACTION_CREATE":
            self.register_interaction(payload)
        return await self.gateway.dispatch(event, payload)

    def register_interaction(self, payload: JSON) -> InteractionRecord:
        """Make the fake know an interaction (id, token, type, creation time, message)."""
        iid = int(payload["id"])
        rec = self.interactions.get(iid)
        if rec is None:
            rec = InteractionRecord(
                id=iid,
                token=str(payload["token"]),
                type=int(payload.get("type", 2)),
                created_ms=snowflake_time_ms(iid),
                payload=payload,
            )
            self.interactions[iid] = rec
            self._by_token[rec.token] = rec
        return rec

    def interaction(self, interaction_id: int | str) -> InteractionRecord:
        """The record of one interaction (ack type/time, original response, followups)."""
        return self.interactions[int(interaction_id)]

    # ------------------------------------------------------------------ HTTP plumbing
    def _add(self, method: str, template: str, handler: Handler) -> None:
        self._routes.append((method, template, _compile(template), handler))

    def _match(self, method: str, path: str) -> tuple[str | None, dict[str, str], Handler | None, bool]:
        """(template, params, handler, path_known)."""
        path_known = False
        for m, template, pattern, handler in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            if m == method:
                return template, found.groupdict(), handler, True
            path_known = True
        if path_known:
            for _, template, pattern, _ in self._routes:
                found = pattern.match(path)
                if found is not None:
                    return template, found.groupdict(), None, True
        return None, {}, None, False

    async def _handle_unversioned(self, request: web.Request) -> web.StreamResponse:
        return self._respond(_not_found(), {})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = self.now_ms()
        method = request.method.upper()
        path = "/" + request.match_info["tail"].lstrip("/")
        body = await request.read()
        parts: list[MultipartPart] = []
        payload: Any = None
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            parts = await _parse_multipart(request, body)
            for part in parts:
                if part.name == "payload_json":
                    payload = _loads(part.data)
        elif body:
            payload = _loads(body)
        template, params, handler, known = self._match(method, path)
        rec = RecordedRequest(
            method=method,
            path=path,
            route=template,
            params=params,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            json=payload,
            parts=parts,
            received_ms=received,
            api_version=int(request.match_info["version"]),
        )
        self.requests.append(rec)
        try:
            reply = await self._process(rec, handler, known)
        except Exception as exc:  # a bug in the fake must not hang the bot: answer like Discord's 500
            reply = _error(500, 0, f"500: Internal Server Error ({type(exc).__name__}: {exc})")
        latency = self._latency_for(method, template)
        if latency > 0:
            await asyncio.sleep(latency / 1000.0)
        headers = self._ratelimit_headers(rec, reply) if template is not None else {}
        headers.update(reply.headers)
        response = self._respond(reply, headers)
        rec.status = reply.status
        rec.response = reply.body
        rec.response_headers = CIMultiDict(response.headers)
        self._notify()
        return response

    async def _process(self, rec: RecordedRequest, handler: Handler | None, known: bool) -> _Reply:
        if rec.api_version not in (9, 10):
            return _error(400, 50041, "Invalid API version provided.")
        if not known:
            return _not_found()
        if handler is None:
            return _error(405, 0, "405: Method Not Allowed")
        for fault in self._faults:
            if fault.matches(rec.method, rec.route):
                fault.hits += 1
                return self._fault_reply(fault)
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        result = handler(rec, rec.params)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, _Reply)
        return result

    def _authorized(self, rec: RecordedRequest) -> bool:
        if "interaction_token" in rec.params:
            return True  # webhook/interaction routes are authenticated by the token in the path
        auth = rec.headers.get("Authorization", "")
        if not auth.startswith("Bot ") or len(auth) <= 4:
            return False
        return self.token is None or auth == f"Bot {self.token}"

    def _fault_reply(self, fault: Fault) -> _Reply:
        if fault.status != 429:
            body = (
                fault.body
                if fault.body is not None
                else {"message": f"{fault.status}: Server Error", "code": 0}
            )
            return _Reply(fault.status, body)
        headers = {
            "Retry-After": str(max(1, math.ceil(fault.retry_after))),
            "X-RateLimit-Scope": fault.scope,
        }
        if fault.via:
            headers["Via"] = "1.1 google"
        if fault.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": fault.retry_after,
            "global": fault.is_global,
            "code": 0,
        }
        return _Reply(429, body, headers)

    def _ratelimit_headers(self, rec: RecordedRequest, reply: _Reply) -> dict[str, str]:
        assert rec.route is not None
        bucket_hash = hashlib.sha1(f"{rec.method} {rec.route}".encode()).hexdigest()[:32]
        if reply.status == 429 and reply.headers.get("X-RateLimit-Global") == "true":
            return {"Via": "1.1 google"} if "Via" in reply.headers else {}
        p = rec.params
        major = ":".join(
            p.get(k, "")
            for k in (
                "channel_id",
                "guild_id",
                "interaction_id",
                "interaction_token",
                "application_id" if "interaction_token" in p else "",
            )
        )
        now = time.monotonic()
        bucket = self._buckets.setdefault((bucket_hash, major), _Bucket())
        if now >= bucket.reset_at:
            bucket.count = 0
            bucket.reset_at = now + self.bucket_window_s
        if reply.status != 429:
            bucket.count += 1
        remaining = max(0, self.bucket_limit - bucket.count)
        if reply.status == 429:
            remaining = 0
        reset_after = max(0.0, bucket.reset_at - now)
        headers = {
            "X-RateLimit-Limit": str(self.bucket_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash,
        }
        if reply.status != 429 or "Via" in reply.headers:
            headers["Via"] = "1.1 google"
        return headers

    @staticmethod
    def _respond(reply: _Reply, headers: dict[str, str]) -> web.Response:
        if reply.status == 204 or reply.body is None:
            return web.Response(status=204 if reply.status < 300 else reply.status, headers=headers)
        data = json.dumps(reply.body, separators=(",", ":")).encode()
        headers = {**headers, "Content-Type": "application/json"}
        return web.Response(status=reply.status, body=data, headers=headers)

    # ------------------------------------------------------------------ conveniences
    def stored_messages(self, channel_id: int | None = None) -> list[JSON]:
        """Messages created through the channel routes (default: the world's channel), oldest first."""
        cid = self.world.channel_id if channel_id is None else channel_id
        return sorted(self.messages.get(cid, {}).values(), key=lambda m: int(m["id"]))

    def seed_message(self, payload: JSON) -> JSON:
        """Store a message (e.g. a component message) so GET/PATCH/DELETE on it work."""
        self.messages.setdefault(int(payload["channel_id"]), {})[int(payload["id"])] = payload
        return payload

    def route_keys(self, requests: Iterable[RecordedRequest] | None = None) -> list[str]:
        """``["GET /users/@me", ...]`` for the recorded (or given) requests, in order."""
        return [r.route_key for r in (self.requests if requests is None else requests)]

    @staticmethod
    def snowflake(at_ms: float | None = None) -> int:
        """A unique snowflake created at ``at_ms`` (Unix ms)."""
        return snowflake(at_ms)

    @staticmethod
    def snowflake_time_ms(snowflake_id: int | str) -> int:
        """The Unix-ms creation time encoded in a snowflake."""
        return snowflake_time_ms(snowflake_id)
