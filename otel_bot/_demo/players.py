"""Simulated players: each one is a small state machine that uses the ladder bot the way people do.

They only see what Discord would show them: the bot's responses as the offline Discord recorded
them (the queue message and its Join button, the modal the bot opened, the match-found edit of
their queue message). Everything they do reaches the bot as a gateway dispatch over the fake
gateway's websocket: INTERACTION_CREATE for slash commands, clicks and modal submits,
MESSAGE_CREATE for ``!ping`` and replay uploads. Choices come from a seeded RNG.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..testing import (
    CALLBACK,
    CHANNEL_MESSAGE,
    CHANNEL_MESSAGES,
    FOLLOWUP,
    ORIGINAL,
    InteractionRecord,
    OfflineDiscord,
)
from ..testing.gateway import option, user_payload
from .cdn import FakeCDN

JSON = dict[str, Any]

FIRST_NAMES = (
    "Astra",
    "Blaze",
    "Cobalt",
    "Dune",
    "Ember",
    "Frost",
    "Gale",
    "Havoc",
    "Iris",
    "Jinx",
    "Kestrel",
    "Lumen",
    "Mako",
    "Nova",
    "Onyx",
    "Pike",
    "Quill",
    "Rook",
    "Sable",
    "Talon",
    "Umbra",
    "Vex",
    "Wren",
    "Xeno",
    "Yuki",
    "Zephyr",
)
REGIONS = ("eu", "eu", "na", "asia")  # weighted: most players are in the EU

USER_OPTION = 6  # application command option type USER
_MATCH_FOUND = re.compile(r"Match id `(\d+)`")

#: Per-route REST latency in ms (mean, spread), roughly what bots see from Discord's API.
ROUTE_LATENCY_MS: dict[tuple[str, str], tuple[float, float]] = {
    ("POST", CALLBACK): (85.0, 35.0),
    ("POST", FOLLOWUP): (120.0, 45.0),
    ("PATCH", ORIGINAL): (105.0, 40.0),
    ("POST", CHANNEL_MESSAGES): (95.0, 40.0),
    ("PATCH", CHANNEL_MESSAGE): (90.0, 30.0),
}
DEFAULT_LATENCY_MS = (70.0, 25.0)


@dataclass
class Budget:
    """How much the simulation may do: a number of user actions, or a wall-clock duration."""

    actions: int | None = None
    duration_s: float | None = None
    used: int = 0
    started: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        """Reserve one action; False once the budget is spent."""
        if self.exhausted:
            return False
        self.used += 1
        return True

    @property
    def exhausted(self) -> bool:
        if self.actions is not None and self.used >= self.actions:
            return True
        return self.duration_s is not None and time.monotonic() - self.started >= self.duration_s

    @property
    def progress(self) -> float:
        """Done so far, in the budget's own unit (actions or seconds)."""
        if self.actions is not None:
            return float(self.used)
        return min(time.monotonic() - self.started, self.duration_s or 0.0)

    @property
    def total(self) -> float:
        return float(self.actions) if self.actions is not None else float(self.duration_s or 0.0)


@dataclass(eq=False)
class Player:
    """A simulated ladder player."""

    index: int
    name: str
    user: JSON
    skill: float
    region: str
    rng: random.Random
    join_interaction: int | None = None
    match_id: int | None = None
    opponent: Player | None = None
    matched_at: float = 0.0
    matches: int = 0

    @property
    def user_id(self) -> int:
        return int(self.user["id"])


@dataclass
class SimulationReport:
    """What the players did (printed under the summary table)."""

    actions: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    matches_found: int = 0
    results_reported: int = 0
    replays_uploaded: int = 0
    late_interactions: int = 0
    rate_limits_injected: int = 0
    unanswered: int = 0


