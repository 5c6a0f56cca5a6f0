-- Statements the worker runs (taskq_core.repository.worker).
--
-- Arrays go as binary parameters (%(name)b): psycopg writes a text array in
-- Python, escaping element by element, ~11 µs per delivery for mark_outcomes
-- alone (a batch of 100: 1.07 ms text, 0.28 ms binary; docs/benchmarks.md).

-- name: list_task_types
-- signing_secrets are sealed (taskq_core.secret_box): opened in the worker only.
SELECT task_type, queue_name, max_rps, paused, delivery_defaults::text AS defaults,
       max_concurrency, signing_secrets, adaptive
FROM taskq.task_types ORDER BY task_type;

-- name: due_queues
-- An idle worker's one question per second. The queues with a message visible
-- now or within the horizon, and in how many seconds: one indexed range scan
-- however many types are idle (migration 0007). Every row also carries the
-- task types' version, which changes whenever a type is added or its limit
-- changed (every such write sets updated_at), so the routes are re-read only
-- then; with nothing due, one row with a NULL queue carries it alone.
SELECT d.queue_name, extract(epoch FROM d.due_at - clock_timestamp())::float8 AS due_in,
       v.types, v.changed_at
FROM (
    SELECT count(*) AS types,
           coalesce(extract(epoch FROM max(updated_at)), 0)::float8 AS changed_at
    FROM taskq.task_types
) AS v
LEFT JOIN taskq.queue_due AS d
  ON d.due_at <= clock_timestamp() + make_interval(secs => %(horizon)s);

-- name: settle_due
-- After a read that found the queue dry: when its next message becomes visible.
SELECT taskq.settle_due(%(queue)s) AS due_in;

-- name: mark_due
SELECT taskq.mark_due(%(queue)s, clock_timestamp() + make_interval(secs => %(seconds)s));

-- name: take_slots
SELECT lease_id FROM taskq.take_slots(%(task_type)s, %(requested)s, %(ttl)s) AS lease_id;

-- name: renew_leases
-- A lease lives while its call runs; one the worker stopped renewing (it
-- crashed) expires and its slot is taken again.
UPDATE taskq.concurrency_leases
SET expires_at = clock_timestamp() + make_interval(secs => %(ttl)s)
WHERE lease_id = ANY(%(lease_ids)b::bigint[]);

-- name: release_leases
DELETE FROM taskq.concurrency_leases WHERE lease_id = ANY(%(lease_ids)b::bigint[]);

-- name: take_tokens
SELECT granted, wait_seconds FROM taskq.take_tokens(%(task_type)s, %(requested)s);

-- name: read_messages
-- The status row comes along so a worker knows the attempt count and can drop
-- a message whose status is already final (a duplicate after a crash). It is
-- looked up by primary key, one row per message: as a plain join, the planner
-- (expecting 1,000 rows from a function) hashed the whole status table on
-- every read. The keys are cast only when they have the right shape: a
-- message whose task_id is not a uuid must come back as a message the worker
-- sends to the DLQ, not make every read of its queue fail.
--
-- A task type snoozed by a target's 429 reads nothing until the time asked
-- for (design decision 11), whichever replica reads and whatever tokens it
-- holds: the check is in the read itself, by the database's clock.
--
-- A callback's message (it has "callback_of", migration 0012) counts its
-- attempts in its row of taskq.callbacks instead, matched on its own message
-- id: without one (replaced by a newer callback, or purged) it is dropped.
SELECT m.msg_id, m.message::text AS message, coalesce(s.attempt, 0) AS attempt,
       coalesce(s.status, CASE WHEN m.message ? 'callback_of' THEN 'cancelled' ELSE 'pending' END)
           AS status,
       coalesce(s.snoozes, 0) AS snoozes
