-- Statements the API tests use to look inside the database and to play the
-- worker's part of moving failed messages to the DLQ.

-- name: test_queue_length
SELECT queue_length FROM pgmq.metrics(%(queue)s);

-- name: test_counts
SELECT (SELECT count(*) FROM taskq.task_status) AS statuses,
       (SELECT count(*) FROM taskq.task_types) AS task_types,
       (SELECT count(*) FROM pgmq.meta WHERE queue_name LIKE 'tq\_%%') AS queues;

-- name: test_take_all
SELECT msg_id, message::text FROM pgmq.read(%(queue)s, 300, 100000) ORDER BY msg_id;

-- name: test_send_all
SELECT message_id FROM pgmq.send_batch(%(queue)s, %(messages)s::jsonb[]) AS s(message_id);

-- name: test_mark_failed
UPDATE taskq.task_status AS s
SET status = 'failed', attempt = 3, error = 'HTTP 500', updated_at = now()
FROM unnest(%(message_ids)s::bigint[]) AS u(message_id)
WHERE s.message_id = u.message_id AND s.task_type = %(task_type)s;

-- name: test_delete_all
SELECT pgmq.delete(%(queue)s, %(message_ids)s::bigint[]);

-- name: test_statuses
SELECT status, attempt, message_id FROM taskq.task_status
WHERE task_id = %(task_id)s ORDER BY payload_id;

-- name: test_listen_work
LISTEN taskq_work;

-- name: test_stored_bytes
-- What a task's calls take as text: its queued messages plus its status rows' payloads.
SELECT (SELECT coalesce(sum(octet_length(message::text)), 0) FROM pgmq.read(%(queue)s, 0, 100000))
     + (SELECT coalesce(sum(octet_length(payload::text)), 0) FROM taskq.task_status) AS stored;

-- name: test_transactions
-- Transactions this database has seen (committed or not), for idle-cost tests.
-- The statistics reach this view within about a second of each transaction.
SELECT xact_commit + xact_rollback AS transactions
FROM pg_stat_database WHERE datname = current_database();

-- name: test_explain
EXPLAIN (FORMAT JSON)

-- name: test_fill_tasks
-- `count` tasks of one message each, one second apart, over 10 types and 1,000
-- items; one in a hundred failed, one in a thousand cancelled.
WITH made AS (
    INSERT INTO taskq.tasks (task_id, task_type, item_id, payload_count, created_at)
    SELECT gen_random_uuid(), 'type-' || (g %% 10), 'item-' || (g %% 1000), 1,
           now() - make_interval(secs => g)
    FROM generate_series(1, %(count)s) AS g
    RETURNING task_id, task_type, item_id, created_at
)
INSERT INTO taskq.task_status (task_id, payload_id, message_id, task_type, item_id, status,
                               created_at, updated_at)
SELECT task_id, 0, 1, task_type, item_id,
       CASE WHEN extract(epoch FROM created_at)::bigint %% 1000 = 0 THEN 'cancelled'
            WHEN extract(epoch FROM created_at)::bigint %% 100 = 0 THEN 'failed'
            ELSE 'success' END,
       created_at, created_at
FROM made;

-- name: test_analyze
ANALYZE taskq.tasks, taskq.task_status;

-- name: test_backdate_statuses
UPDATE taskq.task_status
SET updated_at = updated_at - make_interval(secs => %(seconds)s)
WHERE task_id = %(task_id)s;

-- name: test_backdate_dead_letters
UPDATE pgmq.q_task_dlq SET enqueued_at = enqueued_at - make_interval(secs => %(seconds)s);

-- name: test_task_rows
SELECT count(*) FROM taskq.tasks WHERE task_id = %(task_id)s;

-- name: test_dlq_ids
SELECT msg_id FROM pgmq.q_task_dlq ORDER BY msg_id;

-- name: test_analyze_statuses
ANALYZE taskq.task_status;

-- name: test_idempotency_keys
SELECT idempotency_key FROM taskq.idempotency_keys ORDER BY idempotency_key;

-- name: test_expire_idempotency_keys
UPDATE taskq.idempotency_keys SET expires_at = now() - interval '1 second'
WHERE idempotency_key = ANY(%(keys)s);

-- name: test_dump_task_types
-- Everything a database dump holds about task types, as text (bytea with its
-- printable bytes as characters, so a secret stored in clear would show).
SELECT string_agg(t::text || encode(coalesce(t.signing_secrets, ''::bytea), 'escape'), ' ')
FROM taskq.task_types AS t;

-- name: test_callbacks
SELECT task_id, payload_id, origin_message_id, kind, message_id, status, attempt
FROM taskq.callbacks ORDER BY task_id, payload_id;
