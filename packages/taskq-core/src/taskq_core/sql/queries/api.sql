-- Statements the API service runs (taskq_core.repository.api).

-- name: ping
SELECT 1;

-- name: register_task_type
-- Returns a row only when this call created the type, so the caller knows to
-- create its queue in the same transaction. A concurrent creator of the same
-- type waits on the primary key until this one commits.
INSERT INTO taskq.task_types (task_type, queue_name)
VALUES (%(task_type)s, %(queue)s)
ON CONFLICT (task_type) DO NOTHING
RETURNING queue_name;

-- name: lock_task_type_creation
-- Held to the end of the transaction: registrations of new types happen one at
-- a time, so concurrent ones cannot together overshoot MAX_TASK_TYPES.
SELECT pg_advisory_xact_lock(hashtext('taskq.task_type_creation'));

-- name: count_task_types
SELECT count(*) FROM taskq.task_types;

-- name: task_type_queue
SELECT queue_name FROM taskq.task_types WHERE task_type = %(task_type)s;

-- name: apply_batch_max_rps
-- A batch's max_rps sets its type's limit unless POST /task-types set it.
WITH changed AS (
    UPDATE taskq.task_types
    SET max_rps = %(max_rps)s, updated_at = now()
    WHERE task_type = %(task_type)s
      AND NOT rps_explicit
      AND max_rps IS DISTINCT FROM %(max_rps)s
    RETURNING task_type, max_rps
)
SELECT taskq.configure_rate(task_type, max_rps) FROM changed;

-- name: enqueue_task
-- Sends every payload of a batch, writes their status rows, marks the queue
-- due and wakes the workers in one statement (one round trip for a known
-- type); WITH ORDINALITY pairs each new message id with its payload. The
-- notification is delivered at commit, so a worker never wakes before the
-- messages are visible.
-- The batch's row in taskq.tasks (what GET /tasks lists) is written by the
-- same statement.
WITH task AS (
    INSERT INTO taskq.tasks (task_id, task_type, item_id, payload_count)
    VALUES (%(task_id)s, %(task_type)s, %(item_id)s, cardinality(%(payloads)s::jsonb[]))
), sent AS (
    SELECT s.message_id, (s.position - 1)::integer AS payload_id
    FROM pgmq.send_batch(%(queue)s, %(messages)s::jsonb[]) WITH ORDINALITY AS s(message_id, position)
), inserted AS (
    INSERT INTO taskq.task_status
        (task_id, payload_id, message_id, task_type, item_id, payload, scheduled_for)
    SELECT %(task_id)s, sent.payload_id, sent.message_id, %(task_type)s, %(item_id)s, p.payload,
           p.scheduled_for
    FROM sent
    JOIN unnest(%(payloads)s::jsonb[], %(scheduled)s::timestamptz[])
         WITH ORDINALITY AS p(payload, scheduled_for, position)
      ON p.position - 1 = sent.payload_id
    RETURNING payload_id, message_id
)
SELECT inserted.message_id
FROM inserted,
     (SELECT pg_notify('taskq_work', %(queue)s), taskq.mark_due(%(queue)s, clock_timestamp()))
     AS notified
ORDER BY inserted.payload_id;

-- name: hold_messages
-- Delayed and scheduled payloads: sent with the batch, then hidden until their
-- time in the same transaction, so no worker ever sees them early.
SELECT pgmq.set_vt(%(queue)s, u.message_id, u.visible_at)
FROM unnest(%(message_ids)s::bigint[], %(visible_at)s::timestamptz[]) AS u(message_id, visible_at)
WHERE u.visible_at IS NOT NULL;

-- name: notify_work
-- Wakes listening workers now, and marks the queue due for those that missed it.
SELECT pg_notify('taskq_work', %(queue)s), taskq.mark_due(%(queue)s, clock_timestamp());

-- name: task_statuses
-- A message's callback (migration 0012) is shown with it; most have none.
SELECT s.message_id, s.item_id, s.task_type, s.payload::text AS payload, s.status, s.error,
       s.attempt, s.updated_at, s.payload_id, s.http_status, s.duration_ms, s.created_at,
       s.dlq_message_id, s.scheduled_for, s.response_body, s.response_body_encoding,
       s.response_content_type, s.response_truncated, s.snoozes,
       c.kind AS callback_kind, c.status AS callback_status, c.attempt AS callback_attempt,
       c.error AS callback_error, c.http_status AS callback_http_status,
       c.duration_ms AS callback_duration_ms, c.updated_at AS callback_updated_at
FROM taskq.task_status AS s
LEFT JOIN taskq.callbacks AS c ON c.task_id = s.task_id AND c.payload_id = s.payload_id
WHERE s.task_id = %(task_id)s
ORDER BY s.payload_id;

-- name: configure_task_type
-- `created` tells the caller to create the type's queue in the same transaction.
INSERT INTO taskq.task_types AS t
    (task_type, queue_name, max_rps, rps_explicit, delivery_defaults, max_concurrency,
     adaptive, min_rps)
VALUES (%(task_type)s, %(queue)s, %(max_rps)s, true, %(defaults)s::jsonb, %(max_concurrency)s,
        %(adaptive)s, %(min_rps)s)
ON CONFLICT (task_type) DO UPDATE
    SET max_rps = excluded.max_rps, rps_explicit = true,
        delivery_defaults = excluded.delivery_defaults,
        max_concurrency = excluded.max_concurrency,
        adaptive = excluded.adaptive, min_rps = excluded.min_rps, updated_at = now()
RETURNING (xmax = 0) AS created;

-- name: configure_adaptive
SELECT taskq.configure_adaptive(%(task_type)s);

-- name: set_signing_secrets
-- Sealed by taskq_core.secret_box (NULL: stop signing). updated_at moves so
-- workers re-read the type's route, secrets included.
UPDATE taskq.task_types
SET signing_secrets = %(sealed)s, updated_at = now()
WHERE task_type = %(task_type)s;

-- name: set_max_rps
-- The rate limit alone (the console's rate form): delivery defaults, concurrency,
-- the adaptive setting and signing secrets stay. No row: the type does not exist.
UPDATE taskq.task_types
SET max_rps = %(max_rps)s, rps_explicit = true, updated_at = now()
WHERE task_type = %(task_type)s
RETURNING adaptive, min_rps;

-- name: configure_rate
SELECT taskq.configure_rate(%(task_type)s, %(max_rps)s);

-- name: get_task_type
-- allowed_rps: the rate the shared bucket refills at now (migration 0013);
-- paced_until only while a target's rate-limit headers hold the type down.
SELECT t.task_type, t.max_rps, t.created_at, t.updated_at,
       t.delivery_defaults::text AS defaults, t.max_concurrency,
       CASE WHEN t.snoozed_until > clock_timestamp() THEN t.snoozed_until END AS snoozed_until,
       t.signing_secrets IS NOT NULL AS signed, t.adaptive, t.min_rps,
       taskq.allowed_rate(b) AS allowed_rps,
       CASE WHEN b.paced_until > clock_timestamp()
                 AND (b.paced_rps IS NULL OR b.paced_rps < b.rate)
            THEN b.paced_until END AS paced_until
FROM taskq.task_types AS t
LEFT JOIN taskq.rate_buckets AS b ON b.task_type = t.task_type
WHERE t.task_type = %(task_type)s;

-- name: delete_messages
SELECT pgmq.delete(%(queue)s, %(message_ids)b::bigint[]);