FROM pgmq.read(
  %(queue)s, %(vt)s,
  CASE WHEN EXISTS (SELECT 1 FROM taskq.task_types
                    WHERE task_type = %(task_type)s AND snoozed_until > clock_timestamp())
       THEN 0 ELSE %(qty)s END
) AS m
LEFT JOIN LATERAL (
  SELECT attempt, status, snoozes FROM taskq.task_status
  WHERE task_id = CASE WHEN m.message ->> 'task_id'
                              ~* '^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$'
                       THEN (m.message ->> 'task_id')::uuid END
    AND payload_id = CASE WHEN m.message ->> 'payload_id' ~ '^[0-9]{1,9}$'
                          THEN (m.message ->> 'payload_id')::integer END
    AND NOT m.message ? 'callback_of'
  UNION ALL
  SELECT attempt, status, snoozes FROM taskq.callbacks
  WHERE m.message ? 'callback_of'
    AND task_id = CASE WHEN m.message ->> 'task_id'
                              ~* '^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$'
                       THEN (m.message ->> 'task_id')::uuid END
    AND payload_id = CASE WHEN m.message ->> 'payload_id' ~ '^[0-9]{1,9}$'
                          THEN (m.message ->> 'payload_id')::integer END
    AND message_id = m.msg_id
  LIMIT 1  -- keeps the subquery from being flattened into a join
) AS s ON true
ORDER BY m.msg_id;

