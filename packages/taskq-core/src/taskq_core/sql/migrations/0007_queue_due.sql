-- When each queue next has a message worth reading, so an idle worker asks one
-- indexed question ("which queues are due?") instead of polling every queue:
-- with one queue per task type, polling cost grew with the number of types
-- (300 idle types: 301 transactions/s per idle replica).
--
-- due_at is a lower bound: no message of the queue becomes visible before it
-- (NULL: the queue is empty). Whatever makes a message visible earlier moves it
-- earlier (taskq.mark_due: submit, retry, release, reprocess); a reader that
-- finds the queue dry recomputes it from the messages themselves
-- (taskq.settle_due), which also covers messages whose reader died.
CREATE TABLE taskq.queue_due (
    queue_name text PRIMARY KEY,
    due_at     timestamptz
);

CREATE INDEX queue_due_at ON taskq.queue_due (due_at);

-- Every existing queue is due once, so the first reader settles it.
INSERT INTO taskq.queue_due (queue_name, due_at)
SELECT queue_name, clock_timestamp() FROM taskq.task_types
ON CONFLICT (queue_name) DO NOTHING;

-- A message of p_queue may be visible from p_due_at on. Concurrent producers
-- share the row (FOR KEY SHARE does not block another producer) but wait for a
-- settle in progress, so the UPDATE below, with a fresh snapshot, sees what
-- the settle wrote and only ever moves it earlier. The row is written only
-- when the time moves: during a backlog due_at is already past and submissions
-- do not write it.
CREATE FUNCTION taskq.mark_due(p_queue text, p_due_at timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM taskq.queue_due WHERE queue_name = p_queue FOR KEY SHARE;
    IF NOT FOUND THEN
        INSERT INTO taskq.queue_due (queue_name, due_at) VALUES (p_queue, p_due_at)
        ON CONFLICT (queue_name) DO NOTHING;
        PERFORM 1 FROM taskq.queue_due WHERE queue_name = p_queue FOR KEY SHARE;
    END IF;
    UPDATE taskq.queue_due SET due_at = p_due_at
    WHERE queue_name = p_queue AND (due_at IS NULL OR due_at > p_due_at);
END
$$;

-- Recomputes p_queue's due_at from its messages (the earliest visibility time,
-- an index scan on pgmq's vt index) and returns the seconds until then (NULL:
-- the queue is empty, or not settled now). The row lock is taken first and the
-- messages read in a later statement (a fresh snapshot), so every producer
-- either committed before (its message is counted) or runs mark_due after
-- (and moves the time earlier again): no wake-up is lost. A producer holding
-- the row right now is not waited for (the reader would stall behind a
-- submission): the row is left as it is, no later than the truth, and the
-- producer's commit (NOTIFY, or the next due poll) brings the reader back.
CREATE FUNCTION taskq.settle_due(p_queue text)
RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    next_due timestamptz;
BEGIN
    PERFORM 1 FROM taskq.queue_due WHERE queue_name = p_queue FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT min(vt) FROM pgmq.%I', pgmq.format_table_name(p_queue, 'q'))
        INTO next_due;
    UPDATE taskq.queue_due SET due_at = next_due WHERE queue_name = p_queue;
    RETURN extract(epoch FROM next_due - clock_timestamp());
END
$$;
