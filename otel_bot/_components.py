"""Root spans for component interactions (buttons, selects, DynamicItems) and modal submits.

Where discord.py runs them: ``ViewStore.dispatch_view`` finds the item (or DynamicItem template)
and starts a task per match (``View._scheduled_task`` / ``ViewStore.schedule_dynamic_item_call``);
``ViewStore.dispatch_modal`` starts ``Modal._scheduled_task``. The root opens in the dispatch and
ends when those tasks (and the tasks they created) finish; ``View.on_error`` / ``Modal.on_error``
run inside it.

Span names come from a low-cardinality identity, never from the raw custom_id:

* a decorated item: ``button {View class}.{callback name}``, e.g. ``button QueueView.join``
* an Item subclass: ``button JoinButton`` / ``select RegionSelect``
* a DynamicItem: ``button {DynamicItem class}``, e.g. ``button JoinDynamic``; its regex template is
  ``discord.component.custom_id_template``
* a component or modal nothing handles (a stale message, a view lost in a restart):
  ``button (unhandled)`` / ``select (unhandled)`` / ``modal (unhandled)``; custom_ids are free
  text, so even their template stays out of the name

``discord.component.custom_id_template`` is the DynamicItem's regex, else the custom_id with UUIDs
and long hex runs as ``{hex}`` and digit runs as ``{id}``.
* a modal: ``modal {Modal class}``, e.g. ``modal ReportModal``

Selects of any kind are named ``select ...``; ``discord.component.type`` has the exact kind.
"""

from __future__ import annotations

from typing import Any

from . import _attributes as A
from . import _privacy, _roots, _values
from ._guard import guard
from ._interactions import should_trace, start_interaction_root
from ._patching import Patch
from ._roots import Root

COMPONENT_TYPES: dict[int, str] = {
    2: "button",
    3: "string_select",
    4: "text_input",
    5: "user_select",
    6: "role_select",
    7: "mentionable_select",
    8: "channel_select",
}

NAMED_KEY = "otel_bot.component_named"
#: The name part of a root whose component or modal no handler claimed.
UNHANDLED = "(unhandled)"


def _prefix(component_type: int) -> str:
    return "button" if component_type == 2 else "select"


def item_identity(item: Any, view: Any) -> str:
    """The low-cardinality name of a component item."""
    cls = type(item)
    callback = getattr(item, "__dict__", {}).get("callback")
    func = getattr(callback, "callback", None) or callback  # decorated: _ItemCallback(func, ...)
    func_name = getattr(func, "__name__", None)
    view_name = type(view).__name__ if view is not None else None
    if isinstance(func_name, str) and func_name not in ("<lambda>",):
        return f"{view_name}.{func_name}" if view_name else func_name
    if not cls.__module__.startswith("discord."):
        return cls.__name__
    return f"{view_name}.{cls.__name__}" if view_name else cls.__name__


def _name_root(root: Root, name: str, attributes: dict[str, Any]) -> None:
    """Give a component root its real name (the first handler found wins)."""
    if root.unit.ended or root.unit.extra.get(NAMED_KEY):
        return
    root.unit.extra[NAMED_KEY] = True
    span = root.span
    root.unit.flow = name
    if span.is_recording():
        span.update_name(_privacy.bound_name(name))
        _roots.set_attrs(span, attributes, root.settings)


# --- views -----------------------------------------------------------------------------------


def _store_client(store: Any) -> Any:
    """The client a ``ViewStore`` dispatches for (``None`` if it cannot be found)."""
    state = getattr(store, "_state", None)
    client = None
    with guard("components.client"):
        client = state._get_client() if state is not None else None
    return client


def _wrap_dispatch_view(original: Any) -> Any:
    def dispatch_view(
        self: Any, component_type: int, custom_id: str, interaction: Any, *args: Any, **kwargs: Any
    ) -> Any:
        client = _store_client(self)
        settings = should_trace(client)
        if settings is None:
            return original(self, component_type, custom_id, interaction, *args, **kwargs)
        attrs: dict[str, Any] = {}
        with guard("components.attributes"):
            template = _values.custom_id_template(str(custom_id))
            attrs = {
                A.DISCORD_COMPONENT_TYPE: COMPONENT_TYPES.get(_values.as_int(component_type, -1), "unknown"),
                A.DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE: template,
                A.DISCORD_MESSAGE_ID: _values.id_str(
                    getattr(getattr(interaction, "message", None), "id", None)
                ),
            }
        name = f"{_prefix(_values.as_int(component_type, 0))} {UNHANDLED}"
        root = start_interaction_root(interaction, client, settings, name=name, flow=name, attributes=attrs)
        with root.activated():
            try:
                return original(self, component_type, custom_id, interaction, *args, **kwargs)
            except BaseException as exc:
                root.note_error(exc)
                raise
            finally:
                root.release()

    return dispatch_view


