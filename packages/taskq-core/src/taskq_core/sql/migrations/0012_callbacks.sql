-- compatible: backward
-- Callbacks (issue 15): when a message of a batch with callback_url (success)
-- or failure_callback_url (dead-lettered) reaches that final state, taskq
-- POSTs a JSON document about it there. The callback is itself a message, in
-- the queue of the derived task type "<type>:callbacks" (its own max_rps,
-- retries, timeout and signing secrets, set with POST /task-types), delivered
-- by the normal path. It is enqueued by the worker in the same transaction
-- that records the outcome, so a crash loses neither or both.
--
-- One row per original message: where its callback stands. It is written only
-- here and by the worker's callback outcomes, never by the message's own
-- status writes, so a failing callback cannot change the message's status.
-- The row goes with its status row (retention, purge).
CREATE TABLE taskq.callbacks (
    task_id           uuid NOT NULL,
    payload_id        integer NOT NULL,
    -- The original message whose final state this reports: a message requeued
    -- from the DLQ gets a new id, and its next final state a new callback.
    origin_message_id bigint NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('success', 'failure')),
    -- The callback's own message (NULL when it could not be enqueued).
    message_id        bigint,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'success', 'failed')),
    attempt           integer NOT NULL DEFAULT 0,
    snoozes           integer NOT NULL DEFAULT 0,
    error             text NOT NULL DEFAULT '',
    http_status       integer,
    duration_ms       double precision,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, payload_id),
    FOREIGN KEY (task_id, payload_id) REFERENCES taskq.task_status (task_id, payload_id)
        ON DELETE CASCADE
);

-- Enqueues the callbacks of messages that have just reached a final state.
-- Each one is claimed first: only a message whose status row is in the state
-- the callback reports (so a late duplicate of a cancelled or already final
-- message sends none), and at most one callback per final state of a message
-- (the primary key; a requeued message's new state replaces the old row).
-- A callback type that no longer exists fails the callback, never the caller's
-- transaction (the recorder's outcomes must be written whatever happens here).
CREATE FUNCTION taskq.enqueue_callbacks(
    p_task_ids uuid[], p_payload_ids integer[], p_message_ids bigint[], p_kinds text[],
    p_task_types text[], p_messages jsonb[]
)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    v_claimed boolean;
    v_queue text;
    v_message_id bigint;
    v_sent integer := 0;
    v_woken text[] := '{}';
BEGIN
    FOR c IN
        SELECT u.task_id, u.payload_id, u.message_id, u.kind, u.task_type, u.message
        FROM unnest(p_task_ids, p_payload_ids, p_message_ids, p_kinds, p_task_types, p_messages)
             AS u(task_id, payload_id, message_id, kind, task_type, message)
        ORDER BY u.task_id, u.payload_id  -- one lock order for concurrent recorders
    LOOP
        INSERT INTO taskq.callbacks AS cb (task_id, payload_id, origin_message_id, kind)
        SELECT c.task_id, c.payload_id, c.message_id, c.kind
        FROM taskq.task_status AS s
        WHERE s.task_id = c.task_id AND s.payload_id = c.payload_id
          AND s.message_id = c.message_id
          AND s.status = CASE c.kind WHEN 'success' THEN 'success' ELSE 'failed' END
        ON CONFLICT (task_id, payload_id) DO UPDATE
            SET origin_message_id = excluded.origin_message_id, kind = excluded.kind,
                message_id = NULL, status = 'pending', attempt = 0, snoozes = 0, error = '',
                http_status = NULL, duration_ms = NULL, created_at = now(), updated_at = now()
            WHERE cb.origin_message_id <> excluded.origin_message_id
        RETURNING true INTO v_claimed;
        CONTINUE WHEN v_claimed IS NULL;
        v_claimed := NULL;
        SELECT queue_name INTO v_queue FROM taskq.task_types WHERE task_type = c.task_type;
        IF v_queue IS NULL THEN
            UPDATE taskq.callbacks
            SET status = 'failed', error = 'callback task type ' || c.task_type || ' is gone'
            WHERE task_id = c.task_id AND payload_id = c.payload_id;
            CONTINUE;
        END IF;
        SELECT * INTO v_message_id FROM pgmq.send(v_queue, c.message);
        UPDATE taskq.callbacks SET message_id = v_message_id
        WHERE task_id = c.task_id AND payload_id = c.payload_id;
        v_sent := v_sent + 1;
        IF NOT v_queue = ANY(v_woken) THEN
            v_woken := v_woken || v_queue;
            PERFORM pg_notify('taskq_work', v_queue), taskq.mark_due(v_queue, clock_timestamp());
        END IF;
    END LOOP;
    RETURN v_sent;
END
$$;
