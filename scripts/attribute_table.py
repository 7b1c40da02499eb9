#!/usr/bin/env python3
"""Generate the README's table of every attribute key and span event name otel_bot writes.

The keys come from ``otel_bot/_attributes.py`` (the one home of every key); "where" comes from an
AST scan of the modules that reference each constant; the value types and descriptions from the
mappings below (falling back to the trailing comment on the constant's line).

    python scripts/attribute_table.py                 # print the table
    python scripts/attribute_table.py -o FILE         # write it to FILE
    python scripts/attribute_table.py --check README.md
        # exit 1 if the table between <!-- attributes:start --> and <!-- attributes:end --> differs
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "otel_bot"
ATTRIBUTES = PACKAGE / "_attributes.py"
START = "<!-- attributes:start -->"
END = "<!-- attributes:end -->"

VALUE_TYPES = ("string", "int", "double", "boolean", "string[]", "int[]")

# Where a module's references to a constant show up in a trace. Modules that only *read* keys
# (the waterfall printer, the demo) are left out: the table says who writes what.
AREAS: dict[str, str] = {
    "_roots.py": "root",
    "_interactions.py": "root",
    "_components.py": "root",
    "_outcomes.py": "root",
    "_values.py": "root",
    "_commands.py": "command",
    "_events.py": "event",
    "_tasks.py": "task loop",
    "_rest.py": "REST",
    "_rest_sync.py": "REST",
    "_rest_attempts.py": "REST",
    "_routes.py": "REST",
    "_db.py": "DB",
    "_asyncpg.py": "DB",
    "_dbspan.py": "DB",
    "_executor.py": "executor",
    "_loopwatch.py": "event loop",
    "_flow.py": "flow",
    "_flowcommon.py": "flow",
    "_flowtracker.py": "flow",
    "_sla.py": "flow",
    "_logs.py": "logs",
    "_privacy.py": "errors",
}
READERS = {"_summary.py", "_waterfall.py", "_demo", "testing", "_attributes.py", "__init__.py", "__main__.py"}
AREA_ORDER = ["root", "command", "event", "task loop", "flow", "REST", "DB", "executor", "event loop", "logs", "errors"]

# Value types (OpenTelemetry attribute types) of every key.
TYPES: dict[str, str] = {
    "DISCORD_INTERACTION_ID": "string",
    "DISCORD_INTERACTION_TYPE": "string",
    "DISCORD_INTERACTION_RESPONSE_TYPE": "string",
    "DISCORD_INTERACTION_ACKNOWLEDGED": "boolean",
    "DISCORD_INTERACTION_ACK_MS": "double",
    "DISCORD_INTERACTION_ACK_DEADLINE_MISSED": "boolean",
    "DISCORD_INTERACTION_CREATED_AT": "int",
    "DISCORD_GATEWAY_LAG_MS": "double",
    "DISCORD_COMMAND_NAME": "string",
    "DISCORD_COMMAND_TYPE": "string",
    "DISCORD_COMMAND_OUTCOME": "string",
    "DISCORD_COMMAND_OPTIONS": "string",
    "DISCORD_COMMAND_PREFIX": "string",
    "DISCORD_AUTOCOMPLETE_OPTION": "string",
    "DISCORD_COMPONENT_TYPE": "string",
    "DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE": "string",
    "DISCORD_COMPONENT_ITEM": "string",
    "DISCORD_MODAL": "string",
    "DISCORD_GUILD_ID": "string",
    "DISCORD_CHANNEL_ID": "string",
    "DISCORD_USER_ID": "string",
    "DISCORD_MESSAGE_ID": "string",
    "DISCORD_MESSAGE_CONTENT": "string",
    "DISCORD_LOCALE": "string",
    "DISCORD_GUILD_LOCALE": "string",
    "DISCORD_SHARD_ID": "int",
    "DISCORD_EVENT_NAME": "string",
    "DISCORD_LISTENER": "string",
    "DISCORD_TASK_LOOP_NAME": "string",
    "DISCORD_TASK_LOOP_ITERATION": "int",
    "DISCORD_COG": "string",
    "DISCORD_COMMAND_HYBRID": "boolean",
    "DISCORD_COMPONENT_VIEW": "string",
    "DISCORD_MESSAGE_CREATED_AT": "int",
    "BOT_ROOT_TIMED_OUT": "boolean",
    "BOT_ROOT_PENDING_TASKS": "int",
    "HTTP_REQUEST_METHOD": "string",
    "HTTP_METHOD_LEGACY": "string",
    "HTTP_REQUEST_RESEND_COUNT": "int",
    "HTTP_RESPONSE_STATUS_CODE": "int",
    "URL_TEMPLATE": "string",
    "URL_FULL": "string",
    "SERVER_ADDRESS": "string",
    "SERVER_PORT": "int",
    "ERROR_TYPE": "string",
    "DISCORD_ERROR_CODE": "int",
    "DISCORD_RATELIMIT_BUCKET": "string",
    "DISCORD_RATELIMIT_LIMIT": "int",
    "DISCORD_RATELIMIT_REMAINING": "int",
    "DISCORD_RATELIMIT_RESET_AFTER": "double",
    "DISCORD_RATELIMIT_SCOPE": "string",
    "DISCORD_RATELIMIT_RETRY_AFTER": "double",
    "DISCORD_RATELIMIT_GLOBAL": "boolean",
    "DISCORD_REST_WEBHOOK": "boolean",
    "BOT_FLOW_NAME": "string",
    "BOT_FLOW_STATUS": "string",
    "BOT_FLOW_DURATION_MS": "double",
    "BOT_FLOW_THRESHOLD_MS": "double",
    "BOT_FLOW_SEVERITY": "string",
    "BOT_FLOW_THRESHOLD_EXCEEDED": "boolean",
    "BOT_FLOW_OVER_MS": "double",
    "BOT_FLOW_OVER_PERCENT": "double",
    "BOT_FLOW_USER_ID": "string",
    "BOT_CHECKPOINT": "boolean",
    "BOT_CHECKPOINT_UNCLOSED": "boolean",
    "BOT_CHECKPOINT_MISMATCHED": "boolean",
    "BOT_CHECKPOINT_ELAPSED_MS": "double",
    "BOT_CHECKPOINT_STEP_MS": "double",
    "DB_SYSTEM_NAME": "string",
    "DB_QUERY_TEXT": "string",
    "DB_OPERATION_NAME": "string",
    "DB_COLLECTION_NAME": "string",
    "DB_NAMESPACE": "string",
    "DB_RESPONSE_STATUS_CODE": "string",
    "DB_RESPONSE_RETURNED_ROWS": "int",
    "DB_QUERY_PARAMETER_PREFIX": "string",
    "DB_POOL_NAME": "string",
    "DB_POOL_SIZE": "int",
    "DB_POOL_MAX_SIZE": "int",
    "DB_POOL_IDLE": "int",
    "DB_POOL_WAIT_MS": "double",
    "BOT_DB_SLOW": "boolean",
    "BOT_DB_SLOW_THRESHOLD_MS": "double",
    "BOT_DB_REPEAT_COUNT": "int",
    "BOT_DB_DURATION_MS": "double",
    "NETWORK_TRANSPORT": "string",
    "DB_LEGACY_SYSTEM": "string",
    "DB_LEGACY_NAME": "string",
    "DB_LEGACY_STATEMENT": "string",
    "DB_LEGACY_USER": "string",
    "DB_LEGACY_PARAMETERS": "string",
    "NET_LEGACY_PEER_NAME": "string",
    "NET_LEGACY_PEER_PORT": "int",
    "NET_LEGACY_TRANSPORT": "string",
    "CODE_FUNCTION_NAME": "string",
    "BOT_EXECUTOR_KIND": "string",
    "BOT_EXECUTOR_CLASS": "string",
    "BOT_EXECUTOR_QUEUE_WAIT_MS": "double",
    "BOT_EXECUTOR_RUN_MS": "double",
    "BOT_EXECUTOR_WORKER": "string",
    "THREAD_NAME": "string",
    "THREAD_ID": "int",
    "PROCESS_PID": "int",
    "BOT_LOOP_BLOCKED_MS": "double",
    "BOT_LOOP_BLOCKED_THRESHOLD_MS": "double",
    "LOG_SEVERITY": "string",
    "LOG_MESSAGE": "string",
    "LOG_LOGGER": "string",
    "CODE_FILE_PATH": "string",
    "CODE_LINE_NUMBER": "int",
    "EXCEPTION_TYPE": "string",
    "EXCEPTION_MESSAGE": "string",
    "EXCEPTION_STACKTRACE": "string",
}

# Descriptions; a key missing here falls back to its trailing comment in _attributes.py.
DESCRIPTIONS: dict[str, str] = {
    "DISCORD_INTERACTION_ID": "The interaction's snowflake id (a string: ids exceed 2**53).",
    "DISCORD_INTERACTION_TYPE": "Interaction type: application_command, component, autocomplete, modal_submit.",
    "DISCORD_INTERACTION_RESPONSE_TYPE": "How the interaction was first answered: deferred, message, modal, ...",
    "DISCORD_INTERACTION_ACKNOWLEDGED": "Whether the interaction got a response before the root ended.",
    "DISCORD_INTERACTION_ACK_MS": "Milliseconds from the interaction's creation (snowflake) to the first response.",
    "DISCORD_INTERACTION_ACK_DEADLINE_MISSED": "The first response came after Discord's 3-second deadline (or never).",
    "DISCORD_INTERACTION_CREATED_AT": "Creation time from the snowflake, unix milliseconds.",
    "DISCORD_GATEWAY_LAG_MS": "Milliseconds from creation (snowflake) to the bot receiving the event.",
    "DISCORD_COMMAND_NAME": 'Qualified command name, e.g. "ladder queue".',
    "DISCORD_COMMAND_TYPE": "chat_input, user, message, prefix or hybrid.",
    "DISCORD_COMMAND_OUTCOME": "success, check_failed, cooldown, error, ...",
    "DISCORD_COMMAND_OPTIONS": "Option values (user data): only with the opt-in setting.",
    "DISCORD_COMMAND_PREFIX": "The prefix a prefix command was invoked with.",
    "DISCORD_AUTOCOMPLETE_OPTION": "The option being autocompleted.",
    "DISCORD_COMPONENT_TYPE": "button, string_select, user_select, ...",
    "DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE": "The custom_id with ids replaced by placeholders (low cardinality).",
    "DISCORD_COMPONENT_ITEM": "The Item / DynamicItem class that handled the component.",
    "DISCORD_MODAL": "The Modal class that handled the submit.",
    "DISCORD_GUILD_ID": "Guild snowflake.",
    "DISCORD_CHANNEL_ID": "Channel snowflake.",
    "DISCORD_USER_ID": "The invoking user: off, raw or an HMAC, by setting.",
    "DISCORD_MESSAGE_ID": "Message snowflake.",
    "DISCORD_MESSAGE_CONTENT": "Message content (user data): only with the opt-in setting.",
    "DISCORD_LOCALE": "The user's locale.",
    "DISCORD_GUILD_LOCALE": "The guild's preferred locale.",
    "DISCORD_SHARD_ID": "The shard that received the event.",
    "DISCORD_EVENT_NAME": 'Gateway event name, e.g. "message".',
    "DISCORD_LISTENER": "The listener's qualified name.",
    "DISCORD_TASK_LOOP_NAME": "The tasks.Loop's coroutine name.",
    "DISCORD_TASK_LOOP_ITERATION": "The loop's iteration counter.",
    "DISCORD_COG": "The cog the command or listener belongs to.",
    "DISCORD_COMMAND_HYBRID": "A hybrid command (invoked as prefix or slash).",
    "DISCORD_COMPONENT_VIEW": "The View class the item belongs to.",
    "DISCORD_MESSAGE_CREATED_AT": "Message creation time from the snowflake, unix milliseconds.",
    "BOT_ROOT_TIMED_OUT": "The root was ended by Settings.root_timeout_s, not by its tasks finishing.",
    "BOT_ROOT_PENDING_TASKS": "Tasks still running when the root was force-ended.",
    "HTTP_REQUEST_METHOD": "HTTP method (OpenTelemetry HTTP client conventions).",
    "HTTP_METHOD_LEGACY": "Pre-stable HTTP method key; read only, never written.",
    "HTTP_REQUEST_RESEND_COUNT": "Retries discord.py made (429 / 5xx), from the second attempt on.",
    "HTTP_RESPONSE_STATUS_CODE": "HTTP status of the last attempt.",
    "URL_TEMPLATE": "Route template, e.g. /channels/{channel_id}/messages.",
    "URL_FULL": "Redacted URL (tokens replaced): never carries an interaction or webhook token.",
    "SERVER_ADDRESS": "Discord API host.",
    "SERVER_PORT": "Discord API port.",
    "ERROR_TYPE": "Exception class or HTTP status class when the operation failed.",
    "DISCORD_ERROR_CODE": "Discord's JSON error code (e.g. 10062 Unknown interaction).",
    "DISCORD_RATELIMIT_BUCKET": "X-RateLimit-Bucket.",
    "DISCORD_RATELIMIT_LIMIT": "X-RateLimit-Limit.",
    "DISCORD_RATELIMIT_REMAINING": "X-RateLimit-Remaining.",
    "DISCORD_RATELIMIT_RESET_AFTER": "X-RateLimit-Reset-After, seconds.",
    "DISCORD_RATELIMIT_SCOPE": "X-RateLimit-Scope: user, global or shared.",
    "DISCORD_RATELIMIT_RETRY_AFTER": "retry_after of a 429, seconds.",
    "DISCORD_RATELIMIT_GLOBAL": "The 429 was a global rate limit.",
    "DISCORD_REST_WEBHOOK": "Sent through the webhook adapter (interaction callbacks, followups, webhooks).",
    "BOT_FLOW_NAME": "The flow (FlowTracker / measured operation) name.",
    "BOT_FLOW_STATUS": "How the flow ended: ok or error.",
    "BOT_FLOW_DURATION_MS": "The flow's duration, milliseconds.",
    "BOT_FLOW_THRESHOLD_MS": "The configured threshold for the flow, milliseconds.",
    "BOT_FLOW_SEVERITY": "FAST, OK, SLOW or CRITICAL against the flow's bounds.",
    "BOT_FLOW_THRESHOLD_EXCEEDED": "The flow took longer than its threshold.",
    "BOT_FLOW_OVER_MS": "Milliseconds over the threshold.",
    "BOT_FLOW_OVER_PERCENT": "Percent over the threshold.",
    "BOT_FLOW_USER_ID": "The user a flow ran for (hashed or raw, by setting).",
    "BOT_CHECKPOINT": "Marks a checkpoint / FlowTracker step span.",
    "BOT_CHECKPOINT_UNCLOSED": "The checkpoint was still open when its parent ended.",
    "BOT_CHECKPOINT_MISMATCHED": "The checkpoint was closed out of order.",
    "BOT_CHECKPOINT_ELAPSED_MS": "Elapsed milliseconds of a measure() block.",
    "BOT_CHECKPOINT_STEP_MS": "Milliseconds since the previous checkpoint.",
    "DB_SYSTEM_NAME": "Database system, e.g. postgresql.",
    "DB_QUERY_TEXT": "The SQL text (parameters are never inlined).",
    "DB_OPERATION_NAME": "SQL operation: SELECT, INSERT, ...",
    "DB_COLLECTION_NAME": "The table the statement works on.",
    "DB_NAMESPACE": "The database name.",
    "DB_RESPONSE_STATUS_CODE": "SQLSTATE of a failed query.",
    "DB_RESPONSE_RETURNED_ROWS": "Rows returned by the query.",
    "DB_QUERY_PARAMETER_PREFIX": "Prefix of db.query.parameter.<index>: parameter values, only with the opt-in setting.",
    "DB_POOL_NAME": "Connection pool name.",
    "DB_POOL_SIZE": "Pool size when the connection was acquired.",
    "DB_POOL_MAX_SIZE": "Pool maximum size.",
    "DB_POOL_IDLE": "Idle connections in the pool.",
    "DB_POOL_WAIT_MS": "Milliseconds spent waiting for a pool connection.",
    "BOT_DB_SLOW": "The query took longer than the slow-query threshold.",
    "BOT_DB_SLOW_THRESHOLD_MS": "The slow-query threshold, milliseconds.",
    "BOT_DB_REPEAT_COUNT": "How often the same statement ran in this unit of work (N+1 hint).",
    "BOT_DB_DURATION_MS": "Query duration, milliseconds.",
    "NETWORK_TRANSPORT": "tcp or unix.",
    "DB_LEGACY_SYSTEM": "Pre-stable key from contrib instrumentations; translated to db.system.name.",
    "DB_LEGACY_NAME": "Pre-stable key; translated to db.namespace.",
    "DB_LEGACY_STATEMENT": "Pre-stable key; translated to db.query.text.",
    "DB_LEGACY_USER": "Pre-stable key; dropped.",
    "DB_LEGACY_PARAMETERS": "Pre-stable key; dropped unless parameters are opted in.",
    "NET_LEGACY_PEER_NAME": "Pre-stable key; translated to server.address.",
    "NET_LEGACY_PEER_PORT": "Pre-stable key; translated to server.port.",
    "NET_LEGACY_TRANSPORT": "Pre-stable key; translated to network.transport.",
    "CODE_FUNCTION_NAME": "The offloaded callable's qualified name.",
    "BOT_EXECUTOR_KIND": "thread or process.",
    "BOT_EXECUTOR_CLASS": "The executor class, e.g. ThreadPoolExecutor.",
    "BOT_EXECUTOR_QUEUE_WAIT_MS": "Milliseconds the work waited for a worker.",
    "BOT_EXECUTOR_RUN_MS": "Milliseconds the work ran in the worker.",
    "BOT_EXECUTOR_WORKER": "The worker's thread name or process id.",
    "THREAD_NAME": "Worker thread name.",
    "THREAD_ID": "Worker thread id.",
    "PROCESS_PID": "Worker process id.",
    "BOT_LOOP_BLOCKED_MS": "How long the event loop was blocked, milliseconds.",
    "BOT_LOOP_BLOCKED_THRESHOLD_MS": "The blocked-loop threshold, milliseconds.",
    "LOG_SEVERITY": "WARNING, ERROR or CRITICAL.",
    "LOG_MESSAGE": "The formatted log message (redacted).",
    "LOG_LOGGER": "The logger name.",
    "CODE_FILE_PATH": "Source file of the log call.",
    "CODE_LINE_NUMBER": "Source line of the log call.",
    "EXCEPTION_TYPE": "Exception class, qualified.",
    "EXCEPTION_MESSAGE": "Exception message, redacted (no tokens).",
    "EXCEPTION_STACKTRACE": "Traceback, redacted (no tokens).",
    # span events
    "EVENT_RATE_LIMITED": "A 429 from Discord (bucket, retry_after, scope).",
    "EVENT_REST_RETRY": "A non-429 response discord.py retried (5xx).",
    "EVENT_EXCEPTION": "OpenTelemetry's exception event, with redacted text.",
    "EVENT_ACK_DEADLINE_MISSED": "The interaction was not acknowledged within 3 seconds.",
    "EVENT_COMMAND_OUTCOME": "A command ended other than by success (check failure, cooldown, ...).",
    "EVENT_THRESHOLD_EXCEEDED": "A flow exceeded its threshold.",
    "EVENT_SLOW_QUERY": "A query exceeded the slow-query threshold.",
    "EVENT_REPEATED_QUERY": "The same statement ran repeatedly in one unit of work.",
    "EVENT_LOOP_BLOCKED": "The event loop was blocked longer than the threshold.",
    "EVENT_LOG": "A WARNING+ log record written inside the span.",
}


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    name: str
    value: str
    section: str
    where: str
    value_type: str
    description: str

    @property
    def is_event(self) -> bool:
        return self.name.startswith("EVENT_")


def _constants() -> list[tuple[str, str, str, str]]:
    """(name, value, section, trailing comment) of every string constant, in file order."""
    source = ATTRIBUTES.read_text(encoding="utf-8")
    comments: dict[int, str] = {}
    sections: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        text = tok.string.lstrip("#").strip()
        if tok.line.strip().startswith("#"):
            if text.startswith("---"):
                sections[tok.start[0]] = text.strip("- ").strip()
        else:
            comments[tok.start[0]] = text
    out: list[tuple[str, str, str, str]] = []
    section = ""
    section_lines = sorted(sections)
    for node in ast.parse(source).body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        if not isinstance(target, ast.Name) or not isinstance(value, ast.Constant):
            continue
        if not isinstance(value.value, str) or not target.id.isupper():
            continue
        for line in section_lines:
            if line < node.lineno:
                section = sections[line]
        out.append((target.id, value.value, section, comments.get(node.lineno, "")))
    return out


def _label(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE)
    if rel.parts[0] in READERS or rel.name in READERS:
        return None
    return AREAS.get(rel.as_posix(), rel.stem.lstrip("_"))


def references() -> dict[str, set[str]]:
    """Constant name -> the areas whose modules reference it."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        label = _label(path)
        if label is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: set[str] = set()
        direct: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name == "_attributes":
                        aliases.add(alias.asname or alias.name)
                    elif node.module and node.module.endswith("_attributes"):
                        direct.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.endswith("._attributes"):
                        aliases.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            name: str | None = None
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                name = node.attr
            elif isinstance(node, ast.Name) and node.id in direct:
                name = node.id
            if name is not None:
                found.setdefault(name, set()).add(label)
    return found


