-- taskq's own tables. PGMQ itself is installed by the migrate step before this
-- file runs (extension where available, else the SQL bundled in the pgmq wheel).

CREATE SCHEMA IF NOT EXISTS taskq;

-- One row per task type: its PGMQ queue and its global rate limit.
-- rps_explicit is true once POST /task-types set max_rps; a batch's max_rps
-- then no longer changes it.
CREATE TABLE taskq.task_types (
    task_type    text PRIMARY KEY,
    queue_name   text NOT NULL UNIQUE,
    max_rps      double precision CHECK (max_rps IS NULL OR max_rps > 0),
    rps_explicit boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The shared token bucket of a rate-limited task type. Every worker replica
-- takes tokens from this one row, so max_rps holds for the sum of replicas.
CREATE TABLE taskq.rate_buckets (
    task_type   text PRIMARY KEY REFERENCES taskq.task_types (task_type) ON DELETE CASCADE,
    rate        double precision NOT NULL CHECK (rate > 0),
    capacity    double precision NOT NULL CHECK (capacity >= 1),
    tokens      double precision NOT NULL,
    refilled_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per payload: where each queued call stands.
CREATE TABLE taskq.task_status (
    task_id        uuid NOT NULL,
    payload_id     integer NOT NULL,
    message_id     bigint NOT NULL,
    task_type      text NOT NULL,
    item_id        text NOT NULL DEFAULT '',
    payload        jsonb,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'success', 'failed', 'cancelled')),
    error          text NOT NULL DEFAULT '',
    attempt        integer NOT NULL DEFAULT 0,
    http_status    integer,
    duration_ms    double precision,
    dlq_message_id bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, payload_id)
);

-- DLQ reprocessing by task type scans only the failed rows.
CREATE INDEX task_status_failed_by_type ON taskq.task_status (task_type, task_id, payload_id)
    WHERE status = 'failed';

-- Takes up to `requested` tokens from a task type's bucket in one statement.
-- Returns the tokens granted and, when none were, the seconds until the next
-- token exists. The clock is the database's, shared by every replica.
CREATE FUNCTION taskq.take_tokens(p_task_type text, p_requested integer)
RETURNS TABLE (granted integer, wait_seconds double precision)
LANGUAGE sql AS $$
    WITH current AS (
        SELECT b.task_type, b.rate, clock_timestamp() AS now,
               least(b.capacity,
                     b.tokens + b.rate * extract(epoch FROM clock_timestamp() - b.refilled_at))
                   AS available
        FROM taskq.rate_buckets b
        WHERE b.task_type = p_task_type
        FOR UPDATE
    ), taken AS (
        UPDATE taskq.rate_buckets b
        SET tokens = c.available - least(floor(c.available)::integer, p_requested),
            refilled_at = c.now
        FROM current c
        WHERE b.task_type = c.task_type
        RETURNING least(floor(c.available)::integer, p_requested) AS granted,
                  c.available, c.rate
    )
    SELECT granted,
           CASE WHEN granted > 0 THEN 0.0 ELSE (1.0 - available) / rate END
    FROM taken
$$;

-- Sets (or with NULL removes) a task type's global limit. The bucket holds at
-- most 5% of a second's tokens (at least one), so no one-second window can see
-- more than 1.05 x max_rps even when every replica takes tokens at once.
CREATE FUNCTION taskq.configure_rate(p_task_type text, p_max_rps double precision)
RETURNS void
LANGUAGE sql AS $$
    DELETE FROM taskq.rate_buckets WHERE task_type = p_task_type AND p_max_rps IS NULL;
    INSERT INTO taskq.rate_buckets AS b (task_type, rate, capacity, tokens)
    SELECT p_task_type, p_max_rps, greatest(1.0, p_max_rps * 0.05), greatest(1.0, p_max_rps * 0.05)
    WHERE p_max_rps IS NOT NULL
    ON CONFLICT (task_type) DO UPDATE
        SET rate = excluded.rate,
            capacity = excluded.capacity,
            tokens = least(b.tokens, excluded.capacity);
$$;
