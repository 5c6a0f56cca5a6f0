-- Real faults the supervision tests inflict on their own database (never the
-- shared server's other databases): broken functions, triggers, renamed tables.

-- name: fault_function_definition
SELECT pg_get_functiondef('taskq.take_tokens(text, integer)'::regprocedure);

-- name: fault_break_take_tokens
CREATE OR REPLACE FUNCTION taskq.take_tokens(p_task_type text, p_requested integer)
RETURNS TABLE (granted integer, wait_seconds double precision)
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'take_tokens broken by the test';
END
$$;

-- name: fault_break_status_writes
CREATE FUNCTION taskq.test_refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'status writes broken by the test';
END
$$;
CREATE TRIGGER test_refuse_update BEFORE UPDATE ON taskq.task_status
    FOR EACH ROW EXECUTE FUNCTION taskq.test_refuse_update();

-- name: fault_mend_status_writes
DROP TRIGGER test_refuse_update ON taskq.task_status;
DROP FUNCTION taskq.test_refuse_update();

-- name: fault_rename_table
-- {old} and {new} are filled with psycopg.sql.Identifier.
ALTER TABLE pgmq.{old} RENAME TO {new};

-- name: fault_break_migrations_table
ALTER TABLE taskq.schema_migrations RENAME COLUMN name TO test_renamed;

-- name: fault_mend_migrations_table
ALTER TABLE taskq.schema_migrations RENAME COLUMN test_renamed TO name;

-- name: fault_terminate_backends
SELECT count(pg_terminate_backend(pid))
FROM pg_stat_activity
WHERE application_name = %(application)s AND datname = current_database();

-- name: fault_forget_migration
DELETE FROM taskq.schema_migrations WHERE version = %(version)s;

-- name: fault_forget_last_migration
DELETE FROM taskq.schema_migrations
WHERE version = (SELECT max(version) FROM taskq.schema_migrations)
RETURNING version, name;

-- name: fault_add_future_migration
INSERT INTO taskq.schema_migrations (version, name, backward_compatible)
VALUES (%(version)s, %(name)s, %(compatible)s);

-- name: fault_set_headers
-- {queue} is the queue table, filled with psycopg.sql.Identifier.
UPDATE pgmq.{queue} SET message = jsonb_set(message, ARRAY['headers'], %(headers)s::jsonb);

-- name: fault_send_raw
SELECT pgmq.send(%(queue)s, %(message)s::jsonb);

-- name: fault_lock_task_types
-- Held in an open transaction by the test: the fetcher's route refresh waits on it.
LOCK TABLE taskq.task_types IN ACCESS EXCLUSIVE MODE;

-- name: fault_count_backends
SELECT count(*) FROM pg_stat_activity
WHERE application_name = %(application)s AND datname = current_database();

-- name: fault_queue_due_now
-- Says a queue has work now, as a submission or another replica's retry would.
SELECT taskq.mark_due(%(queue)s, clock_timestamp())::text;

-- name: fault_break_host_calls
CREATE OR REPLACE FUNCTION taskq.record_host_calls(
    p_hosts text[], p_calls integer[], p_failures integer[],
    p_ratio double precision, p_min_calls integer, p_window double precision,
    p_cooldown double precision, p_probes integer)
RETURNS TABLE (host text, state text, open_for double precision)
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'host breakers broken by the test';
END
$$;

-- name: fault_status_row_versions
-- Row versions written to the status table so far (pg_stat_clear_snapshot:
-- a fresh read every time; a backend's counts arrive when it goes idle or exits).
SELECT pg_stat_clear_snapshot(), n_tup_upd FROM pg_stat_user_tables
WHERE schemaname = 'taskq' AND relname = 'task_status';

-- name: fault_notify_work
-- The wake-up a submission sends, without the submission.
SELECT pg_notify('taskq_work', %(queue)s)::text;
