"""What an exception means for a unit of work: the outcome, and the exception to record.

User code failing is ``error`` (span status ERROR, the original exception recorded: discord.py's
CommandInvokeError, HybridCommandError, app_commands.CommandInvokeError and ConversionError are
unwrapped). Failed checks, cooldowns, missing permissions, bad input, unknown commands are
outcomes, not crashes; cancellation is ``cancelled`` and never an error.
"""

from __future__ import annotations

import asyncio
from typing import Any

OUTCOME_SUCCESS = "success"
OUTCOME_ERROR = "error"
OUTCOME_CANCELLED = "cancelled"


def _error_classes() -> tuple[list[tuple[tuple[type, ...], str]], tuple[type, ...]]:
    """(outcome table, wrapper types) built from discord.py's error classes."""
    from discord import app_commands
    from discord.ext import commands

    def pick(module: Any, *names: str) -> tuple[type, ...]:
        return tuple(getattr(module, n) for n in names if isinstance(getattr(module, n, None), type))

    table: list[tuple[tuple[type, ...], str]] = [
        (pick(commands, "CommandOnCooldown") + pick(app_commands, "CommandOnCooldown"), "cooldown"),
        (pick(commands, "MaxConcurrencyReached"), "max_concurrency"),
        (
            pick(
                commands,
                "MissingPermissions",
                "BotMissingPermissions",
                "MissingRole",
                "MissingAnyRole",
                "BotMissingRole",
                "BotMissingAnyRole",
            )
            + pick(
                app_commands,
                "MissingPermissions",
                "BotMissingPermissions",
                "MissingRole",
                "MissingAnyRole",
            ),
            "missing_permissions",
        ),
        (pick(commands, "DisabledCommand"), "disabled"),
        (pick(commands, "CheckFailure") + pick(app_commands, "CheckFailure"), "check_failed"),
        (pick(commands, "CommandNotFound") + pick(app_commands, "CommandNotFound"), "not_found"),
        (pick(commands, "UserInputError") + pick(app_commands, "TransformerError"), "bad_argument"),
    ]
    wrappers = pick(
        commands, "CommandInvokeError", "HybridCommandError", "ConversionError", "ExtensionFailed"
    ) + pick(app_commands, "CommandInvokeError")
    return table, wrappers


_CLASSES: tuple[list[tuple[tuple[type, ...], str]], tuple[type, ...]] | None = None


def _classes() -> tuple[list[tuple[tuple[type, ...], str]], tuple[type, ...]]:
    """:func:`_error_classes`, built on first use (discord.py is imported lazily)."""
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = _error_classes()
    return _CLASSES


def unwrap(exc: BaseException) -> BaseException:
    """The user's original exception inside discord.py's wrappers (CommandInvokeError,
    HybridCommandError, app_commands.CommandInvokeError, ConversionError)."""
    wrappers = _classes()[1]
    seen = 0
    while isinstance(exc, wrappers) and seen < 8:
        inner = getattr(exc, "original", None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
        seen += 1
    return exc


def classify(exc: BaseException) -> tuple[str, BaseException]:
    """(outcome, the exception to record). Outcomes other than ``error`` are not failures."""
    if isinstance(exc, asyncio.CancelledError):
        return OUTCOME_CANCELLED, exc
    original = unwrap(exc)
    if isinstance(original, asyncio.CancelledError):
        return OUTCOME_CANCELLED, original
    for types, outcome in _classes()[0]:
        if types and isinstance(original, types):
            return outcome, original
    return OUTCOME_ERROR, original
