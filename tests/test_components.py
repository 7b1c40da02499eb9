"""Root spans for buttons, selects, DynamicItems and modal submits, over the offline Discord."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import discord
from discord.ext import commands
from opentelemetry.trace import StatusCode

from otel_bot import _attributes as A
from otel_bot import _values
from otel_bot.testing import CALLBACK, FOLLOWUP, OfflineDiscord
from tests.helpers_roots import assert_contained, assert_root, children, instrumented, roots, wait_roots

__all__ = ["instrumented"]


class QueueView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.errors: list[str] = []

    @discord.ui.button(label="Join", custom_id="queue:join:42")
    async def join(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.defer()

    @discord.ui.button(label="Break", custom_id="queue:break")
    async def breaks(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.defer()
        raise RuntimeError("view callback failed")

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: Any) -> None:
        self.errors.append(type(error).__name__)
        await interaction.followup.send("that broke")


class RegionSelect(discord.ui.Select[Any]):
    def __init__(self) -> None:
        super().__init__(
            custom_id="region", options=[discord.SelectOption(label="eu"), discord.SelectOption(label="us")]
        )

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"region {self.values[0]}", ephemeral=True)


class JoinDynamic(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"ladder:join:(?P<id>\d+)"):
    def __init__(self, ladder_id: int) -> None:
        super().__init__(discord.ui.Button(label="Join", custom_id=f"ladder:join:{ladder_id}"))
        self.ladder_id = ladder_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: Any, match: re.Match[str]
    ) -> JoinDynamic:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        if self.ladder_id == 0:
            raise LookupError("no ladder 0")
        await interaction.response.send_message(f"joined {self.ladder_id}")


class ReportModal(discord.ui.Modal, title="Report"):
    reason: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Reason", custom_id="reason")

    def __init__(self, fail: bool = False) -> None:
        super().__init__(custom_id="report-modal", timeout=None)
        self.fail = fail

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("thanks", ephemeral=True)
        if self.fail:
            raise ValueError("modal failed")

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await interaction.followup.send("modal error")


async def test_decorated_button(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    discord_bot.add_view(QueueView())
    payload = offline_discord.payloads.button("queue:join:42")
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", payload)
    spans = await wait_roots(span_exporter, 1)
    root = roots(spans)[0]
    assert_root(root, "button QueueView.join")
    assert_contained(spans, root)
    attrs = root.attributes
    assert attrs[A.DISCORD_INTERACTION_TYPE] == "component"
    assert attrs[A.DISCORD_COMPONENT_TYPE] == "button"
    assert attrs[A.DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE] == "queue:join:{id}"
    assert attrs[A.DISCORD_COMPONENT_ITEM] == "Button"
    assert attrs[A.DISCORD_COMPONENT_VIEW] == "QueueView"
    assert isinstance(attrs[A.DISCORD_MESSAGE_ID], str)
    assert attrs[A.DISCORD_INTERACTION_RESPONSE_TYPE] == "deferred_update"
    assert attrs[A.DISCORD_COMMAND_OUTCOME] == "success"
    assert "42" not in root.name
    assert [s.name for s in children(spans, root)] == [f"POST {CALLBACK}"]


async def test_view_error_recorded_and_on_error_inside_root(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    view = QueueView()
    discord_bot.add_view(view)
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.button("queue:break"))
    spans = await wait_roots(span_exporter, 1)
    root = roots(spans)[0]
    assert_root(root, "button QueueView.breaks")
    assert view.errors == ["RuntimeError"]
    assert root.status.status_code is StatusCode.ERROR
    assert [e.attributes[A.EXCEPTION_TYPE] for e in root.events if e.name == "exception"] == ["RuntimeError"]
    assert sorted(s.name for s in children(spans, root)) == [f"POST {CALLBACK}", f"POST {FOLLOWUP}"]
    assert_contained(spans, root)


async def test_select_subclass(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    view = discord.ui.View(timeout=None)
    view.add_item(RegionSelect())
    discord_bot.add_view(view)
    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.select("region", ["eu"])
    )
    spans = await wait_roots(span_exporter, 1)
    root = roots(spans)[0]
    assert_root(root, "select RegionSelect")
    assert root.attributes[A.DISCORD_COMPONENT_TYPE] == "string_select"
    assert root.attributes[A.DISCORD_COMPONENT_ITEM] == "RegionSelect"
    assert root.attributes[A.DISCORD_INTERACTION_RESPONSE_TYPE] == "message"
    assert_contained(spans, root)


async def test_dynamic_item(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    discord_bot.add_dynamic_items(JoinDynamic)
    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.button("ladder:join:987654")
    )
    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.button("ladder:join:0")
    )
    spans = await wait_roots(span_exporter, 2)
    found = roots(spans)
    assert [s.name for s in found] == ["button JoinDynamic", "button JoinDynamic"]
    for root in found:
        assert_root(root, "button JoinDynamic")
        assert_contained(spans, root)
        assert root.attributes[A.DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE] == r"ladder:join:(?P<id>\d+)"
        assert root.attributes[A.DISCORD_COMPONENT_ITEM] == "JoinDynamic"
    ok, failed = sorted(found, key=lambda s: s.status.status_code.value)
    assert ok.status.status_code is StatusCode.UNSET
    assert [s.name for s in children(spans, ok)] == [f"POST {CALLBACK}"]
    assert failed.status.status_code is StatusCode.ERROR
    assert [e.attributes[A.EXCEPTION_TYPE] for e in failed.events if e.name == "exception"] == ["LookupError"]


async def test_unhandled_component_uses_template(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    stale = "poll:12345:vote:" + "ab" * 16
    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.button(stale))
    spans = await wait_roots(span_exporter, 1)
    root = roots(spans)[0]
    assert_root(root, "button (unhandled)")
    assert root.attributes[A.DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE] == "poll:{id}:vote:{hex}"
    offline_discord.inject(
        discord_bot, "INTERACTION_CREATE", offline_discord.payloads.modal_submit("gone-modal-77", {"x": "y"})
    )
    spans = await wait_roots(span_exporter, 2)
    assert sorted(s.name for s in roots(spans)) == ["button (unhandled)", "modal (unhandled)"]
    assert root.attributes[A.DISCORD_INTERACTION_ACKNOWLEDGED] is False
    assert root.attributes[A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED] is True


async def test_modal_submit(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)
    fail = {"value": False}

    @discord_bot.tree.command(name="report", description="Report")
    async def report(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(ReportModal(fail=fail["value"]))

    for attempt, should_fail in enumerate((False, True)):
        fail["value"] = should_fail
        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("report")
        )
        await wait_roots(span_exporter, 2 * attempt + 1)
        submit = offline_discord.payloads.modal_submit("report-modal", {"reason": "spam"})
        offline_discord.inject(discord_bot, "INTERACTION_CREATE", submit)
        await wait_roots(span_exporter, attempt + 1, name="modal ReportModal")
    spans = list(span_exporter.get_finished_spans())
    commands_ = [s for s in roots(spans) if s.name == "/report"]
    assert [s.attributes[A.DISCORD_INTERACTION_RESPONSE_TYPE] for s in commands_] == ["modal", "modal"]
    ok, failed = [s for s in roots(spans) if s.name == "modal ReportModal"]
    for root in (ok, failed):
        assert_root(root, "modal ReportModal")
        assert_contained(spans, root)
        assert root.attributes[A.DISCORD_INTERACTION_TYPE] == "modal_submit"
        assert root.attributes[A.DISCORD_MODAL] == "ReportModal"
        assert root.attributes[A.DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE] == "report-modal"
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert sorted(s.name for s in children(spans, failed)) == [f"POST {CALLBACK}", f"POST {FOLLOWUP}"]


async def test_view_timeout_task_does_not_hold_the_root(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    instrumented(discord_bot)

    @discord_bot.tree.command(name="menu", description="Menu")
    async def menu(interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=600)
        view.add_item(discord.ui.Button(label="x", custom_id="menu:x"))
        await interaction.response.send_message("pick", view=view)

    offline_discord.inject(discord_bot, "INTERACTION_CREATE", offline_discord.payloads.slash_command("menu"))
    spans = await wait_roots(span_exporter, 1, name="/menu")
    assert_contained(spans, roots(spans)[0])


def test_custom_id_template() -> None:
    assert _values.custom_id_template("ladder:join:123") == "ladder:join:{id}"
    assert _values.custom_id_template("a1b2c3d4e5f60718293a4b5c6d7e8f90") == "{hex}"
    assert _values.custom_id_template("x:3f2504e0-4f89-11d3-9a0c-0305e82c3301") == "x:{hex}"
    assert _values.custom_id_template("static") == "static"


async def test_button_while_pending_loop_tasks(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any, instrumented: Any
) -> None:
    """Two clicks at once: two roots, each with its own callback child."""
    instrumented(discord_bot)
    discord_bot.add_view(QueueView())
    for _ in range(2):
        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.button("queue:join:42")
        )
    spans = await wait_roots(span_exporter, 2)
    for root in roots(spans):
        assert [s.name for s in children(spans, root)] == [f"POST {CALLBACK}"]
    await asyncio.sleep(0)


async def test_lazily_wrapped_handlers_are_restored(
    offline_discord: OfflineDiscord, discord_bot: commands.Bot, span_exporter: Any
) -> None:
    import otel_bot

    original_on_error = vars(QueueView)["on_error"]
    original_callback = vars(JoinDynamic)["callback"]
    otel_bot.instrument_bot(discord_bot)
    try:
        discord_bot.add_view(QueueView())
        discord_bot.add_dynamic_items(JoinDynamic)
        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.button("queue:join:42")
        )
        offline_discord.inject(
            discord_bot, "INTERACTION_CREATE", offline_discord.payloads.button("ladder:join:5")
        )
        await wait_roots(span_exporter, 2)
        assert vars(QueueView)["on_error"] is not original_on_error
        assert vars(JoinDynamic)["callback"] is not original_callback
        assert vars(QueueView)["on_error"].__qualname__ == original_on_error.__qualname__
    finally:
        otel_bot.uninstrument_bot(discord_bot)
    assert vars(QueueView)["on_error"] is original_on_error
    assert vars(JoinDynamic)["callback"] is original_callback
