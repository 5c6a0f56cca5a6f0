-- Day-2 operations (issue 14): task listing, pause/resume, DLQ browsing and
-- purging, cancellation and retention.

-- One row per submitted batch, so that listing tasks newest first reads one
-- index entry per task whatever the number of payloads: a page walks
-- (created_at, task_id) backwards and stops at LIMIT, at 10 million status
-- rows as at a thousand. Written by the same statement as the status rows;
-- deleted by retention once its last status row is gone.
CREATE TABLE taskq.tasks (
    task_id       uuid PRIMARY KEY,
    task_type     text NOT NULL,
    item_id       text NOT NULL DEFAULT '',
    payload_count integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_newest ON taskq.tasks (created_at, task_id);
CREATE INDEX tasks_newest_by_type ON taskq.tasks (task_type, created_at, task_id);
CREATE INDEX tasks_newest_by_item ON taskq.tasks (item_id, created_at, task_id)
    WHERE item_id <> '';

INSERT INTO taskq.tasks (task_id, task_type, item_id, payload_count, created_at)
SELECT task_id, min(task_type), min(item_id), count(*)::integer, min(created_at)
FROM taskq.task_status
GROUP BY task_id;

-- GET /tasks?status=pending|failed|cancelled: walking tasks newest first
-- until a page of those turns up could read the whole table when they are
-- rare (no pending task left in a drained system, a few failures). This
-- index holds only the rows not in success, newest first per status (a
-- status row's created_at is its task's), so the listing walks it instead.
-- New rows enter it (pending) at the right edge, as created_at grows.
CREATE INDEX task_status_unsettled_newest ON taskq.task_status (status, created_at, task_id)
    WHERE status IN ('pending', 'failed', 'cancelled');

-- A paused type keeps its messages (retries included) queued: workers skip it.
ALTER TABLE taskq.task_types ADD COLUMN paused boolean NOT NULL DEFAULT false;

-- Rows retention may delete once old enough: finished for good (success,
-- cancelled), or failed with their dead letter gone (purged or expired). Rows
-- of messages still in the DLQ are not in it, so a retention round never
-- re-reads them. The effective-rate figure of GET /task-types reads the
-- successes of the last minute from it too.
CREATE INDEX task_status_expirable ON taskq.task_status (updated_at)
    WHERE status IN ('success', 'cancelled') OR (status = 'failed' AND dlq_message_id IS NULL);

-- The DLQ's table is named after DLQ_QUEUE_NAME, so the statements on it are
-- functions that format the identifier (%I), as PGMQ's own functions do.

-- A page of dead letters, newest first, those matching `p_filter` (a jsonb
-- containment test on the message: task_type and/or task_id) below `p_before`.
CREATE FUNCTION taskq.dlq_page(p_queue text, p_filter jsonb, p_before bigint, p_limit integer)
RETURNS TABLE (msg_id bigint, enqueued_at timestamptz, message jsonb, headers jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT q.msg_id, q.enqueued_at, q.message, q.headers FROM pgmq.%I AS q
         WHERE q.message @> $1 AND ($2 IS NULL OR q.msg_id < $2)
         ORDER BY q.msg_id DESC LIMIT $3',
        'q_' || p_queue)
    USING p_filter, p_before, p_limit;
END;
$$;

-- Takes (locks) up to `p_limit` dead letters for requeueing, oldest first.
-- SKIP LOCKED: two concurrent reprocess calls never take the same message,
-- and the taker deletes what it took before it commits.
CREATE FUNCTION taskq.take_dead_letters(
    p_queue text, p_filter jsonb, p_ids bigint[], p_limit integer
)
RETURNS TABLE (msg_id bigint, message text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT q.msg_id, q.message::text FROM pgmq.%I AS q
         WHERE q.message @> $1 AND ($2 IS NULL OR q.msg_id = ANY($2))
         ORDER BY q.msg_id LIMIT $3
         FOR UPDATE SKIP LOCKED',
        'q_' || p_queue)
    USING p_filter, p_ids, p_limit;
END;
$$;

-- Deletes up to `p_limit` dead letters for good (POST /dlq/purge, DLQ
-- retention): those matching the filter, the ids (when given) and enqueued
-- before `p_before` (when given). Returns what the status rows need.
CREATE FUNCTION taskq.delete_dead_letters(
    p_queue text, p_filter jsonb, p_ids bigint[], p_before timestamptz, p_limit integer
)
RETURNS TABLE (msg_id bigint, task_id text, payload_id text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'DELETE FROM pgmq.%1$I AS q
         WHERE q.msg_id IN (
             SELECT d.msg_id FROM pgmq.%1$I AS d
             WHERE d.message @> $1 AND ($2 IS NULL OR d.msg_id = ANY($2))
               AND ($3 IS NULL OR d.enqueued_at < $3)
             ORDER BY d.msg_id LIMIT $4
             FOR UPDATE SKIP LOCKED)
         RETURNING q.msg_id, q.message ->> ''task_id'', q.message ->> ''payload_id''',
        'q_' || p_queue)
    USING p_filter, p_ids, p_before, p_limit;
END;
$$;

-- Cancels the pending messages of a task (or the one message `p_message_id`)
-- that no worker holds: each row says whether it was cancelled (its message
-- deleted from the queue, never to be called) or is in flight (read by a
-- worker, possibly mid-call: it finishes and keeps its real outcome).
--
-- A message in the queue is held by a worker when it is invisible and was
-- read after its status row last changed; invisible but read before that
-- change means it waits for a retry (the outcome write set both), and that
-- one is cancelled. The status rows are locked first, in payload order, as
-- outcome writes lock them before touching the queue; a worker's read that
-- races the delete either wins the row lock (the re-checked condition then
-- sees it held) or skips the row and never sees it again.
CREATE FUNCTION taskq.cancel_messages(p_task_id uuid, p_message_id bigint)
RETURNS TABLE (message_id bigint, cancelled boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_queue text;
    v_ids bigint[];
    v_changed timestamptz[];
    v_deleted bigint[];
BEGIN
    SELECT array_agg(s.message_id ORDER BY s.payload_id),
           array_agg(s.updated_at ORDER BY s.payload_id),
           min(t.queue_name)
    INTO v_ids, v_changed, v_queue
    FROM (
        SELECT s.message_id, s.payload_id, s.updated_at, s.task_type
        FROM taskq.task_status AS s
        WHERE s.task_id = p_task_id AND s.status = 'pending'
          AND (p_message_id IS NULL OR s.message_id = p_message_id)
        ORDER BY s.payload_id
        FOR UPDATE
    ) AS s
    JOIN taskq.task_types AS t ON t.task_type = s.task_type;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format(
        'WITH gone AS (
             DELETE FROM pgmq.%I AS q
             USING unnest($1, $2) AS u(msg_id, changed_at)
             WHERE q.msg_id = u.msg_id
               AND (q.vt <= clock_timestamp() OR q.last_read_at IS NULL
                    OR q.last_read_at < u.changed_at)
             RETURNING q.msg_id)
         SELECT coalesce(array_agg(msg_id), ''{}'') FROM gone',
        'q_' || v_queue)
    INTO v_deleted
    USING v_ids, v_changed;
    -- A pending row whose message is not in the queue at all can never be
    -- called either: cancelled too.
    EXECUTE format(
        'SELECT coalesce(array_agg(u.msg_id), ''{}'') FROM unnest($1) AS u(msg_id)
         WHERE u.msg_id = ANY($2)
            OR NOT EXISTS (SELECT 1 FROM pgmq.%I AS q WHERE q.msg_id = u.msg_id)',
        'q_' || v_queue)
    INTO v_deleted
    USING v_ids, v_deleted;
    UPDATE taskq.task_status AS s
    SET status = 'cancelled', updated_at = now()
    WHERE s.task_id = p_task_id AND s.status = 'pending' AND s.message_id = ANY(v_deleted);
    RETURN QUERY
    SELECT u.msg_id, u.msg_id = ANY(v_deleted) FROM unnest(v_ids) AS u(msg_id);
END;
$$;
