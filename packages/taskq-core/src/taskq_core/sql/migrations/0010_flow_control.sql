-- compatible: backward
-- 429 means "later", not "failed" (design decision 11). A message the target
-- asked to come back later is snoozed: hidden until then without spending an
-- attempt; `snoozes` counts those, with a cap of its own (MAX_SNOOZES) so a
-- target that always answers 429 still ends in the DLQ.
ALTER TABLE taskq.task_status ADD COLUMN snoozes integer NOT NULL DEFAULT 0;

-- The whole task type waits until the time the target asked for, on every
-- replica: reads of its queue return nothing before `snoozed_until` (by the
-- database's clock, shared by every replica), and its token bucket is emptied
-- up to that time so the type resumes at its rate rather than in a burst.
ALTER TABLE taskq.task_types ADD COLUMN snoozed_until timestamptz;

-- A task type's delivery defaults (POST /task-types): max_retries, backoff,
-- timeout, retryable status codes, headers. A batch's own fields win; what
-- neither sets comes from the worker's settings. One JSON document (validated
-- by the API, read by the worker with the routes) so a new default needs no
-- migration of its own.
ALTER TABLE taskq.task_types ADD COLUMN delivery_defaults jsonb NOT NULL DEFAULT '{}';

-- A global concurrency limit per task type (POST /task-types max_concurrency):
-- calls in flight across every replica never exceed it. Each call holds a
-- lease with an expiry that its worker renews while the call runs, so the
-- slots of a worker that crashed come back within seconds instead of leaking
-- the way a counter would.
ALTER TABLE taskq.task_types ADD COLUMN max_concurrency integer
    CHECK (max_concurrency IS NULL OR max_concurrency > 0);

CREATE TABLE taskq.concurrency_leases (
    lease_id   bigserial PRIMARY KEY,
    task_type  text NOT NULL REFERENCES taskq.task_types (task_type) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX concurrency_leases_by_type ON taskq.concurrency_leases (task_type);

-- Takes up to `p_requested` free slots of a type, each a lease that expires
-- after `p_ttl` seconds unless renewed; returns the lease ids. The type's row
-- is locked so two replicas cannot both count the same free slot; expired
-- leases (a crashed worker's) are cleared first. No limit: nothing is taken.
CREATE FUNCTION taskq.take_slots(p_task_type text, p_requested integer, p_ttl double precision)
RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_limit integer;
    v_live integer;
BEGIN
    SELECT max_concurrency INTO v_limit
    FROM taskq.task_types WHERE task_type = p_task_type
    FOR NO KEY UPDATE;
    IF v_limit IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM taskq.concurrency_leases
    WHERE task_type = p_task_type AND expires_at <= clock_timestamp();
    SELECT count(*) INTO v_live FROM taskq.concurrency_leases WHERE task_type = p_task_type;
    RETURN QUERY
        INSERT INTO taskq.concurrency_leases (task_type, expires_at)
        SELECT p_task_type, clock_timestamp() + make_interval(secs => p_ttl)
        FROM generate_series(1, greatest(0, least(p_requested, v_limit - v_live)))
        RETURNING lease_id;
END
$$;
