-- compatible: backward
-- Rate shaping (issue 16): the rate a type is sent at may be lower than its
-- max_rps, for every replica at once, because the shared bucket refills at
-- that lower rate. Two sources lower it; the lowest wins and max_rps caps all:
--   pacing: a target's rate-limit headers (RateLimit, X-RateLimit-*) said how
--     many calls it still allows until its reset; paced_rps spreads them over
--     that time and lapses at paced_until (the type returns to max_rps);
--   adaptive (opt-in per type): AIMD on 429/503, between min_rps and max_rps.
ALTER TABLE taskq.task_types
    ADD COLUMN adaptive boolean NOT NULL DEFAULT false,
    ADD COLUMN min_rps double precision CHECK (min_rps IS NULL OR min_rps > 0);

ALTER TABLE taskq.rate_buckets
    ADD COLUMN paced_rps double precision CHECK (paced_rps IS NULL OR paced_rps > 0),
    ADD COLUMN paced_until timestamptz,
    ADD COLUMN adaptive_rps double precision CHECK (adaptive_rps IS NULL OR adaptive_rps > 0),
    ADD COLUMN decreased_at timestamptz,
    -- Successes counted over windows of about a second: a decrease starts from
    -- what the target accepted in the last one, not from an overshooting rate.
    ADD COLUMN window_started_at timestamptz,
    ADD COLUMN window_successes integer NOT NULL DEFAULT 0,
    ADD COLUMN accepted_rps double precision;

-- The rate a bucket refills at now. least() skips NULLs: no pacing in force and
-- no adaptive rate leave max_rps.
CREATE FUNCTION taskq.allowed_rate(b taskq.rate_buckets)
RETURNS double precision
LANGUAGE sql AS $$
    SELECT least(b.rate,
                 CASE WHEN b.paced_until > clock_timestamp() THEN b.paced_rps END,
                 b.adaptive_rps)
$$;