def rows() -> list[Row]:
    """Every constant as a table row."""
    refs = references()
    out: list[Row] = []
    for name, value, section, comment in _constants():
        areas = refs.get(name, set())
        ordered = [a for a in AREA_ORDER if a in areas] + sorted(areas - set(AREA_ORDER))
        out.append(
            Row(
                name=name,
                value=value,
                section=section,
                where=", ".join(ordered) if ordered else "(not written)",
                value_type="" if name.startswith("EVENT_") else TYPES.get(name, "?"),
                description=DESCRIPTIONS.get(name, comment),
            )
        )
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The Markdown table (attributes, then span events), ending with a newline."""
    all_rows = rows()
    lines = [
        "| Key | Constant | Where | Type | Description |",
        "|---|---|---|---|---|",
    ]
    for row in all_rows:
        if not row.is_event:
            key = f"`{row.value}<index>`" if row.value.endswith(".") else f"`{row.value}`"
            lines.append(
                f"| {key} | `{row.name}` | {row.where} | {row.value_type} | {_cell(row.description)} |"
            )
    lines += [
        "",
        "| Span event | Constant | Where | Description |",
        "|---|---|---|---|",
    ]
    for row in all_rows:
        if row.is_event:
            lines.append(f"| `{row.value}` | `{row.name}` | {row.where} | {_cell(row.description)} |")
    # Keep the literal key visible for prefixes too (e.g. `db.query.parameter.`), for grep.
    prefixes = [r for r in all_rows if not r.is_event and r.value.endswith(".")]
    if prefixes:
        lines += ["", "Prefixes: " + ", ".join(f"`{r.value}` (`{r.name}`)" for r in prefixes) + "."]
    return "\n".join(lines) + "\n"


def extract(text: str) -> str | None:
    """The text between the markers (without the marker lines), or None without markers."""
    start = text.find(START)
    end = text.find(END)
    if start < 0 or end < 0 or end < start:
        return None
    inner = text[start + len(START) : end]
    return inner.strip("\n") + "\n"


def check(path: Path) -> int:
    """0 when the table in ``path`` is current, 1 (with a diff on stderr) when not."""
    current = extract(path.read_text(encoding="utf-8"))
    if current is None:
        print(f"{path}: no {START} / {END} markers", file=sys.stderr)
        return 1
    expected = render()
    if current == expected:
        return 0
    diff = difflib.unified_diff(
        current.splitlines(keepends=True), expected.splitlines(keepends=True), str(path), "generated"
    )
    print(f"{path}: attribute table is out of date; run scripts/attribute_table.py\n", file=sys.stderr)
    sys.stderr.writelines(diff)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", type=Path, metavar="README", help="verify the table between the markers")
    parser.add_argument("-o", "--output", type=Path, help="write the table to this file")
    args = parser.parse_args(argv)
    if args.check is not None:
        return check(args.check)
    table = render()
    if args.output is not None:
        args.output.write_text(table, encoding="utf-8")
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
