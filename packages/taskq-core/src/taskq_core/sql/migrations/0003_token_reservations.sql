-- Tokens can now be reserved ahead: a caller always gets up to a burst's worth
-- of tokens (while less than half a second of tokens is reserved) together
-- with the time it may use them. Replicas then wait for their own slot
-- instead of polling an empty bucket; sends still never outrun the rate,
-- because every token's use waits until the bucket has refilled past it.
CREATE OR REPLACE FUNCTION taskq.take_tokens(p_task_type text, p_requested integer)
RETURNS TABLE (granted integer, wait_seconds double precision)
LANGUAGE sql AS $$
    WITH current AS (
        SELECT b.task_type, b.rate, b.capacity, clock_timestamp() AS now,
               least(b.capacity,
                     b.tokens + b.rate * extract(epoch FROM clock_timestamp() - b.refilled_at))
                   AS available,
               greatest(b.capacity, b.rate * 0.5) AS horizon
        FROM taskq.rate_buckets b
        WHERE b.task_type = p_task_type
        FOR UPDATE
    ), decided AS (
        SELECT c.*,
               greatest(0, least(p_requested,
                                 floor(c.capacity)::integer,
                                 floor(c.available + c.horizon)::integer)) AS taking
        FROM current c
    ), taken AS (
        UPDATE taskq.rate_buckets b
        SET tokens = d.available - d.taking, refilled_at = d.now
        FROM decided d
        WHERE b.task_type = d.task_type
        RETURNING d.taking, d.available - d.taking AS remaining, d.rate, d.horizon
    )
    SELECT taking,
           CASE WHEN taking > 0 THEN greatest(0.0, -remaining / rate)
                ELSE (1.0 - (remaining + horizon)) / rate END
    FROM taken
$$;
