"""The REST route handlers of the offline Discord (a mixin of :class:`OfflineDiscord`)."""

from __future__ import annotations

import copy
import secrets

from otel_bot.testing.gateway import application_payload, message_payload
from otel_bot.testing.records import (
    CALLBACK,
    CHANNEL_MESSAGE,
    CHANNEL_MESSAGES,
    FOLLOWUP,
    FOLLOWUP_MESSAGE,
    JSON,
    ORIGINAL,
    TYPING,
    RecordedRequest,
    _error,
    _Reply,
)
from otel_bot.testing.rest_interactions import InteractionRoutes
from otel_bot.testing.snowflakes import snowflake

__all__: list[str] = []


class RestRoutes(InteractionRoutes):
    """Discord API v10 route handlers; state lives on the :class:`OfflineDiscord` using this mixin."""

    def _build_routes(self) -> None:
        r = self._add
        r("GET", "/users/@me", self._get_me)
        r("GET", "/users/{user_id}", self._get_user)
        r("POST", "/users/@me/channels", self._create_dm)
        r("GET", "/guilds/{guild_id}", self._get_guild)
        r("GET", "/guilds/{guild_id}/channels", self._get_guild_channels)
        r("GET", "/guilds/{guild_id}/roles", self._get_guild_roles)
        r("GET", "/guilds/{guild_id}/members/{user_id}", self._get_guild_member)
        r("GET", "/channels/{channel_id}/webhooks", self._list_webhooks)
        r("POST", "/channels/{channel_id}/webhooks", self._create_webhook_route)
        r("GET", "/webhooks/{webhook_id}", self._get_webhook)
        r("GET", "/oauth2/applications/@me", self._get_application)
        r("GET", "/applications/@me", self._get_application)
        r("GET", "/gateway", self._get_gateway)
        r("GET", "/gateway/bot", self._get_gateway_bot)
        r("GET", "/applications/{application_id}/commands", self._list_commands)
        r("PUT", "/applications/{application_id}/commands", self._put_commands)
        r("POST", "/applications/{application_id}/commands", self._post_command)
        r("GET", "/applications/{application_id}/commands/{command_id}", self._get_command)
        r("PATCH", "/applications/{application_id}/commands/{command_id}", self._patch_command)
        r("DELETE", "/applications/{application_id}/commands/{command_id}", self._delete_command)
        r("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self._list_commands)
        r("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self._put_commands)
        r("POST", "/applications/{application_id}/guilds/{guild_id}/commands", self._post_command)
        r("GET", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}", self._get_command)
        r(
            "PATCH",
            "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
            self._patch_command,
        )
        r(
            "DELETE",
            "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
            self._delete_command,
        )
        r("POST", CALLBACK, self._callback)
        r("POST", FOLLOWUP, self._followup)
        r("GET", ORIGINAL, self._get_original)
        r("PATCH", ORIGINAL, self._edit_original)
        r("DELETE", ORIGINAL, self._delete_original)
        r("GET", FOLLOWUP_MESSAGE, self._get_followup)
        r("PATCH", FOLLOWUP_MESSAGE, self._edit_followup)
        r("DELETE", FOLLOWUP_MESSAGE, self._delete_followup)
        r("GET", "/channels/{channel_id}", self._get_channel)
        r("GET", CHANNEL_MESSAGES, self._list_messages)
        r("POST", CHANNEL_MESSAGES, self._create_message)
        r("GET", CHANNEL_MESSAGE, self._get_message)
        r("PATCH", CHANNEL_MESSAGE, self._edit_message)
        r("DELETE", CHANNEL_MESSAGE, self._delete_message)
        r("POST", TYPING, self._typing)
        r("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._no_content)
        r("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._no_content)

    # ------------------------------------------------------------------ login / app
    def _get_me(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        return _Reply(200, copy.deepcopy(self.world.bot_user))

    def _get_user(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        for user in (self.world.bot_user, self.world.user):
            if user["id"] == p["user_id"]:
                return _Reply(200, copy.deepcopy(user))
        return _error(404, 10013, "Unknown User")

    def _create_dm(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        recipient = str((rec.json or {}).get("recipient_id", self.world.user["id"]))
        for channel in self.dm_channels.values():
            if channel["recipients"][0]["id"] == recipient:
                return _Reply(200, copy.deepcopy(channel))
        if recipient == self.world.user["id"]:
            user = self.world.user
        else:
            user = {
                "id": recipient,
                "username": "user",
                "discriminator": "0",
                "avatar": None,
                "global_name": None,
            }
        channel = {
            "id": str(snowflake(self.now_ms())),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [copy.deepcopy(user)],
        }
        self.dm_channels[int(channel["id"])] = channel
        return _Reply(200, copy.deepcopy(channel))

    # ------------------------------------------------------------------ guilds
    def _guild_or_error(self, p: dict[str, str]) -> JSON | _Reply:
        if p["guild_id"] != str(self.world.guild_id):
            return _error(404, 10004, "Unknown Guild")
        return self.world.guild()

    def _get_guild(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        guild = self._guild_or_error(p)
        if isinstance(guild, _Reply):
            return guild
        drop = (
            "members",
            "channels",
            "threads",
            "presences",
            "voice_states",
            "stage_instances",
            "guild_scheduled_events",
            "soundboard_sounds",
            "joined_at",
            "large",
            "member_count",
            "lazy",
        )
        return _Reply(200, {k: v for k, v in guild.items() if k not in drop})

    def _get_guild_channels(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        guild = self._guild_or_error(p)
        if isinstance(guild, _Reply):
            return guild
        return _Reply(200, [self.world.channel()])

    def _get_guild_roles(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        guild = self._guild_or_error(p)
        return guild if isinstance(guild, _Reply) else _Reply(200, guild["roles"])

    def _get_guild_member(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        guild = self._guild_or_error(p)
        if isinstance(guild, _Reply):
            return guild
        for member in guild["members"]:
            if member["user"]["id"] == p["user_id"]:
                return _Reply(200, member)
        return _error(404, 10007, "Unknown Member")

    # ------------------------------------------------------------------ channel webhooks
    def create_webhook(self, channel_id: int | None = None, name: str = "Offline Hook") -> JSON:
        """Create an incoming webhook on a channel (default: the world's channel); executing it
        (``POST /webhooks/{id}/{token}``) posts a message there. Returns the webhook object."""
        cid = self.world.channel_id if channel_id is None else channel_id
        guild_id = self._channel_guild(cid)
        hook: JSON = {
            "id": str(snowflake(self.now_ms())),
            "type": 1,
            "guild_id": str(guild_id) if guild_id is not None else None,
            "channel_id": str(cid),
            "name": name,
            "avatar": None,
            "token": secrets.token_urlsafe(51),
            "application_id": None,
            "user": copy.deepcopy(self.world.bot_user),
        }
        self.webhooks[hook["token"]] = hook
        return copy.deepcopy(hook)

    def _list_webhooks(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        return _Reply(
            200, [copy.deepcopy(h) for h in self.webhooks.values() if h["channel_id"] == p["channel_id"]]
        )

    def _create_webhook_route(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        return _Reply(200, self.create_webhook(int(p["channel_id"]), str(body.get("name") or "Webhook")))

    def _get_webhook(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        for hook in self.webhooks.values():
            if hook["id"] == p["webhook_id"]:
                return _Reply(200, {k: v for k, v in copy.deepcopy(hook).items() if k != "token"})
        return _error(404, 10015, "Unknown Webhook")

    def _execute_webhook(self, hook: JSON, rec: RecordedRequest) -> _Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        if (
            not any(body.get(k) for k in ("content", "embeds", "components", "attachments", "poll"))
            and not rec.files
        ):
            return _error(400, 50006, "Cannot send an empty message")
        author = {
            "id": hook["id"],
            "username": body.get("username") or hook["name"],
            "discriminator": "0000",
            "avatar": None,
            "bot": True,
            "global_name": None,
            "public_flags": 0,
        }
        cid = int(hook["channel_id"])
        msg = message_payload(
            cid,
            author,
            body.get("content") or "",
            guild_id=self._channel_guild(cid),
            created_ms=self.now_ms(),
            embeds=body.get("embeds") or (),
            components=body.get("components") or (),
            attachments=self._attachments(body, rec.files),
            flags=int(body.get("flags") or 0),
            webhook_id=int(hook["id"]),
            tts=bool(body.get("tts", False)),
        )
        self.messages.setdefault(cid, {})[int(msg["id"])] = msg
        if rec.query.get("wait", "").lower() in ("true", "1"):
            return _Reply(200, copy.deepcopy(msg))
        return _Reply(204)

    def _get_application(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        w = self.world
        return _Reply(200, application_payload(w.application_id, w.user, bot=w.bot_user))

    def _get_gateway(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        return _Reply(200, {"url": self.gateway_url})

    def _get_gateway_bot(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        return _Reply(
            200,
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14400000,
                    "max_concurrency": 1,
                },
            },
        )

    # ------------------------------------------------------------------ commands
    def _commands(self, p: dict[str, str]) -> list[JSON]:
        if "guild_id" in p:
            return self.guild_commands.setdefault(int(p["guild_id"]), [])
        return self.global_commands

    def _command_object(self, body: JSON, p: dict[str, str], existing: JSON | None = None) -> JSON:
        cmd: JSON = {
            "id": existing["id"] if existing else str(snowflake(self.now_ms())),
            "application_id": p["application_id"],
            "version": str(snowflake(self.now_ms())),
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
            "integration_types": [0],
            "contexts": None,
        }
        if existing:
            cmd.update({k: v for k, v in existing.items() if k not in ("id", "version")})
        cmd.update(copy.deepcopy(body))
        if "guild_id" in p:
            cmd["guild_id"] = p["guild_id"]
        return cmd

    def _list_commands(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        return _Reply(200, copy.deepcopy(self._commands(p)))

    def _put_commands(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        if not isinstance(rec.json, list):
            return _error(400, 50035, "Invalid Form Body")
        old = {(c["name"], c.get("type", 1)): c for c in self._commands(p)}
        new = [self._command_object(c, p, old.get((c["name"], c.get("type", 1)))) for c in rec.json]
        store = self._commands(p)
        store[:] = new
        return _Reply(200, copy.deepcopy(new))

    def _post_command(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        store = self._commands(p)
        for i, c in enumerate(store):
            if c["name"] == body.get("name") and c.get("type", 1) == body.get("type", 1):
                store[i] = self._command_object(body, p, c)
                return _Reply(200, copy.deepcopy(store[i]))
        cmd = self._command_object(body, p)
        store.append(cmd)
        return _Reply(201, copy.deepcopy(cmd))

    def _find_command(self, p: dict[str, str]) -> tuple[list[JSON], int] | None:
        store = self._commands(p)
        for i, c in enumerate(store):
            if c["id"] == p["command_id"]:
                return store, i
        return None

    def _get_command(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        found = self._find_command(p)
        if found is None:
            return _error(404, 10063, "Unknown application command")
        return _Reply(200, copy.deepcopy(found[0][found[1]]))

    def _patch_command(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        found = self._find_command(p)
        if found is None:
            return _error(404, 10063, "Unknown application command")
        store, i = found
        store[i] = self._command_object(rec.json or {}, p, store[i])
        return _Reply(200, copy.deepcopy(store[i]))

    def _delete_command(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        found = self._find_command(p)
        if found is None:
            return _error(404, 10063, "Unknown application command")
        del found[0][found[1]]
        return _Reply(204)

    # ------------------------------------------------------------------ channels
    def _get_channel(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        cid = int(p["channel_id"])
        if cid == self.world.channel_id:
            return _Reply(200, self.world.channel())
        if cid in self.dm_channels:
            return _Reply(200, copy.deepcopy(self.dm_channels[cid]))
        return _error(404, 10003, "Unknown Channel")

    def _channel_guild(self, channel_id: int) -> int | None:
        return self.world.guild_id if channel_id == self.world.channel_id else None

    def _list_messages(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        msgs = sorted(
            self.messages.get(int(p["channel_id"]), {}).values(), key=lambda m: int(m["id"]), reverse=True
        )
        limit = int(rec.query.get("limit", "50"))
        return _Reply(200, copy.deepcopy(msgs[:limit]))

    def _create_message(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        if (
            not any(
                body.get(k) for k in ("content", "embeds", "components", "sticker_ids", "attachments", "poll")
            )
            and not rec.files
        ):
            return _error(400, 50006, "Cannot send an empty message")
        if len(body.get("content") or "") > 2000:
            return _error(
                400,
                50035,
                "Invalid Form Body",
                {
                    "content": {
                        "_errors": [
                            {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
                        ]
                    }
                },
            )
        channel_id = int(p["channel_id"])
        guild_id = self._channel_guild(channel_id)
        reference = body.get("message_reference")
        msg = message_payload(
            channel_id,
            self.world.bot_user,
            body.get("content") or "",
            guild_id=guild_id,
            created_ms=self.now_ms(),
            embeds=body.get("embeds") or (),
            components=body.get("components") or (),
            attachments=self._attachments(body, rec.files),
            flags=int(body.get("flags") or 0),
            type=19 if reference else 0,
            message_reference=(
                {**reference, "channel_id": str(channel_id), "type": reference.get("type", 0)}
                if reference
                else None
            ),
            nonce=body.get("nonce"),
            tts=bool(body.get("tts", False)),
        )
        if body.get("poll"):
            msg["poll"] = body["poll"]
        self.messages.setdefault(channel_id, {})[int(msg["id"])] = msg
        return _Reply(200, copy.deepcopy(msg))

    def _stored_message(self, p: dict[str, str]) -> JSON | None:
        if not p["message_id"].isdigit():
            return None
        return self.messages.get(int(p["channel_id"]), {}).get(int(p["message_id"]))

    def _get_message(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        msg = self._stored_message(p)
        return _error(404, 10008, "Unknown Message") if msg is None else _Reply(200, copy.deepcopy(msg))

    def _edit_message(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        msg = self._stored_message(p)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        self._apply_edit(msg, rec)
        return _Reply(200, copy.deepcopy(msg))

    def _delete_message(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        msg = self._stored_message(p)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        del self.messages[int(p["channel_id"])][int(msg["id"])]
        return _Reply(204)

    def _typing(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        return _Reply(204)

    def _no_content(self, rec: RecordedRequest, p: dict[str, str]) -> _Reply:
        return _Reply(204)