-- name: mark_outcomes
-- Every answered outcome of a batch in one statement: 'success' and 'failed'
-- are final; a retry spends an attempt and a snooze counts a snooze, both
-- staying 'pending' (a NULL attempt or snooze count keeps the row's).
-- Compare-and-set: only a pending row still pointing at this message moves,
-- so a late duplicate can never change a final status (nor replace its reply).
--
-- The captured reply (migration 0011) is written by the same update: a NULL
-- body means none was captured and the row keeps the one it has. As a second
-- UPDATE it made a second version of every row, with its index entries: the
-- statement cost more than the status write itself (docs/benchmarks.md).
UPDATE taskq.task_status AS s
SET status = u.status, attempt = coalesce(u.attempt, s.attempt),
    snoozes = coalesce(u.snoozes, s.snoozes), error = u.error, http_status = u.http_status,
    duration_ms = u.duration_ms, updated_at = now(),
    dlq_message_id = coalesce(u.dlq_message_id, s.dlq_message_id),
    response_body = CASE WHEN u.body IS NULL THEN s.response_body ELSE u.body END,
    response_body_encoding = CASE WHEN u.body IS NULL THEN s.response_body_encoding
                                  ELSE u.encoding END,
    response_content_type = CASE WHEN u.body IS NULL THEN s.response_content_type
                                 ELSE u.content_type END,
    response_truncated = CASE WHEN u.body IS NULL THEN s.response_truncated
                              ELSE u.truncated END
FROM unnest(%(task_ids)b::uuid[], %(payload_ids)b::integer[], %(message_ids)b::bigint[],
            %(statuses)b::text[], %(attempts)b::integer[], %(snoozes)b::integer[],
            %(errors)b::text[], %(http_statuses)b::integer[], %(durations)b::float8[],
            %(dlq_message_ids)b::bigint[],
            %(bodies)b::text[], %(encodings)b::text[], %(content_types)b::text[],
            %(truncated)b::boolean[])
     AS u(task_id, payload_id, message_id, status, attempt, snoozes, error, http_status,
          duration_ms, dlq_message_id, body, encoding, content_type, truncated)
WHERE s.task_id = u.task_id AND s.payload_id = u.payload_id
  AND s.message_id = u.message_id AND s.status = 'pending';

-- name: snoozed_for
-- Seconds until a snoozed task type may read again; no row when it is not snoozed.
SELECT extract(epoch FROM snoozed_until - clock_timestamp())::float8
FROM taskq.task_types
WHERE task_type = %(task_type)s AND snoozed_until > clock_timestamp();

-- name: lock_rate_rows
-- Locks the task-type and bucket rows a batch's snoozes and rate observations
-- will update, in one order (types, then buckets, each sorted by name), before
-- those updates take them in whatever order their joins run: two recorders with
-- overlapping multi-type batches would otherwise deadlock.
WITH types AS (
    SELECT t.task_type FROM taskq.task_types AS t
    WHERE t.task_type = ANY(%(snoozed)b::text[])
    ORDER BY t.task_type
    FOR NO KEY UPDATE
)
SELECT count(*) FROM types
UNION ALL
SELECT count(*) FROM (
    SELECT b.task_type FROM taskq.rate_buckets AS b
    WHERE b.task_type = ANY(%(task_types)b::text[])
    ORDER BY b.task_type
    FOR NO KEY UPDATE
) AS buckets;

-- name: snooze_task_types
-- Pauses each task type until the latest time its target asked for: reads
-- return nothing before then (read_messages), and the shared token bucket is
-- emptied up to then, so take_tokens makes every replica wait for that time
-- and the type resumes at its rate, not in a burst of saved-up tokens.
WITH asked AS (
    SELECT u.task_type, max(clock_timestamp() + make_interval(secs => u.delay)) AS until
    FROM unnest(%(task_types)b::text[], %(delays)b::float8[]) AS u(task_type, delay)
    GROUP BY u.task_type
), snoozed AS (
    UPDATE taskq.task_types AS t
    SET snoozed_until = greatest(t.snoozed_until, a.until)
    FROM asked AS a
    WHERE t.task_type = a.task_type
    RETURNING t.task_type, t.snoozed_until
)
UPDATE taskq.rate_buckets AS b
SET tokens = 0, refilled_at = greatest(b.refilled_at, s.snoozed_until)
FROM snoozed AS s
WHERE b.task_type = s.task_type;

-- name: observe_rates
-- A batch's rate-limit headers and, for adaptive types, its successes and
-- 429/503s, one row per type (migration 0013): lowers or restores the rate the
-- shared bucket refills at, for every replica.
SELECT taskq.observe_rates(%(task_types)b::text[], %(remaining)b::float8[], %(resets)b::float8[],
                           %(successes)b::integer[], %(throttled)b::integer[]);

-- name: delay_messages
-- Hides each message until its own retry time: the retry waits in the queue,
-- not in a thread.
SELECT pgmq.set_vt(%(queue)s, u.message_id, clock_timestamp() + make_interval(secs => u.delay))
FROM unnest(%(message_ids)b::bigint[], %(delays)b::float8[]) AS u(message_id, delay);

-- name: release_messages
SELECT msg_id FROM pgmq.set_vt(%(queue)s, %(message_ids)b::bigint[], 0);

-- name: send_to_dlq
SELECT message_id
FROM pgmq.send_batch(%(dlq)s, %(messages)b::jsonb[], %(headers)b::jsonb[])
     WITH ORDINALITY AS s(message_id, position)
ORDER BY position;

-- name: record_callbacks
-- Outcomes of callbacks' own messages, in their taskq.callbacks rows (never in
-- the status rows: a callback cannot change its message's status).
-- Compare-and-set on the callback's message id and pending state, as for messages.
UPDATE taskq.callbacks AS c
SET status = u.status, attempt = u.attempt, snoozes = u.snoozes, error = u.error,
    http_status = u.http_status, duration_ms = u.duration_ms, updated_at = now()
FROM unnest(%(task_ids)b::uuid[], %(payload_ids)b::integer[], %(message_ids)b::bigint[],
            %(statuses)b::text[], %(attempts)b::integer[], %(snoozes)b::integer[],
            %(errors)b::text[], %(http_statuses)b::integer[], %(durations)b::float8[])
     AS u(task_id, payload_id, message_id, status, attempt, snoozes, error, http_status,
          duration_ms)
WHERE c.task_id = u.task_id AND c.payload_id = u.payload_id
  AND c.message_id = u.message_id AND c.status = 'pending';

-- name: enqueue_callbacks
-- After the outcomes that owe them, in the same transaction (migration 0012).
SELECT taskq.enqueue_callbacks(%(task_ids)b::uuid[], %(payload_ids)b::integer[],
                               %(message_ids)b::bigint[], %(kinds)b::text[],
                               %(task_types)b::text[], %(messages)b::jsonb[]);

-- name: listen_work
LISTEN taskq_work;
