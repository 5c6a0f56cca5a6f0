"""The worker's database access (synchronous psycopg): routes, tokens, reads, and outcomes.

Every outcome of a batch is written in one transaction, so a message is never
`failed` without being in the DLQ, nor in both queues. Status updates are
compare-and-set on (status = pending, message_id) so a late duplicate can never
move a message backwards.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import msgspec
from loguru import logger
from psycopg.rows import class_row, scalar_row

from taskq_core.callbacks import PendingCallback, callback_for
from taskq_core.database import BoundedConnection, SyncPool, database_errors
from taskq_core.deliveries import (
    Delivery,
    Dropped,
    DueQueue,
    Failed,
    Outcome,
    ReadBatch,
    RetryLater,
    Snoozed,
    Succeeded,
    TaskTypeRoute,
    TaskTypesVersion,
    TokenGrant,
)
from taskq_core.errors import DatabaseError, DatabaseUnavailableError, TaskTypeUnavailableError
from taskq_core.models import QueuedCall
from taskq_core.queries import QUERIES
from taskq_core.rate_shaping import rate_observations
from taskq_core.repository.circuits import HostCalls, HostState, host_states
from taskq_core.schema_version import check_database
from taskq_core.secret_box import SecretBox, SecretUnreadableError
from taskq_core.status import TaskStatus
from taskq_core.type_defaults import decode_defaults

_decode_call = msgspec.json.Decoder(QueuedCall).decode
_encode = msgspec.json.Encoder().encode


class WorkerRepository:
    """All SQL a worker runs, over a psycopg connection pool."""

    def __init__(
        self, pool: SyncPool, *, dlq_queue_name: str, secrets: SecretBox | None = None
    ) -> None:
        self._pool = pool
        self._dlq = dlq_queue_name
        self._secrets = secrets  # opens signing secrets; None: SECRETS_KEY is not set

    def ping(self) -> None:
        with self._connection() as conn:
            conn.execute(QUERIES["ping"])

    def check_schema(self) -> None:
        """SchemaMismatchError unless this code can run on the database's migrations."""
        with self._connection() as conn:
            check_database(conn)

    def routes(self) -> list[TaskTypeRoute]:
        with self._connection() as conn:
            rows = conn.execute(QUERIES["list_task_types"]).fetchall()
        return [
            TaskTypeRoute(
                task_type=str(task_type),
                queue_name=str(queue_name),
                max_rps=None if max_rps is None else float(max_rps),
                paused=bool(paused),
                defaults=decode_defaults(defaults),
                max_concurrency=max_concurrency,
                signing_keys=self._open(str(task_type), sealed),
                adaptive=bool(adaptive),
            )
            for (
                task_type,
                queue_name,
                max_rps,
                paused,
                defaults,
                max_concurrency,
                sealed,
                adaptive,
            ) in rows
        ]

    def _open(self, task_type: str, sealed: bytes | None) -> tuple[bytes, ...] | None:
        """A type's signing secrets; None (logged) when this worker cannot decrypt them."""
        if sealed is None:
            return ()
        reason = f"task type {task_type!r} signs its calls, but SECRETS_KEY is not set"
        if self._secrets is not None:
            try:
                return self._secrets.open(task_type, bytes(sealed))
            except SecretUnreadableError as error:
                reason = error.message
        logger.bind(task_type=task_type).error("{}; its calls fail until it is fixed", reason)
        return None

    def due_queues(self, horizon: float) -> tuple[TaskTypesVersion, list[DueQueue]]:
        """The task types' version and the queues due within `horizon` seconds (one statement)."""
        with self._connection() as conn:
            rows = conn.execute(QUERIES["due_queues"], {"horizon": horizon}).fetchall()
        version = TaskTypesVersion(int(rows[0][2]), float(rows[0][3])) if rows else None
        due = [DueQueue(str(queue), float(due_in)) for queue, due_in, _, _ in rows if queue]
        return version or TaskTypesVersion(0, 0.0), due

    def take_tokens(self, task_type: str, requested: int) -> TokenGrant | None:
        """Tokens from the type's shared bucket; None when the type has no limit."""
        with self._connection() as conn:
            cursor = conn.cursor(row_factory=class_row(TokenGrant))
            params = {"task_type": task_type, "requested": requested}
            return cursor.execute(QUERIES["take_tokens"], params).fetchone()

    def take_slots(self, task_type: str, requested: int, ttl: float) -> list[int]:
        """Leases on up to `requested` of the type's free concurrency slots, each for `ttl` s."""
        params = {"task_type": task_type, "requested": requested, "ttl": ttl}
        with self._connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            return [int(lease) for lease in cursor.execute(QUERIES["take_slots"], params)]

    def renew_leases(self, lease_ids: Sequence[int], ttl: float) -> None:
        with self._connection() as conn:
            conn.execute(QUERIES["renew_leases"], {"lease_ids": list(lease_ids), "ttl": ttl})

    def release_leases(self, lease_ids: Sequence[int]) -> None:
        with self._connection() as conn:
            conn.execute(QUERIES["release_leases"], {"lease_ids": list(lease_ids)})

    def read(
        self,
        route: TaskTypeRoute,
        quantity: int,
        visibility_timeout: float,
        *,
        send_by: float = math.inf,
    ) -> ReadBatch:
        """Up to `quantity` messages; a read that finds the queue dry also settles when it is due.

        Settling in the same transaction keeps an idle queue at one transaction per wake-up.
        `send_by` is when the messages' rate tokens lapse (Delivery.send_by).
        """
        hidden_for = max(1, round(visibility_timeout))
        params = {
            "queue": route.queue_name,
            "task_type": route.task_type,
            "vt": hidden_for,
            "qty": quantity,
        }
        due_in: float | None = None
        try:
            with self._connection() as conn:
                cursor = conn.cursor(row_factory=class_row(_MessageRow))
                rows = cursor.execute(QUERIES["read_messages"], params).fetchall()
                dry = len(rows) < quantity
                if dry:
                    due_in = self._due_in(conn, route)
        except DatabaseUnavailableError:
            raise  # the database itself is away: not this type's fault
        except DatabaseError as error:
            # The statements touch only this type's queue (and its due row): dropped,
            # renamed, or unreadable, it is this type's problem alone.
            raise TaskTypeUnavailableError(route.task_type, error.message) from error
        hidden_until = time.monotonic() + hidden_for
        deliveries = [
            Delivery(
                queue_name=route.queue_name,
                message_id=row.msg_id,
                task_type=route.task_type,
                raw=row.message,
                call=_decode(row.message),
                attempt=row.attempt,
                status=TaskStatus(row.status),
                snoozes=row.snoozes,
                type_defaults=route.defaults,
                hidden_until=hidden_until,
                signing_keys=route.signing_keys,
                adaptive=route.adaptive,
                send_by=send_by,
            )
            for row in rows
        ]
        return ReadBatch(deliveries, dry, due_in)

    def _due_in(self, conn: BoundedConnection, route: TaskTypeRoute) -> float | None:
        """Seconds until a dry queue has work: when its type's snooze ends, else its next message.

        A snoozed type reads nothing however many messages are visible, so it is
        due when the snooze ends, not now (which would poll it until then).
        """
        scalar = conn.cursor(row_factory=scalar_row)
        snoozed = scalar.execute(QUERIES["snoozed_for"], {"task_type": route.task_type}).fetchone()
        if snoozed is not None:
            return float(snoozed)
        settled = scalar.execute(QUERIES["settle_due"], {"queue": route.queue_name})
        due_in: float | None = settled.fetchone()
        return due_in

    def hide_for(self, deliveries: Sequence[Delivery], seconds: Sequence[float]) -> None:
        """Keep each message invisible for its own number of seconds from now."""
        with self._connection() as conn, conn.transaction():
            for queue, pairs in _pairs_by_queue(zip(deliveries, seconds, strict=True)).items():
                conn.execute(
                    QUERIES["delay_messages"],
                    {
                        "queue": queue,
                        "message_ids": [message_id for message_id, _ in pairs],
                        "delays": [delay for _, delay in pairs],
                    },
                )

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Make messages visible again at once (read but never started)."""
        leases = _lease_ids(deliveries)
        with self._connection() as conn, conn.transaction():
            released = _ids_by_queue(deliveries)
            for queue, ids in released.items():
                conn.execute(QUERIES["release_messages"], {"queue": queue, "message_ids": ids})
            if leases:
                conn.execute(QUERIES["release_leases"], {"lease_ids": leases})
            for queue in released:  # last: see record()
                conn.execute(QUERIES["mark_due"], {"queue": queue, "seconds": 0.0})

    def record(
        self, outcomes: Sequence[Outcome], host_calls: HostCalls | None = None
    ) -> list[HostState] | None:
        """Write a batch of outcomes in one transaction, with the callbacks they owe.

        Callbacks' own outcomes go to their taskq.callbacks rows; a callback that
        fails for good is deleted, not dead-lettered (its row says so). With
        `host_calls`, the batch's calls are added to the host breakers in the
        same transaction (one commit per batch, not two), and the hosts not
        closed afterwards are returned.
        """
        callbacks = [outcome for outcome in outcomes if _is_callback(outcome)]
        own = [outcome for outcome in outcomes if not _is_callback(outcome)]
        succeeded = [outcome for outcome in own if isinstance(outcome, Succeeded)]
        retrying = [outcome for outcome in own if isinstance(outcome, RetryLater)]
        snoozed = [outcome for outcome in own if isinstance(outcome, Snoozed)]
        failed = [outcome for outcome in own if isinstance(outcome, Failed)]
        final: list[Succeeded | Failed] = [*succeeded, *failed]
        owed = [callback for callback in map(callback_for, final) if callback is not None]
        finished = [
            outcome.delivery
            for outcome in outcomes
            if isinstance(outcome, Succeeded | Dropped | Failed)
        ]
        answered: list[Succeeded | RetryLater | Snoozed | Failed] = [
            *succeeded,
            *retrying,
            *snoozed,
            *failed,
        ]
        answered_callbacks = [
            outcome
            for outcome in callbacks
            if isinstance(outcome, Succeeded | RetryLater | Snoozed | Failed)
        ]
        # Every waiting message (callbacks' too) is hidden until its time, and
        # callbacks' replies snooze and shape their own type as any target's do.
        waiting: list[RetryLater | Snoozed] = [
            outcome for outcome in outcomes if isinstance(outcome, RetryLater | Snoozed)
        ]
        # Those that pause their type: a host's open circuit holds only its own
        # messages (the type's other hosts go on), so it locks and pauses nothing.
        all_snoozed = [
            outcome
            for outcome in waiting
            if isinstance(outcome, Snoozed) and not outcome.circuit_open
        ]
        observed = rate_observations([*answered, *answered_callbacks])
        # Pipeline mode sends the statements without waiting for each reply:
        # one round trip for the whole batch in the common (all success) case.
        with self._connection() as conn, conn.pipeline(), conn.transaction():
            _lock_rate_rows(conn, all_snoozed, observed)
            if answered_callbacks:
                conn.execute(QUERIES["record_callbacks"], _callback_params(answered_callbacks))
            # The dead letters first: the failed rows' updates carry their ids.
            dlq_ids = self._send_to_dlq(conn, failed) if failed else []
            if answered:
                conn.execute(QUERIES["mark_outcomes"], _outcome_params(answered, dlq_ids))
            _snooze_task_types(conn, all_snoozed)
            if observed is not None:  # after the snoozes: pacing may only lower what they set
                conn.execute(QUERIES["observe_rates"], observed)
            delays = ((outcome.delivery, outcome.delay) for outcome in waiting)
            for queue, pairs in _pairs_by_queue(delays).items():
                conn.execute(
                    QUERIES["delay_messages"],
                    {
                        "queue": queue,
                        "message_ids": [message_id for message_id, _ in pairs],
                        "delays": [delay for _, delay in pairs],
                    },
                )
            for queue, ids in _ids_by_queue(finished).items():
                conn.execute(QUERIES["delete_messages"], {"queue": queue, "message_ids": ids})
            leases = _lease_ids(outcome.delivery for outcome in outcomes)
            if leases:
                # The calls are over: their concurrency slots are free again.
                conn.execute(QUERIES["release_leases"], {"lease_ids": leases})
            # Last, after every message lock: a reader settling the queue waits
            # for this transaction, which then waits for nothing it could hold.
            # Host rows before the queue-due rows, each set in sorted order, as
            # every transaction that takes both does.
            hosts = host_calls.execute(conn) if host_calls is not None else None
            for queue, seconds in _earliest_by_queue(waiting).items():
                conn.execute(QUERIES["mark_due"], {"queue": queue, "seconds": seconds})
            if owed:  # after the status writes it checks, and marks its queues due itself
                conn.execute(QUERIES["enqueue_callbacks"], _enqueue_params(owed))
        return None if hosts is None else host_states(hosts)

    def _send_to_dlq(self, conn: BoundedConnection, failed: Sequence[Failed]) -> list[int]:
        failed_at = datetime.now(UTC).isoformat()
        headers = [
            _encode(
                {
                    "error": outcome.error,
                    "http_status": outcome.http_status,
                    "attempt": outcome.delivery.attempt,
                    "source_queue": outcome.delivery.queue_name,
                    "failed_at": failed_at,
                }
            ).decode()
            for outcome in failed
        ]
        params = {
            "dlq": self._dlq,
            "messages": [outcome.delivery.raw for outcome in failed],
            "headers": headers,
        }
        cursor = conn.cursor(row_factory=scalar_row)
        return [int(message_id) for message_id in cursor.execute(QUERIES["send_to_dlq"], params)]

    @contextmanager
    def _connection(self) -> Iterator[BoundedConnection]:
        """A pool connection; losing the database surfaces as DatabaseUnavailableError."""
        with database_errors(), self._pool.connection() as conn:
            yield conn


@dataclass(frozen=True, slots=True)
class _MessageRow:
    msg_id: int
    message: str
    attempt: int
    status: str
    snoozes: int


def _lock_rate_rows(
    conn: BoundedConnection, snoozed: Sequence[Snoozed], observed: dict[str, object] | None
) -> None:
    """Lock the rows the snoozes and rate observations update, in one sorted order."""
    snoozed_types = sorted({outcome.delivery.task_type for outcome in snoozed})
    if not snoozed_types and observed is None:
        return
    observed_types = cast("list[str]", observed["task_types"]) if observed else []
    conn.execute(
        QUERIES["lock_rate_rows"],
        {"snoozed": snoozed_types, "task_types": sorted({*snoozed_types, *observed_types})},
    )


def _snooze_task_types(conn: BoundedConnection, snoozed: Sequence[Snoozed]) -> None:
    """Pause the task types whose targets asked for time (callbacks' types included)."""
    if snoozed:
        conn.execute(
            QUERIES["snooze_task_types"],
            {
                "task_types": [outcome.delivery.task_type for outcome in snoozed],
                "delays": [outcome.delay for outcome in snoozed],
            },
        )


def _is_callback(outcome: Outcome) -> bool:
    call = outcome.delivery.call
    return call is not None and call.callback_of is not None


def _callback_params(
    outcomes: Sequence[Succeeded | RetryLater | Snoozed | Failed],
) -> dict[str, object]:
    """A callback's row after an attempt: the attempt and snooze counts move as a message's do."""
    statuses, attempts, snoozes, errors = [], [], [], []
    for outcome in outcomes:
        attempt, snoozed = outcome.delivery.attempt, outcome.delivery.snoozes
        match outcome:
            case Succeeded():
                statuses.append("success")
                errors.append("")
            case Failed():
                statuses.append("failed")
                errors.append(outcome.error)
            case RetryLater():
                statuses.append("pending")
                errors.append(outcome.error)
                attempt += 1
            case Snoozed():
                statuses.append("pending")
                errors.append(outcome.error)
                snoozed += 1
        attempts.append(attempt)
        snoozes.append(snoozed)
    return {
        **_keys(outcomes),
        "statuses": statuses,
        "attempts": attempts,
        "snoozes": snoozes,
        "errors": errors,
        "http_statuses": [outcome.http_status for outcome in outcomes],
        "durations": [outcome.duration_ms for outcome in outcomes],
    }


def _enqueue_params(owed: Sequence[PendingCallback]) -> dict[str, object]:
    return {
        "task_ids": [callback.task_id for callback in owed],
        "payload_ids": [callback.payload_id for callback in owed],
        "message_ids": [callback.origin_message_id for callback in owed],
        "kinds": [callback.kind for callback in owed],
        "task_types": [callback.task_type for callback in owed],
        "messages": [callback.message for callback in owed],
    }


def _lease_ids(deliveries: Iterable[Delivery]) -> list[int]:
    return [delivery.lease_id for delivery in deliveries if delivery.lease_id is not None]


def _decode(raw: str) -> QueuedCall | None:
    try:
        return _decode_call(raw)
    except msgspec.DecodeError:
        return None


def _ids_by_queue(deliveries: Iterable[Delivery]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for delivery in deliveries:
        grouped[delivery.queue_name].append(delivery.message_id)
    return grouped


def _earliest_by_queue(retrying: Iterable[RetryLater | Snoozed]) -> dict[str, float]:
    """Per queue, the shortest retry (or snooze) delay: when it next has a message to read."""
    earliest: dict[str, float] = {}
    for outcome in retrying:
        queue = outcome.delivery.queue_name
        earliest[queue] = min(outcome.delay, earliest.get(queue, outcome.delay))
    return earliest


def _pairs_by_queue(
    delays: Iterable[tuple[Delivery, float]],
) -> dict[str, list[tuple[int, float]]]:
    """(message id, seconds) pairs grouped by the queue the message is in."""
    grouped: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for delivery, delay in delays:
        grouped[delivery.queue_name].append((delivery.message_id, delay))
    return grouped


def _keys(
    outcomes: Sequence[Succeeded | RetryLater | Snoozed | Failed],
) -> dict[str, list[object]]:
    """The status-row keys of outcomes; undecodable messages have no row and are skipped."""
    calls = [(outcome.delivery, outcome.delivery.call) for outcome in outcomes]
    return {
        "task_ids": [call.task_id if call else None for _, call in calls],
        "payload_ids": [call.payload_id if call else None for _, call in calls],
        "message_ids": [delivery.message_id for delivery, _ in calls],
    }


def _keys_and_replies(
    outcomes: Sequence[Succeeded | RetryLater | Snoozed | Failed],
) -> dict[str, list[object]]:
    """The keys and the captured replies, written by the outcome's own update (None: none)."""
    responses = [outcome.response for outcome in outcomes]
    return {
        **_keys(outcomes),
        "bodies": [None if reply is None else reply.body for reply in responses],
        "encodings": [None if reply is None else reply.encoding for reply in responses],
        "content_types": [None if reply is None else reply.content_type for reply in responses],
        "truncated": [None if reply is None else reply.truncated for reply in responses],
    }


def _outcome_params(
    outcomes: Sequence[Succeeded | RetryLater | Snoozed | Failed], dlq_ids: Sequence[int]
) -> dict[str, object]:
    """mark_outcomes' columns; `dlq_ids` are the dead letters of the Failed, in order."""
    dead_letters = iter(dlq_ids)
    rows = [_outcome_row(outcome, dead_letters) for outcome in outcomes]
    return {
        **_keys_and_replies(outcomes),
        "statuses": [row[0] for row in rows],
        "attempts": [row[1] for row in rows],
        "snoozes": [row[2] for row in rows],
        "errors": [row[3] for row in rows],
        "http_statuses": [outcome.http_status for outcome in outcomes],
        "durations": [outcome.duration_ms for outcome in outcomes],
        "dlq_message_ids": [row[4] for row in rows],
    }


def _outcome_row(
    outcome: Succeeded | RetryLater | Snoozed | Failed, dead_letters: Iterator[int]
) -> tuple[str, int | None, int | None, str, int | None]:
    """Status, attempt, snooze count, error and dead letter; None keeps the row's value."""
    delivery = outcome.delivery
    if isinstance(outcome, Succeeded):
        return "success", delivery.attempt, None, "", None
    if isinstance(outcome, RetryLater):
        return "pending", delivery.attempt + 1, None, outcome.error, None
    if isinstance(outcome, Snoozed):  # spends no attempt
        return "pending", None, delivery.snoozes + 1, outcome.error, None
    return "failed", delivery.attempt, None, outcome.error, next(dead_letters)