class Simulation:
    """Drives ``players`` simulated players against the bot until the budget is spent."""

    def __init__(
        self,
        discord: OfflineDiscord,
        cdn: FakeCDN,
        *,
        players: int,
        seed: int,
        budget: Budget,
        on_action: Callable[[], None] | None = None,
        ack_timeout_s: float = 5.0,
    ) -> None:
        if players < 2:
            raise ValueError("the ladder needs at least 2 players")
        self.discord = discord
        self.cdn = cdn
        self.budget = budget
        self.rng = random.Random(seed)
        self.on_action = on_action
        self.ack_timeout_s = ack_timeout_s
        self.report = SimulationReport()
        names = list(FIRST_NAMES)
        self.rng.shuffle(names)
        self.players: list[Player] = []
        for i in range(players):
            base = names[i % len(names)]
            name = base.lower() if i < len(names) else f"{base.lower()}{i // len(names) + 1}"
            rng = random.Random(f"{seed}:{i}")
            uid = discord.snowflake(time.time() * 1000 - rng.uniform(1e9, 5e10))
            self.players.append(
                Player(i, name, user_payload(uid, name), rng.gauss(1000, 180), rng.choice(REGIONS), rng)
            )
        # Exactly one interaction arrives too late to acknowledge (its snowflake is > 3 s old);
        # a few 429s hit the busiest write routes.
        total = budget.total
        self._late_at = max(3.0, total * 0.45) if budget.actions is not None else total * 0.45
        self._late_sent = False
        spacing = max(total / 3.0, 25.0) if budget.actions is not None else max(total / 3.0, 4.0)
        self._rate_limit_at = [
            total * 0.3 + k * spacing for k in range(12) if total * 0.3 + k * spacing < total
        ]
        # The first is a global rate limit (it hits whatever request comes next, so every run has
        # one); then per-route limits on the busiest write routes.
        self._rate_limit_routes: list[tuple[str | None, str | None]] = [
            (None, None),
            ("POST", CHANNEL_MESSAGES),
            ("PATCH", ORIGINAL),
        ]

    # --- plumbing ------------------------------------------------------------------------------------
    async def _dispatch(self, event: str, payload: JSON, kind: str) -> bool:
        if not self.budget.take():
            return False
        self.report.actions += 1
        self.report.by_kind[kind] = self.report.by_kind.get(kind, 0) + 1
        self._maybe_rate_limit()
        delivered = await self.discord.gateway_dispatch(event, payload)
        if not delivered:
            raise RuntimeError("the bot is not connected to the offline gateway")
        if self.on_action is not None:
            self.on_action()
        return True

    def _maybe_rate_limit(self) -> None:
        while self._rate_limit_at and self.budget.progress >= self._rate_limit_at[0]:
            self._rate_limit_at.pop(0)
            n = self.report.rate_limits_injected
            method, route = self._rate_limit_routes[0 if n == 0 else 1 + (n - 1) % 2]
            self.discord.rate_limit(
                method,
                route,
                retry_after=round(self.rng.uniform(0.2, 0.6), 2),
                times=1,
                is_global=route is None,
            )
            self.report.rate_limits_injected += 1

    def _late(self) -> bool:
        if not self._late_sent and self.budget.progress >= self._late_at:
            self._late_sent = True
            self.report.late_interactions += 1
            return True
        return False

    async def _until(self, pred: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
        """What a person does: look again a little later, until it shows up or they give up."""
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(interval)
        return True

    async def _interact(self, payload: JSON, kind: str, *, wait: bool = True) -> InteractionRecord | None:
        if not await self._dispatch("INTERACTION_CREATE", payload, kind):
            return None
        rec = self.discord.interaction(payload["id"])
        if wait and not await self._until(lambda: rec.ack_type is not None, self.ack_timeout_s):
            self.report.unanswered += 1
            return None
        return rec

    def _callback_body(self, rec: InteractionRecord) -> JSON:
        for req in reversed(self.discord.requests_for("POST", CALLBACK)):
            if (
                req.params.get("interaction_id") == str(rec.id)
                and isinstance(req.json, dict)
                and req.status < 300
            ):
                return req.json
        return {}

    # --- actions ----------------------------------------------------------------------------------------
    async def slash(
        self, p: Player, name: str, options: Any = None, **kwargs: Any
    ) -> InteractionRecord | None:
        late = self._late()
        payload = self.discord.payloads.slash_command(
            name, options, user=p.user, age_ms=3500.0 if late else 0.0, **kwargs
        )
        return await self._interact(payload, f"/{name}", wait=not late)

    async def queue_and_join(self, p: Player) -> None:
        # the bot's stored preference is EU; players elsewhere usually pick their region
        options = {"region": p.region} if p.rng.random() < (0.8 if p.region != "eu" else 0.1) else None
        rec = await self.slash(p, "queue", options)
        if rec is None or rec.original is None:
            return
        join = _find_button(rec.original, "ladder:join:")
        if join is None:
            return
        await asyncio.sleep(p.rng.uniform(0.15, 0.6))  # read the message, then click
        payload = self.discord.payloads.button(join, message=rec.original, user=p.user)
        clicked = await self._interact(payload, "Join")
        if clicked is not None and clicked.ack_type == 7:
            p.join_interaction = clicked.id

    def _check_match(self, p: Player) -> bool:
        if p.join_interaction is None:
            return False
        original = self.discord.interaction(p.join_interaction).original or {}
        found = _MATCH_FOUND.search(str(original.get("content") or ""))
        if found is None:
            return False
        p.match_id = int(found.group(1))
        p.join_interaction = None
        p.matched_at = time.monotonic()
        self.report.matches_found += 1
        return True

    def _opponent_of(self, p: Player) -> Player | None:
        for other in self.players:
            if other is not p and other.match_id == p.match_id:
                return other
        return None

    async def report_result(self, p: Player) -> None:
        rec = await self.slash(p, "report")
        if rec is None or rec.ack_type != 9:
            return
        modal = self._callback_body(rec).get("data") or {}
        inputs = _text_inputs(modal)
        if "custom_id" not in modal or "result" not in inputs:
            return
        opponent = self._opponent_of(p)
        p_win = 1.0 / (1.0 + 10 ** (((opponent.skill if opponent else 1000.0) - p.skill) / 400.0))
        won = p.rng.random() < p_win
        values = {cid: "" for cid in inputs}
        values["result"] = "win" if won else "loss"
        if "score" in values:
            values["score"] = p.rng.choice(["2-0", "2-1"]) if won else p.rng.choice(["0-2", "1-2"])
        await asyncio.sleep(p.rng.uniform(0.2, 0.8))  # typing into the form
        submit = self.discord.payloads.modal_submit(str(modal["custom_id"]), values, labels=True, user=p.user)
        if await self._interact(submit, "ReportModal") is not None:
            self.report.results_reported += 1

    async def upload_replay(self, p: Player) -> None:
        from otel_bot_examples.ladder_bot.replays import make_replay

        data = make_replay(p.rng, match_id=p.match_id, seconds=p.rng.uniform(300, 1500))
        filename = f"match-{p.match_id or 'casual'}.ldrp"
        channel_id = self.discord.world.channel_id
        attachment = self.cdn.attachment(channel_id, filename, data, "application/octet-stream")
        payload = self.discord.payloads.message_create(
            "gg, replay attached", author=p.user, attachments=[attachment]
        )
        if await self._dispatch("MESSAGE_CREATE", payload, "replay upload"):
            self.report.replays_uploaded += 1

    async def ping(self, p: Player) -> None:
        await self._dispatch(
            "MESSAGE_CREATE", self.discord.payloads.message_create("!ping", author=p.user), "!ping"
        )

    async def profile(self, p: Player) -> None:
        if p.rng.random() < 0.35:
            other = p.rng.choice([o for o in self.players if o is not p])
            resolved = self.discord.payloads.resolved(users=[other.user])
            await self.slash(
                p, "profile", [option("member", str(other.user_id), USER_OPTION)], resolved=resolved
            )
        else:
            await self.slash(p, "profile")

    # --- the player loop ----------------------------------------------------------------------------------
    async def _idle_action(self, p: Player) -> None:
        roll = p.rng.random()
        action: Callable[[Player], Awaitable[None]]
        if roll < 0.46:
            action = self.queue_and_join
        elif roll < 0.64:
            action = self.profile
        elif roll < 0.84:

            async def action(pl: Player) -> None:
                await self.slash(pl, "leaderboard")
        elif roll < 0.94:
            action = self.ping
        else:

            async def action(pl: Player) -> None:
                await self.slash(pl, "season")

        await action(p)

    async def _play(self, p: Player) -> None:
        while not self.budget.exhausted:
            if p.match_id is not None:
                if time.monotonic() - p.matched_at >= p.rng.uniform(0.8, 2.0):  # the match is played
                    opponent = self._opponent_of(p)
                    reporter = opponent is None or p.user_id < opponent.user_id
                    if reporter or p.rng.random() < 0.1:  # now and then both report
                        await self.report_result(p)
                    if not reporter and p.rng.random() < 0.75:
                        await self.upload_replay(p)
                    p.matches += 1
                    p.match_id = None
            elif p.join_interaction is not None:
                if not self._check_match(p) and p.rng.random() < 0.25:
                    await (self.profile(p) if p.rng.random() < 0.5 else self.slash(p, "leaderboard"))
            else:
                await self._idle_action(p)
            await asyncio.sleep(p.rng.uniform(0.15, 0.7))

    async def run(self) -> SimulationReport:
        """Run every player until the budget is spent; returns what they did."""

        async def start(p: Player) -> None:
            await asyncio.sleep(p.rng.uniform(0.0, 0.5))
            if p.rng.random() < 0.7:  # most people open Discord to play
                await self.queue_and_join(p)
            await self._play(p)

        jitter = asyncio.create_task(self._jitter_latency())
        try:
            await asyncio.gather(*(start(p) for p in self.players))
        finally:
            jitter.cancel()
            try:
                await jitter
            except asyncio.CancelledError:
                pass
        return self.report

    async def _jitter_latency(self) -> None:
        """Re-roll each route's latency a few times a second (Discord is never perfectly steady)."""
        while True:
            for (method, route), (mean, spread) in ROUTE_LATENCY_MS.items():
                self.discord.set_latency(_latency(self.rng, mean, spread), method, route)
            self.discord.set_latency(_latency(self.rng, *DEFAULT_LATENCY_MS))
            await asyncio.sleep(0.02)


def _latency(rng: random.Random, mean: float, spread: float) -> float:
    # log-normal-ish: mostly near the mean, with a tail
    value = rng.gauss(mean, spread / 2.0) + (rng.expovariate(1.0 / spread) if rng.random() < 0.1 else 0.0)
    return max(5.0, min(value, mean + 6 * spread, math.inf))


def _find_button(message: JSON, prefix: str) -> str | None:
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            custom_id = str(component.get("custom_id") or "")
            if component.get("type") == 2 and custom_id.startswith(prefix):
                return custom_id
    return None


def _text_inputs(modal: JSON) -> list[str]:
    """custom_ids of the text inputs in a modal callback's components (Labels or action rows)."""
    out: list[str] = []
    for top in modal.get("components") or []:
        children = [top["component"]] if "component" in top else list(top.get("components") or [])
        for child in children:
            if child.get("type") == 4 and child.get("custom_id"):
                out.append(str(child["custom_id"]))
    return out
