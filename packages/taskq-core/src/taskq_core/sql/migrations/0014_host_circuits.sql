-- compatible: backward
-- A circuit breaker per target host (host:port), shared by every task type,
-- replica and process: after a failure ratio over a window, calls to the host
-- stop for a cool-down (open), then a few probe calls decide whether it closes
-- or opens again (half-open). Messages whose host is open are snoozed, not
-- failed, so an outage costs no attempts. Workers add their calls' outcomes in
-- batches (one statement per recorder write, not per call) and read back the
-- hosts that are not closed.
CREATE TABLE taskq.host_circuits (
    host            text PRIMARY KEY,  -- host:port, lower case
    state           text NOT NULL DEFAULT 'closed'
                    CHECK (state IN ('closed', 'open', 'half_open')),
    -- The current window's counts (a tumbling window of BREAKER_WINDOW).
    window_started  timestamptz NOT NULL DEFAULT clock_timestamp(),
    calls           integer NOT NULL DEFAULT 0,
    failures        integer NOT NULL DEFAULT 0,
    open_until      timestamptz,  -- while open: when probing may start
    probes_taken    integer NOT NULL DEFAULT 0,  -- half-open: probes handed out
    probe_successes integer NOT NULL DEFAULT 0,
    probing_since   timestamptz,  -- a probe lost with its worker is handed out again after the cool-down
    times_opened    bigint NOT NULL DEFAULT 0,
    last_failure_at timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX host_circuits_not_closed ON taskq.host_circuits (host) WHERE state <> 'closed';

-- What a worker's view holds: every host that is not closed, with the seconds
-- until an open one may be probed (by the database's clock, shared by all).
CREATE FUNCTION taskq.host_circuits_not_closed()
RETURNS TABLE (host text, state text, open_for double precision)
LANGUAGE sql STABLE AS $$
    SELECT c.host, c.state,
           greatest(extract(epoch FROM c.open_until - clock_timestamp()), 0)::double precision
    FROM taskq.host_circuits c
    WHERE c.state <> 'closed'
$$;

-- Adds one batch of call outcomes per host and moves each host's state:
--   closed:    counts add up within the window (a new window starts when it is
--              over); at p_min_calls calls with failures/calls >= p_ratio it opens.
--   open:      outcomes arriving before open_until are calls that were already
--              under way; they change nothing.
--   half-open: (open past open_until) a failure opens it again; p_probes
--              successes close it with a fresh window.
-- Hosts are taken in name order so two workers never lock rows in crossed order.
CREATE FUNCTION taskq.record_host_calls(
    p_hosts text[], p_calls integer[], p_failures integer[],
    p_ratio double precision, p_min_calls integer, p_window double precision,
    p_cooldown double precision, p_probes integer)
RETURNS TABLE (host text, state text, open_for double precision)
LANGUAGE plpgsql AS $$
DECLARE
    v_host text;
    v_calls integer;
    v_failures integer;
    v_now timestamptz;
    r taskq.host_circuits;
BEGIN
    FOR v_host, v_calls, v_failures IN
        SELECT u.h, u.c, u.f FROM unnest(p_hosts, p_calls, p_failures) AS u (h, c, f) ORDER BY u.h
    LOOP
        INSERT INTO taskq.host_circuits AS hc (host) VALUES (v_host) ON CONFLICT DO NOTHING;
        SELECT * INTO r FROM taskq.host_circuits hc WHERE hc.host = v_host FOR UPDATE;
        v_now := clock_timestamp();
        IF r.state = 'open' AND r.open_until > v_now THEN
            UPDATE taskq.host_circuits hc
            SET last_failure_at = CASE WHEN v_failures > 0 THEN v_now ELSE hc.last_failure_at END,
                updated_at = v_now
            WHERE hc.host = v_host;
        ELSIF r.state <> 'closed' THEN
            IF v_failures > 0 THEN
                UPDATE taskq.host_circuits hc
                SET state = 'open', open_until = v_now + make_interval(secs => p_cooldown),
                    probes_taken = 0, probe_successes = 0, probing_since = NULL,
                    times_opened = hc.times_opened + 1, last_failure_at = v_now,
                    failures = hc.failures + v_failures, calls = hc.calls + v_calls,
                    updated_at = v_now
                WHERE hc.host = v_host;
            ELSIF r.probe_successes + v_calls >= p_probes THEN
                UPDATE taskq.host_circuits hc
                SET state = 'closed', open_until = NULL, probes_taken = 0,
                    probe_successes = 0, probing_since = NULL,
                    window_started = v_now, calls = 0, failures = 0, updated_at = v_now
                WHERE hc.host = v_host;
            ELSE
                UPDATE taskq.host_circuits hc
                SET state = 'half_open', probe_successes = hc.probe_successes + v_calls,
                    probing_since = coalesce(hc.probing_since, v_now),
                    calls = hc.calls + v_calls, updated_at = v_now
                WHERE hc.host = v_host;
            END IF;
        ELSE
            IF r.window_started + make_interval(secs => p_window) <= v_now THEN
                r.window_started := v_now;
                r.calls := 0;
                r.failures := 0;
            END IF;
            r.calls := r.calls + v_calls;
            r.failures := r.failures + v_failures;
            IF r.calls >= p_min_calls AND r.failures >= p_ratio * r.calls THEN
                UPDATE taskq.host_circuits hc
                SET state = 'open', open_until = v_now + make_interval(secs => p_cooldown),
                    window_started = r.window_started, calls = r.calls, failures = r.failures,
                    times_opened = hc.times_opened + 1, last_failure_at = v_now,
                    updated_at = v_now
                WHERE hc.host = v_host;
            ELSE
                UPDATE taskq.host_circuits hc
                SET window_started = r.window_started, calls = r.calls, failures = r.failures,
                    last_failure_at = CASE WHEN v_failures > 0 THEN v_now ELSE hc.last_failure_at END,
                    updated_at = v_now
                WHERE hc.host = v_host;
            END IF;
        END IF;
    END LOOP;
    RETURN QUERY SELECT * FROM taskq.host_circuits_not_closed();
END
$$;

-- Hands out one probe of a host whose cool-down is over, at most p_probes at
-- a time across every worker (a probe whose worker vanished is handed out
-- again after p_cooldown). Returns whether this caller may call the host now
-- and the host's state after the claim: closed (someone's probes closed it:
-- call), half_open, or open (seconds until it may be probed).
CREATE FUNCTION taskq.claim_host_probe(p_host text, p_probes integer, p_cooldown double precision)
RETURNS TABLE (granted boolean, state text, open_for double precision)
LANGUAGE plpgsql AS $$
DECLARE
    r taskq.host_circuits;
    v_now timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO r FROM taskq.host_circuits hc WHERE hc.host = p_host FOR UPDATE;
    IF NOT FOUND OR r.state = 'closed' THEN
        RETURN QUERY SELECT true, 'closed'::text, 0::double precision;
        RETURN;
    END IF;
    IF r.state = 'open' AND r.open_until > v_now THEN
        RETURN QUERY SELECT false, 'open'::text,
            extract(epoch FROM r.open_until - v_now)::double precision;
        RETURN;
    END IF;
    IF r.state = 'open' OR r.probing_since + make_interval(secs => p_cooldown) <= v_now THEN
        UPDATE taskq.host_circuits hc
        SET state = 'half_open', probes_taken = 1, probe_successes = 0,
            probing_since = v_now, updated_at = v_now
        WHERE hc.host = p_host;
        RETURN QUERY SELECT true, 'half_open'::text, 0::double precision;
    ELSIF r.probes_taken < p_probes THEN
        UPDATE taskq.host_circuits hc
        SET probes_taken = hc.probes_taken + 1, updated_at = v_now
        WHERE hc.host = p_host;
        RETURN QUERY SELECT true, 'half_open'::text, 0::double precision;
    ELSE
        RETURN QUERY SELECT false, 'half_open'::text, 0::double precision;
    END IF;
END
$$;