-- take_tokens (0003) at the allowed rate. The bucket's capacity follows the
-- rate down (5% of a second's tokens, at least one), so a lowered rate is not
-- undone by a burst. A caller granted nothing asks again within a second at
-- most: a rate that rises meanwhile (pacing lapsed) is seen at once.
CREATE OR REPLACE FUNCTION taskq.take_tokens(p_task_type text, p_requested integer)
RETURNS TABLE (granted integer, wait_seconds double precision)
LANGUAGE sql AS $$
    WITH locked AS (
        SELECT b.task_type, b.tokens, b.refilled_at, b.capacity AS max_capacity,
               taskq.allowed_rate(b) AS rate, clock_timestamp() AS now
        FROM taskq.rate_buckets b
        WHERE b.task_type = p_task_type
        FOR UPDATE
    ), current AS (
        SELECT l.task_type, l.rate, l.now, r.capacity,
               least(r.capacity,
                     l.tokens + l.rate * extract(epoch FROM l.now - l.refilled_at)) AS available,
               greatest(r.capacity, l.rate * 0.5) AS horizon
        FROM locked l
        CROSS JOIN LATERAL (
            SELECT least(l.max_capacity, greatest(1.0, l.rate * 0.05)) AS capacity
        ) AS r
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
                ELSE least(1.0, (1.0 - (remaining + horizon)) / rate) END
    FROM taken
$$;

-- What one worker's batch of outcomes said about each type, in one call:
-- p_remaining/p_reset, a target's budget (NULL: its replies carried none):
-- that many calls until that many seconds from now; p_successes/p_throttled
-- feed the adaptive rate of a type that has one.
CREATE FUNCTION taskq.observe_rates(
    p_task_types text[], p_remaining double precision[], p_reset double precision[],
    p_successes integer[], p_throttled integer[]
)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    o record;
BEGIN
    FOR o IN
        SELECT u.task_type, u.remaining, u.reset, u.successes, u.throttled
        FROM unnest(p_task_types, p_remaining, p_reset, p_successes, p_throttled)
             AS u(task_type, remaining, reset, successes, throttled)
        ORDER BY u.task_type  -- the same lock order in every replica
    LOOP
        IF o.remaining IS NOT NULL THEN
            PERFORM taskq.pace(o.task_type, o.remaining, o.reset);
        END IF;
        IF o.successes > 0 OR o.throttled > 0 THEN
            PERFORM taskq.adapt_rate(o.task_type, o.successes, o.throttled);
        END IF;
    END LOOP;
END
$$;

-- Pacing: the target allows p_remaining more calls in the next p_reset
-- seconds, so the type goes at p_remaining / p_reset until then (never above
-- max_rps; a reset under a second counts as one, so the last calls of a window
-- are spread rather than burst). With nothing remaining, the bucket is emptied
-- up to the reset, as a snooze does. The bucket never holds more tokens than
-- the target has left.
CREATE FUNCTION taskq.pace(p_task_type text, p_remaining double precision, p_reset double precision)
RETURNS void
LANGUAGE sql AS $$
    UPDATE taskq.rate_buckets AS b
    SET paced_rps = CASE WHEN p_remaining >= 1
                         THEN least(b.rate, floor(p_remaining) / greatest(p_reset, 1.0)) END,
        paced_until = clock_timestamp() + make_interval(secs => greatest(p_reset, 0.0)),
        tokens = CASE WHEN p_remaining >= 1 THEN least(b.tokens, floor(p_remaining))
                      ELSE least(b.tokens, 0.0) END,
        refilled_at = CASE WHEN p_remaining >= 1 THEN b.refilled_at
                           ELSE greatest(b.refilled_at,
                                         clock_timestamp() + make_interval(secs => p_reset)) END
    WHERE b.task_type = p_task_type
$$;

-- AIMD for an adaptive type (task_types.adaptive; adaptive_rps is NULL
-- otherwise and nothing happens). Throttled calls (429/503) cut the rate to
-- 0.9 x the lower of the current rate and the successes per second of the
-- last window (so one cut lands near what the target accepts rather than
-- many), but at most by half, and at most once a second (one overload
-- answers many calls at once); successes add 0.5% of max_rps (at least
-- 0.5/s) per second's worth of calls. Never under the floor (min_rps, default 1/s or max_rps if lower) nor
-- above max_rps. docs/benchmarks.md has the figures behind these constants.
CREATE FUNCTION taskq.adapt_rate(p_task_type text, p_successes integer, p_throttled integer)
RETURNS void
LANGUAGE sql AS $$
    WITH current AS (
        SELECT b.task_type, b.rate, b.adaptive_rps, b.decreased_at, b.window_started_at,
               b.window_successes, b.accepted_rps, clock_timestamp() AS now,
               least(b.rate, coalesce(t.min_rps, 1.0)) AS floor_rps,
               b.window_started_at IS NULL
                   OR clock_timestamp() - b.window_started_at >= interval '1 second' AS closing
        FROM taskq.rate_buckets AS b
        JOIN taskq.task_types AS t USING (task_type)
        WHERE b.task_type = p_task_type AND t.adaptive AND b.adaptive_rps IS NOT NULL
        FOR UPDATE OF b
    ), measured AS (
        SELECT c.*,
               CASE WHEN c.window_started_at IS NULL THEN c.accepted_rps
                    WHEN c.closing
                    THEN (c.window_successes + p_successes)
                         / extract(epoch FROM c.now - c.window_started_at)
                    ELSE c.accepted_rps END AS accepted
        FROM current AS c
    ), decided AS (
        SELECT m.*,
               CASE WHEN p_throttled > 0
                         AND (m.decreased_at IS NULL
                              OR m.now - m.decreased_at >= interval '1 second')
                    THEN greatest(m.floor_rps,
                                  0.9 * greatest(least(m.adaptive_rps,
                                                       coalesce(m.accepted, m.adaptive_rps)),
                                                 0.5 * m.adaptive_rps))
                    WHEN p_throttled = 0 AND p_successes > 0
                    THEN least(m.rate,
                               m.adaptive_rps + greatest(0.5, m.rate * 0.005) * p_successes
                                                / m.adaptive_rps)
                    ELSE m.adaptive_rps END AS next_rps
        FROM measured AS m
    )
    UPDATE taskq.rate_buckets AS b
    SET adaptive_rps = greatest(d.next_rps, d.floor_rps),
        decreased_at = CASE WHEN d.next_rps < d.adaptive_rps THEN d.now ELSE b.decreased_at END,
        window_started_at = CASE WHEN d.closing THEN d.now ELSE b.window_started_at END,
        window_successes = CASE WHEN d.closing THEN 0 ELSE b.window_successes + p_successes END,
        accepted_rps = d.accepted
    FROM decided AS d
    WHERE b.task_type = d.task_type
$$;

-- configure_rate (0001) with the adaptive state: an adaptive type starts at
-- max_rps (or keeps its current rate, capped by a lowered max_rps); a type
-- that is not adaptive has none.
CREATE FUNCTION taskq.configure_adaptive(p_task_type text)
RETURNS void
LANGUAGE sql AS $$
    UPDATE taskq.rate_buckets AS b
    SET adaptive_rps = CASE WHEN t.adaptive
                            THEN least(b.rate, greatest(coalesce(b.adaptive_rps, b.rate),
                                                        coalesce(t.min_rps, 0.0)))
                       END,
        accepted_rps = CASE WHEN t.adaptive THEN b.accepted_rps END
    FROM taskq.task_types AS t
    WHERE b.task_type = p_task_type AND t.task_type = b.task_type
$$;
