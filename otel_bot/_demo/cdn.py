"""A loopback stand-in for Discord's attachment CDN, so uploaded replays can be downloaded.

``Attachment.read()`` fetches ``attachment.url`` with the bot's HTTP session; the simulated
players' attachments point here.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aiohttp import web

from ..testing import snowflake


class FakeCDN:
    """Serves registered blobs at ``/attachments/{channel_id}/{attachment_id}/{filename}``."""

    def __init__(
        self, *, latency_ms: tuple[float, float] = (30.0, 90.0), rng: random.Random | None = None
    ) -> None:
        self.latency_ms = latency_ms
        self.rng = rng or random.Random(0)
        self.blobs: dict[str, bytes] = {}
        self.downloads = 0
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._get)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined,union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeCDN is not running")
        return f"http://127.0.0.1:{self._port}"

    def attachment(self, channel_id: int, filename: str, data: bytes, content_type: str) -> dict[str, Any]:
        """Store ``data`` and return the attachment object a MESSAGE_CREATE carries."""
        attachment_id = snowflake()
        path = f"/attachments/{channel_id}/{attachment_id}/{filename}"
        self.blobs[path] = data
        url = self.base + path
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    async def _get(self, request: web.Request) -> web.StreamResponse:
        data = self.blobs.get(request.path)
        if data is None:
            return web.Response(status=404, text="404: Not Found")
        low, high = self.latency_ms
        await asyncio.sleep(self.rng.uniform(low, high) / 1000.0)
        self.downloads += 1
        return web.Response(body=data, content_type="application/octet-stream")
