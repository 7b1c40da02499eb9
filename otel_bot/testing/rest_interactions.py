"""Interaction REST routes of the offline Discord: callbacks, followups, ``@original``.

Discord's rules: 3 s to acknowledge (else 10062), one acknowledgement (else 40060), webhook
routes only after the acknowledgement (else 10015), tokens valid for 15 minutes."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from otel_bot.testing.gateway import World, message_payload
from otel_bot.testing.records import (
    _DEFERRED_MESSAGE,
    _DEFERRED_UPDATE,
    _EPHEMERAL,
    _LOADING,
    _MESSAGE,
    _UPDATE,
    INTERACTION_WINDOW_MS,
    JSON,
    TOKEN_LIFETIME_MS,
    Handler,
    InteractionRecord,
    MultipartPart,
    RecordedRequest,
    _error,
    _Reply,
)
from otel_bot.testing.snowflakes import iso_timestamp, snowflake, snowflake_time_ms

__all__: list[str] = []


class InteractionRoutes:
    """Interaction route handlers; state lives on the :class:`OfflineDiscord` using this mixin."""

    world: World
    interactions: dict[int, InteractionRecord]
    messages: dict[int, dict[int, JSON]]
    global_commands: list[JSON]
    guild_commands: dict[int, list[JSON]]
    _by_token: dict[str, InteractionRecord]
    webhooks: dict[str, JSON]
    dm_channels: dict[int, JSON]
    now_ms: Callable[[], float]

    @property
    def url(self) -> str:  # pragma: no cover - provided by OfflineDiscord
        raise NotImplementedError

    @property
    def gateway_url(self) -> str:  # pragma: no cover - provided by OfflineDiscord
        raise NotImplementedError

    def _add(self, method: str, template: str, handler: Handler) -> None:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ interactions
    def _interaction_metadata(self, rec: InteractionRecord) -> JSON:
        payload = rec.payload or {}
        user = payload.get("user") or (payload.get("member") or {}).get("user") or self.world.user
        meta: JSON = {
            "id": str(rec.id),
            "type": rec.type,
            "user": copy.deepcopy(user),
            "authorizing_integration_owners": payload.get(
                "authorizing_integration_owners", {"0": str(self.world.guild_id)}
            ),
        }
        data = payload.get("data") or {}
        if rec.type == 2:
            meta["name"] = data.get("name", "command")
            meta["command_type"] = data.get("type", 1)
        if rec.type == 3 and payload.get("message"):
            meta["interacted_message_id"] = payload["message"]["id"]
        if rec.original is not None:
            meta["original_response_message_id"] = rec.original["id"]
        return meta

    def _response_message(
        self, rec: InteractionRecord, body: JSON, *, flags: int = 0, files: Sequence[MultipartPart] = ()
    ) -> JSON:
        payload = rec.payload or {}
        w = self.world
        channel_id = int(
            payload.get("channel_id") or (payload.get("channel") or {}).get("id") or w.channel_id
        )
        guild_id = payload.get("guild_id")
        kind = 0
        if rec.type == 2:
            kind = 20 if ((payload.get("data") or {}).get("type", 1) == 1) else 23
        msg = message_payload(
            channel_id,
            w.bot_user,
            body.get("content") or "",
            guild_id=int(guild_id) if guild_id else None,
            created_ms=self.now_ms(),
            embeds=body.get("embeds") or (),
            components=body.get("components") or (),
            attachments=self._attachments(body, files),
            flags=int(body.get("flags") or 0) | flags,
            type=kind,
            webhook_id=w.application_id,
            application_id=w.application_id,
            interaction_metadata=self._interaction_metadata(rec),
            tts=bool(body.get("tts", False)),
        )
        if body.get("poll"):
            msg["poll"] = body["poll"]
        return msg

    def _attachments(self, body: JSON, files: Sequence[MultipartPart] = ()) -> list[JSON]:
        """Attachment objects for the body's ``attachments`` (uploads match ``files[<id>]`` parts)."""
        parts = {p.name: p for p in files}
        out = []
        for att in body.get("attachments") or []:
            if not isinstance(att, dict):
                continue
            part = parts.get(f"files[{att.get('id')}]")
            if part is None and str(att.get("id", "")).isdigit() and int(att["id"]) > 1 << 22:
                out.append(att)  # an existing attachment being kept
                continue
            aid = str(snowflake(self.now_ms()))
            name = att.get("filename") or (part.filename if part else None) or "file"
            url = f"{self.url}/attachments/{aid}/{name}"
            out.append(
                {
                    "id": aid,
                    "filename": name,
                    "size": len(part.data) if part else 0,
                    "url": url,
                    "proxy_url": url,
                    "content_type": part.content_type if part else None,
                    "description": att.get("description"),
                    "ephemeral": False,
                }
            )
        return out

    def _record_for(self, p: dict[str, str]) -> InteractionRecord | None:
        iid = p["interaction_id"]
        if not iid.isdigit():
            return None
        rec = self.interactions.get(int(iid))
        if rec is None:  # an interaction the fake was not told about: learn it from the path
            rec = InteractionRecord(
                id=int(iid), token=p["interaction_token"], type=2, created_ms=snowflake_time_ms(iid)
            )
            self.interactions[rec.id] = rec
            self._by_token.setdefault(rec.token, rec)
        return rec

    def _callback(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        inter = self._record_for(p)
        if inter is None:
            return _error(404, 10062, "Unknown interaction")
        if inter.token != p["interaction_token"]:
            return _error(401, 50027, "Invalid Webhook Token")
        if inter.ack_type is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        if rec.received_ms - inter.created_ms > INTERACTION_WINDOW_MS:
            return _error(404, 10062, "Unknown interaction")
        body = rec.json if isinstance(rec.json, dict) else {}
        if "type" not in body:
            return _error(
                400,
                50035,
                "Invalid Form Body",
                {"type": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}},
            )
        kind = int(body["type"])
        data = body.get("data") or {}
        inter.ack_type = kind
        inter.ack_ms = rec.received_ms
        message: JSON | None = None
        if kind == _MESSAGE:
            message = inter.original = self._response_message(inter, data, files=rec.files)
        elif kind == _DEFERRED_MESSAGE:
            message = inter.original = self._response_message(
                inter, {"flags": int(data.get("flags") or 0) & _EPHEMERAL}, flags=_LOADING
            )
        elif kind in (_UPDATE, _DEFERRED_UPDATE):
            base = (inter.payload or {}).get("message") or self._response_message(inter, {})
            inter.original = copy.deepcopy(base)
            if kind == _UPDATE:
                for key in ("content", "embeds", "components", "flags"):
                    if key in data:
                        inter.original[key] = data[key]
                inter.original["edited_timestamp"] = iso_timestamp(self.now_ms())
                inter.original["attachments"] = self._attachments(data, rec.files) or inter.original.get(
                    "attachments", []
                )
                message = inter.original
        if rec.query.get("with_response", "").lower() not in ("true", "1"):
            return _Reply(204)
        info: JSON = {"id": str(inter.id), "type": inter.type}
        if message is not None:
            info["response_message_id"] = message["id"]
            info["response_message_loading"] = kind == _DEFERRED_MESSAGE
            info["response_message_ephemeral"] = bool(int(message.get("flags") or 0) & _EPHEMERAL)
        out: JSON = {"interaction": info}
        if message is not None:
            out["resource"] = {"type": kind, "message": copy.deepcopy(message)}
        return _Reply(200, out)

    def _webhook_interaction(self, p: dict[str, str]) -> InteractionRecord | _Reply:
        inter = self._by_token.get(p["interaction_token"])
        if inter is None or inter.ack_type is None:
            return _error(404, 10015, "Unknown Webhook")
        if str(self.world.application_id) != p["application_id"]:
            return _error(404, 10015, "Unknown Webhook")
        if self.now_ms() - inter.created_ms > TOKEN_LIFETIME_MS:
            return _error(401, 50027, "Invalid Webhook Token")
        return inter

    def _execute_webhook(self, hook: JSON, rec: RecordedRequest) -> _Reply:  # pragma: no cover
        raise NotImplementedError

    def _followup(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        hook = self.webhooks.get(p["interaction_token"])
        if hook is not None and hook["id"] == p["application_id"]:
            return self._execute_webhook(hook, rec)  # a channel webhook, not an interaction
        inter = self._webhook_interaction(p)
        if isinstance(inter, _Reply):
            return inter
        body = rec.json if isinstance(rec.json, dict) else {}
        if (
            not any(body.get(k) for k in ("content", "embeds", "components", "attachments", "poll"))
            and not rec.files
        ):
            return _error(400, 50006, "Cannot send an empty message")
        msg = self._response_message(inter, body, files=rec.files)
        inter.followups.append(msg)
        if rec.query.get("wait", "").lower() in ("true", "1"):
            return _Reply(200, copy.deepcopy(msg))
        return _Reply(204)

    def _original_or_error(self, p: dict[str, str]) -> tuple[InteractionRecord, JSON] | _Reply:
        inter = self._webhook_interaction(p)
        if isinstance(inter, _Reply):
            return inter
        if inter.original is None:
            return _error(404, 10008, "Unknown Message")
        return inter, inter.original

    def _get_original(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        found = self._original_or_error(p)
        if isinstance(found, _Reply):
            return found
        return _Reply(200, copy.deepcopy(found[1]))

    def _apply_edit(self, msg: JSON, rec: RecordedRequest) -> None:
        body = rec.json if isinstance(rec.json, dict) else {}
        for key in ("content", "embeds", "components", "poll"):
            if key in body:
                msg[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if "flags" in body and body["flags"] is not None:
            msg["flags"] = int(body["flags"]) | (int(msg.get("flags") or 0) & _EPHEMERAL)
        if "attachments" in body:
            msg["attachments"] = self._attachments(body, rec.files)
        msg["flags"] = int(msg.get("flags") or 0) & ~_LOADING
        msg["edited_timestamp"] = iso_timestamp(self.now_ms())

    def _edit_original(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        found = self._original_or_error(p)
        if isinstance(found, _Reply):
            return found
        self._apply_edit(found[1], rec)
        return _Reply(200, copy.deepcopy(found[1]))

    def _delete_original(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        found = self._original_or_error(p)
        if isinstance(found, _Reply):
            return found
        found[0].original = None
        return _Reply(204)

    def _followup_or_error(self, p: dict[str, str]) -> tuple[InteractionRecord, JSON] | _Reply:
        inter = self._webhook_interaction(p)
        if isinstance(inter, _Reply):
            return inter
        for msg in inter.followups:
            if msg["id"] == p["message_id"]:
                return inter, msg
        if inter.original is not None and inter.original["id"] == p["message_id"]:
            return inter, inter.original
        return _error(404, 10008, "Unknown Message")

    def _get_followup(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        found = self._followup_or_error(p)
        return found if isinstance(found, _Reply) else _Reply(200, copy.deepcopy(found[1]))

    def _edit_followup(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        found = self._followup_or_error(p)
        if isinstance(found, _Reply):
            return found
        self._apply_edit(found[1], rec)
        return _Reply(200, copy.deepcopy(found[1]))

    def _delete_followup(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        found = self._followup_or_error(p)
        if isinstance(found, _Reply):
            return found
        inter, msg = found
        if msg is inter.original:
            inter.original = None
        else:
            inter.followups.remove(msg)
        return _Reply(204)
