-- Statements of the benchmark suite (bench/ at the repository root).
-- Blocks with {name} placeholders are composed with psycopg.sql.Identifier.

-- name: bench_create_database
CREATE DATABASE {name};

-- name: bench_clone_database
-- Each scenario gets a clone of a migrated template, so earlier scenarios'
-- task types and status rows never slow a later one.
CREATE DATABASE {name} TEMPLATE {template};

-- name: bench_drop_database
DROP DATABASE IF EXISTS {name} WITH (FORCE);

-- name: bench_server_version
SHOW server_version;

-- name: bench_create_queue
SELECT pgmq.create(%(queue)s);

-- name: bench_drop_queue
SELECT pgmq.drop_queue(%(queue)s);

-- name: bench_purge_queue
SELECT pgmq.purge_queue(%(queue)s);

-- name: bench_send_batch
SELECT * FROM pgmq.send_batch(%(queue)s, %(messages)s::jsonb[]);

-- name: bench_read
SELECT msg_id, message::text AS message FROM pgmq.read(%(queue)s, %(vt)s, %(qty)s);

-- name: bench_delete
SELECT pgmq.delete(%(queue)s, %(message_ids)s::bigint[]);

-- name: bench_queue_length
SELECT queue_length FROM pgmq.metrics(%(queue)s);

-- name: bench_status_counts
-- How many messages of a task type have reached each status.
SELECT status, count(*) AS n
FROM taskq.task_status
WHERE task_type = %(task_type)s
GROUP BY status;

-- name: bench_delivery_rate
-- Final outcomes per second of a task type, from its first recorded outcome to
-- its last (outcomes written together share a timestamp, so the first batch
-- marks the start and is not counted). Computed after a drain, so the drain
-- itself is watched with a cheap, infrequent poll. Both CTEs are materialized:
-- inlined, the span would be recomputed for every row.
WITH final AS MATERIALIZED (
  SELECT updated_at FROM taskq.task_status
  WHERE task_type = %(task_type)s AND status IN ('success', 'failed')
), span AS MATERIALIZED (
  SELECT min(updated_at) AS first_at, max(updated_at) AS last_at FROM final
)
SELECT count(*) / nullif(extract(epoch FROM span.last_at - span.first_at), 0)
FROM final JOIN span ON final.updated_at > span.first_at
GROUP BY span.first_at, span.last_at;

-- name: bench_transactions
-- Transactions a database has seen, for the idle-cost scenario, read from
-- another database (bench.db.database_transactions says why).
SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %(database)s;

-- name: bench_attempts_and_snoozes
-- What a task type's messages spent: attempts (failures that counted) and
-- snoozes (429s that did not), summed over its status rows.
SELECT coalesce(sum(attempt), 0) AS attempts, coalesce(sum(snoozes), 0) AS snoozes
FROM taskq.task_status
WHERE task_type = %(task_type)s;

-- name: bench_database_backends
-- The server processes working for one database (client backends, autovacuum
-- workers, parallel workers), less the bench's own connections.
SELECT pid FROM pg_stat_activity
WHERE datname = %(database)s AND application_name <> %(bench)s;
