"""A fake Discord gateway websocket (v10, JSON encoding).

Transport compression as the client asks for it in the URL: ``compress=zlib-stream`` (one zlib
stream, every frame ending in a Z_SYNC_FLUSH, as Discord sends it) or ``compress=zstd-stream``
(when the ``zstandard`` package is installed); otherwise plain text frames.

HELLO (op 10) on connect; IDENTIFY (op 2) -> READY + one GUILD_CREATE per guild; RESUME (op 6) ->
RESUMED; HEARTBEAT (op 1) -> HEARTBEAT_ACK (op 11); REQUEST_GUILD_MEMBERS (op 8) ->
GUILD_MEMBERS_CHUNK. Dispatches can be pushed to every identified session.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from otel_bot.testing.discord import OfflineDiscord

__all__ = ["FakeGateway", "GatewaySession"]

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE, RESUME, RECONNECT, REQUEST_MEMBERS, INVALID, HELLO, ACK = (
    0,
    1,
    2,
    3,
    4,
    6,
    7,
    8,
    9,
    10,
    11,
)


@dataclass
class GatewaySession:
    """One websocket connection to the fake gateway."""

    ws: web.WebSocketResponse
    query: dict[str, str]
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    sequence: int = 0
    identify: dict[str, Any] | None = None
    resumed: bool = False
    heartbeats: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    """The close code: the server's own when the fake closed it, else the client's."""
    compression: str | None = None
    """``zlib-stream``, ``zstd-stream`` or None (plain text frames)."""
    _compress: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        wanted = self.query.get("compress")
        if wanted == "zlib-stream":
            zobj = zlib.compressobj()
            self._compress = lambda raw: zobj.compress(raw) + zobj.flush(zlib.Z_SYNC_FLUSH)
            self.compression = wanted
        elif wanted == "zstd-stream":
            try:
                import zstandard  # type: ignore[import-not-found]
            except ImportError:
                return
            cobj = zstandard.ZstdCompressor().compressobj()
            self._compress = lambda raw: cobj.compress(raw) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            self.compression = wanted

    @property
    def identified(self) -> bool:
        """True after IDENTIFY or RESUME."""
        return self.identify is not None or self.resumed


class FakeGateway:
    """The gateway half of :class:`OfflineDiscord` (served at ``/gateway`` on the same port)."""

    def __init__(self, discord: OfflineDiscord, *, heartbeat_interval_ms: int = 41250) -> None:
        self.discord = discord
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: list[GatewaySession] = []
        """Every connection so far (open and closed), in order."""
        self.token_check = True
        self._changed = asyncio.Condition()

    @property
    def open_sessions(self) -> list[GatewaySession]:
        """Connections that are still open."""
        return [s for s in self.sessions if s.close_code is None and not s.ws.closed]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler: one websocket session."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        session = GatewaySession(ws=ws, query=dict(request.query))
        self.sessions.append(session)
        await self._send(
            session,
            {
                "op": HELLO,
                "d": {
                    "heartbeat_interval": self.heartbeat_interval_ms,
                    "_trace": ['["gateway-prd-offline",{"micros":0}]'],
                },
                "s": None,
                "t": None,
            },
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.ERROR:
                        break
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await self._close(session, 4002, b"Error while decoding payload.")
                    break
                session.received.append(frame)
                await self._on_frame(session, frame)
                await self._notify()
        finally:
            if session.close_code is None:  # closed by the client (else we recorded our own code)
                session.close_code = ws.close_code if ws.close_code is not None else 1000
            await self._notify()
        return ws

    async def _close(self, session: GatewaySession, code: int, reason: bytes = b"") -> None:
        session.close_code = code
        await session.ws.close(code=code, message=reason)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _send(self, session: GatewaySession, frame: dict[str, Any]) -> None:
        session.sent.append(frame)
        if session.ws.closed:
            return
        text = json.dumps(frame, separators=(",", ":"))
        if session._compress is not None:
            await session.ws.send_bytes(session._compress(text.encode()))
        else:
            await session.ws.send_str(text)

    async def _dispatch_to(self, session: GatewaySession, event: str, data: dict[str, Any]) -> None:
        session.sequence += 1
        await self._send(session, {"op": DISPATCH, "t": event, "s": session.sequence, "d": data})

    async def _on_frame(self, session: GatewaySession, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data = frame.get("d")
        d = self.discord
        if op == HEARTBEAT:
            session.heartbeats += 1
            await self._send(session, {"op": ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            token = str((data or {}).get("token", ""))
            if session.identified:
                await self._close(session, 4005, b"Already authenticated.")
                return
            if not token or (d.token is not None and token.removeprefix("Bot ") != d.token):
                await self._close(session, 4004, b"Authentication failed.")
                return
            session.identify = data
            guilds = [d.world.guild()]
            ready = d.payloads.ready(
                guild_ids=[int(g["id"]) for g in guilds], resume_gateway_url=d.gateway_url
            )
            ready["session_id"] = session.session_id
            await self._dispatch_to(session, "READY", ready)
            for guild in guilds:
                await self._dispatch_to(session, "GUILD_CREATE", guild)
        elif op == RESUME:
            session.resumed = True
            session.sequence = int((data or {}).get("seq") or 0)
            await self._dispatch_to(session, "RESUMED", {"_trace": ['["gateway-prd-offline",{"micros":0}]']})
        elif op == REQUEST_MEMBERS:
            request = data if isinstance(data, dict) else {}
            guild_id = str(request.get("guild_id"))
            guild = d.world.guild()
            members = guild["members"] if guild["id"] == guild_id else []
            chunk: dict[str, Any] = {
                "guild_id": guild_id,
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if request.get("nonce"):
                chunk["nonce"] = request["nonce"]
            await self._dispatch_to(session, "GUILD_MEMBERS_CHUNK", chunk)
        # presence (3) and voice state (4) updates are accepted silently

    # ------------------------------------------------------------------ test controls
    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a dispatch to every open, identified session; returns the number of sessions."""
        targets = [s for s in self.open_sessions if s.identified]
        for session in targets:
            await self._dispatch_to(session, event, data)
        return len(targets)

    async def send_op(self, op: int, data: Any = None) -> None:
        """Send a raw opcode (e.g. 7 RECONNECT, 9 INVALID_SESSION) to every open session."""
        for session in self.open_sessions:
            await self._send(session, {"op": op, "d": data, "s": None, "t": None})

    async def wait_for_identify(self, count: int = 1, *, timeout: float = 5.0) -> GatewaySession:
        """Wait until ``count`` sessions have identified; returns the ``count``-th."""
        await self._wait(lambda: len([s for s in self.sessions if s.identify is not None]) >= count, timeout)
        return [s for s in self.sessions if s.identify is not None][count - 1]

    async def wait_closed(self, *, timeout: float = 5.0) -> None:
        """Wait until no session is open."""
        await self._wait(lambda: not self.open_sessions, timeout)

    async def _wait(self, pred: Any, timeout: float) -> None:
        async def waiter() -> None:
            async with self._changed:
                await self._changed.wait_for(pred)

        try:
            await asyncio.wait_for(waiter(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"fake gateway: condition not met within {timeout}s") from None

    async def close_all(self, code: int = 1001) -> None:
        """Close every open session (server side)."""
        for session in self.open_sessions:
            await self._close(session, code)
