"""Every span attribute key, span event name and fixed attribute value otel_bot writes.

No other module spells an attribute key as a string literal: import it from here. The README's
attribute table is generated from (and tested against) this module.
"""

from __future__ import annotations

from typing import Final

# --- Discord: roots -----------------------------------------------------------------------
DISCORD_INTERACTION_ID: Final = "discord.interaction.id"
DISCORD_INTERACTION_TYPE: Final = "discord.interaction.type"  # application_command, component, ...
DISCORD_INTERACTION_RESPONSE_TYPE: Final = "discord.interaction.response.type"  # deferred, message, ...
DISCORD_INTERACTION_ACKNOWLEDGED: Final = "discord.interaction.acknowledged"
DISCORD_INTERACTION_ACK_MS: Final = "discord.interaction.ack_ms"
DISCORD_INTERACTION_ACK_DEADLINE_MISSED: Final = "discord.interaction.ack_deadline_missed"
DISCORD_INTERACTION_CREATED_AT: Final = "discord.interaction.created_at"  # unix ms from the snowflake
DISCORD_GATEWAY_LAG_MS: Final = "discord.gateway.lag_ms"
DISCORD_COMMAND_NAME: Final = "discord.command.name"  # qualified name, e.g. "ladder queue"
DISCORD_COMMAND_TYPE: Final = "discord.command.type"  # chat_input, user, message, prefix, hybrid
DISCORD_COMMAND_OUTCOME: Final = "discord.command.outcome"  # success, check_failed, cooldown, ...
DISCORD_COMMAND_OPTIONS: Final = "discord.command.options"  # opt-in: option values (user data)
DISCORD_COMMAND_PREFIX: Final = "discord.command.prefix"
DISCORD_AUTOCOMPLETE_OPTION: Final = "discord.autocomplete.option"
DISCORD_COMPONENT_TYPE: Final = "discord.component.type"  # button, string_select, ...
DISCORD_COMPONENT_CUSTOM_ID_TEMPLATE: Final = "discord.component.custom_id_template"
DISCORD_COMPONENT_ITEM: Final = "discord.component.item"  # the Item / DynamicItem class name
DISCORD_MODAL: Final = "discord.modal"  # the Modal class name
DISCORD_GUILD_ID: Final = "discord.guild.id"
DISCORD_CHANNEL_ID: Final = "discord.channel.id"
DISCORD_USER_ID: Final = "discord.user.id"  # off, raw or HMAC, by setting
DISCORD_MESSAGE_ID: Final = "discord.message.id"
DISCORD_MESSAGE_CONTENT: Final = "discord.message.content"  # opt-in: user data
DISCORD_LOCALE: Final = "discord.locale"
DISCORD_GUILD_LOCALE: Final = "discord.guild.locale"
DISCORD_SHARD_ID: Final = "discord.shard.id"
DISCORD_EVENT_NAME: Final = "discord.event.name"
DISCORD_LISTENER: Final = "discord.listener"
DISCORD_TASK_LOOP_NAME: Final = "discord.task_loop.name"
DISCORD_TASK_LOOP_ITERATION: Final = "discord.task_loop.iteration"
DISCORD_COG: Final = "discord.cog"
DISCORD_COMMAND_HYBRID: Final = "discord.command.hybrid"  # bool: a hybrid command (prefix or slash)
DISCORD_COMPONENT_VIEW: Final = "discord.component.view"  # the View class the item belongs to
DISCORD_MESSAGE_CREATED_AT: Final = "discord.message.created_at"  # unix ms from the snowflake
BOT_ROOT_TIMED_OUT: Final = "bot.root.timed_out"  # bool: ended by Settings.root_timeout_s
BOT_ROOT_PENDING_TASKS: Final = "bot.root.pending_tasks"  # tasks still running at a forced end

# --- Discord REST (OpenTelemetry HTTP client conventions + Discord specifics) --------------
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_METHOD_LEGACY: Final = "http.method"  # pre-stable conventions (read only)
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_TEMPLATE: Final = "url.template"
URL_FULL: Final = "url.full"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
DISCORD_ERROR_CODE: Final = "discord.error.code"
DISCORD_RATELIMIT_BUCKET: Final = "discord.ratelimit.bucket"
DISCORD_RATELIMIT_LIMIT: Final = "discord.ratelimit.limit"
DISCORD_RATELIMIT_REMAINING: Final = "discord.ratelimit.remaining"
DISCORD_RATELIMIT_RESET_AFTER: Final = "discord.ratelimit.reset_after"
DISCORD_RATELIMIT_SCOPE: Final = "discord.ratelimit.scope"
DISCORD_RATELIMIT_RETRY_AFTER: Final = "discord.ratelimit.retry_after"
DISCORD_RATELIMIT_GLOBAL: Final = "discord.ratelimit.global"
DISCORD_REST_WEBHOOK: Final = "discord.rest.webhook"  # bool: sent through the webhook adapter