def _wrap_dispatch_item(original: Any) -> Any:
    def _dispatch_item(self: Any, item: Any, interaction: Any, *args: Any, **kwargs: Any) -> Any:
        root = _roots.current_root()
        if root is not None:
            with guard("components.item"):
                ctype = _values.as_int(getattr(getattr(item, "type", None), "value", 0), 0)
                identity = item_identity(item, self)
                _name_root(
                    root,
                    f"{_prefix(ctype)} {identity}",
                    {
                        A.DISCORD_COMPONENT_ITEM: type(item).__name__,
                        A.DISCORD_COMPONENT_VIEW: type(self).__name__,
                    },
                )
                _roots.ensure_class_patch(type(self), "on_error", _roots.noting_error_arg)
        return original(self, item, interaction, *args, **kwargs)

    return _dispatch_item


def _wrap_schedule_dynamic(original: Any) -> Any:
    async def schedule_dynamic_item_call(
        self: Any, component_type: int, factory: Any, interaction: Any, *args: Any, **kwargs: Any
    ) -> Any:
        root = _roots.current_root()
        if root is not None:
            with guard("components.dynamic"):
                pattern = getattr(getattr(factory, "__discord_ui_compiled_template__", None), "pattern", None)
                attrs: dict[str, Any] = {A.DISCORD_COMPONENT_ITEM: factory.__name__}
                if isinstance(pattern, str):
                    attrs[A.DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE] = pattern
                _name_root(root, f"{_prefix(_values.as_int(component_type, 0))} {factory.__name__}", attrs)
                _roots.ensure_class_patch(factory, "callback", _roots.noting_errors)
        return await original(self, component_type, factory, interaction, *args, **kwargs)

    return schedule_dynamic_item_call


# --- modals ------------------------------------------------------------------------------------


def _wrap_dispatch_modal(original: Any) -> Any:
    def dispatch_modal(self: Any, custom_id: str, interaction: Any, *args: Any, **kwargs: Any) -> Any:
        client = _store_client(self)
        settings = should_trace(client)
        if settings is None:
            return original(self, custom_id, interaction, *args, **kwargs)
        name = f"modal {UNHANDLED}"
        attrs: dict[str, Any] = {}
        with guard("components.modal"):
            template = _values.custom_id_template(str(custom_id))
            attrs[A.DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE] = template
            modal = getattr(self, "_modals", {}).get(custom_id)
            if modal is not None:
                name = f"modal {type(modal).__name__}"
                attrs[A.DISCORD_MODAL] = type(modal).__name__
                _roots.ensure_class_patch(type(modal), "on_error", _roots.noting_error_arg)
        root = start_interaction_root(interaction, client, settings, name=name, flow=name, attributes=attrs)
        with root.activated():
            try:
                return original(self, custom_id, interaction, *args, **kwargs)
            except BaseException as exc:
                root.note_error(exc)
                raise
            finally:
                root.release()

    return dispatch_modal


def _view_store() -> Any:
    from discord.ui.view import ViewStore

    return ViewStore


def _base_view() -> Any:
    """The class defining ``_dispatch_item``: ``BaseView`` from 2.6, ``View`` before."""
    from discord.ui import view

    return getattr(view, "BaseView", None) or view.View


PATCHES: tuple[Patch, ...] = (
    Patch(owner=_view_store, name="dispatch_view", wrap=_wrap_dispatch_view, group="interactions"),
    Patch(
        owner=_view_store,
        name="schedule_dynamic_item_call",
        wrap=_wrap_schedule_dynamic,
        group="interactions",
    ),
    Patch(owner=_view_store, name="dispatch_modal", wrap=_wrap_dispatch_modal, group="interactions"),
    Patch(owner=_base_view, name="_dispatch_item", wrap=_wrap_dispatch_item, group="interactions"),
)