# --- flows, checkpoints, thresholds ----------------------------------------------------------
BOT_FLOW_NAME: Final = "bot.flow.name"
BOT_FLOW_STATUS: Final = "bot.flow.status"
BOT_FLOW_DURATION_MS: Final = "bot.flow.duration_ms"
BOT_FLOW_THRESHOLD_MS: Final = "bot.flow.threshold_ms"
BOT_FLOW_SEVERITY: Final = "bot.flow.severity"  # FAST, OK, SLOW, CRITICAL
BOT_FLOW_THRESHOLD_EXCEEDED: Final = "bot.flow.threshold_exceeded"
BOT_FLOW_OVER_MS: Final = "bot.flow.over_ms"
BOT_FLOW_OVER_PERCENT: Final = "bot.flow.over_percent"
BOT_FLOW_USER_ID: Final = "bot.flow.user_id"
BOT_CHECKPOINT: Final = "bot.checkpoint.marker"  # marks a checkpoint / FlowTracker step span (bool)
BOT_CHECKPOINT_UNCLOSED: Final = "bot.checkpoint.unclosed"
BOT_CHECKPOINT_MISMATCHED: Final = "bot.checkpoint.mismatched"
BOT_CHECKPOINT_ELAPSED_MS: Final = "bot.checkpoint.elapsed_ms"
BOT_CHECKPOINT_STEP_MS: Final = "bot.checkpoint.step_ms"  # ms since the previous checkpoint

# --- database (stable database semantic conventions) -----------------------------------------
DB_SYSTEM_NAME: Final = "db.system.name"
DB_QUERY_TEXT: Final = "db.query.text"
DB_OPERATION_NAME: Final = "db.operation.name"
DB_COLLECTION_NAME: Final = "db.collection.name"
DB_NAMESPACE: Final = "db.namespace"
DB_RESPONSE_STATUS_CODE: Final = "db.response.status_code"
DB_RESPONSE_RETURNED_ROWS: Final = "db.response.returned_rows"
DB_QUERY_PARAMETER_PREFIX: Final = "db.query.parameter."  # opt-in, suffixed with the index
DB_POOL_NAME: Final = "db.client.connection.pool.name"
DB_POOL_SIZE: Final = "bot.db.pool.size"
DB_POOL_MAX_SIZE: Final = "bot.db.pool.max_size"
DB_POOL_IDLE: Final = "bot.db.pool.idle"
DB_POOL_WAIT_MS: Final = "bot.db.pool.wait_ms"
BOT_DB_SLOW: Final = "bot.db.slow"
BOT_DB_SLOW_THRESHOLD_MS: Final = "bot.db.slow_threshold_ms"
BOT_DB_REPEAT_COUNT: Final = "bot.db.repeat_count"
BOT_DB_DURATION_MS: Final = "bot.db.duration_ms"
NETWORK_TRANSPORT: Final = "network.transport"
# Pre-stable keys the contrib DB instrumentations may still emit; translated to the stable ones.
DB_LEGACY_SYSTEM: Final = "db.system"
DB_LEGACY_NAME: Final = "db.name"
DB_LEGACY_STATEMENT: Final = "db.statement"
DB_LEGACY_USER: Final = "db.user"
DB_LEGACY_PARAMETERS: Final = "db.statement.parameters"
NET_LEGACY_PEER_NAME: Final = "net.peer.name"
NET_LEGACY_PEER_PORT: Final = "net.peer.port"
NET_LEGACY_TRANSPORT: Final = "net.transport"

# --- executor offloads and the event loop ----------------------------------------------------
CODE_FUNCTION_NAME: Final = "code.function.name"
BOT_EXECUTOR_KIND: Final = "bot.executor.kind"  # thread, process
BOT_EXECUTOR_CLASS: Final = "bot.executor.class"
BOT_EXECUTOR_QUEUE_WAIT_MS: Final = "bot.executor.queue_wait_ms"
BOT_EXECUTOR_RUN_MS: Final = "bot.executor.run_ms"
BOT_EXECUTOR_WORKER: Final = "bot.executor.worker"  # thread name or process id
THREAD_NAME: Final = "thread.name"
THREAD_ID: Final = "thread.id"
PROCESS_PID: Final = "process.pid"
BOT_LOOP_BLOCKED_MS: Final = "bot.event_loop.blocked_ms"
BOT_LOOP_BLOCKED_THRESHOLD_MS: Final = "bot.event_loop.blocked_threshold_ms"

# --- log records mirrored as span events (the "log" event) ----------------------------------
LOG_SEVERITY: Final = "log.severity"  # WARNING, ERROR, CRITICAL
LOG_MESSAGE: Final = "log.message"
LOG_LOGGER: Final = "log.logger"
CODE_FILE_PATH: Final = "code.file.path"
CODE_LINE_NUMBER: Final = "code.line.number"

# --- exceptions (OpenTelemetry exception conventions) ----------------------------------------
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"

# --- span event names --------------------------------------------------------------------------
EVENT_RATE_LIMITED: Final = "discord.rate_limited"
EVENT_REST_RETRY: Final = "discord.rest.retry"  # a non-429 response discord.py retried (5xx)
EVENT_EXCEPTION: Final = "exception"  # OpenTelemetry's exception event, recorded with redacted text
EVENT_ACK_DEADLINE_MISSED: Final = "discord.interaction.ack_deadline_missed"
EVENT_COMMAND_OUTCOME: Final = "discord.command.outcome"
EVENT_THRESHOLD_EXCEEDED: Final = "bot.flow.threshold_exceeded"
EVENT_SLOW_QUERY: Final = "db.slow_query"
EVENT_REPEATED_QUERY: Final = "db.repeated_query"
EVENT_LOOP_BLOCKED: Final = "bot.event_loop.blocked"
EVENT_LOG: Final = "log"

# --- fixed values ---------------------------------------------------------------------------------
INTERACTION_TYPES: Final = {
    1: "ping",
    2: "application_command",
    3: "component",
    4: "autocomplete",
    5: "modal_submit",
}
SEVERITIES: Final = ("FAST", "OK", "SLOW", "CRITICAL")
