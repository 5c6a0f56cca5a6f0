-- Per-host circuit breakers (migration 0014; taskq_core.repository.circuits).

-- name: record_host_calls
-- One batch of call outcomes per host (a recorder write), answered with every
-- host that is not closed: the worker's whole view in the same round trip.
SELECT host, state, open_for
FROM taskq.record_host_calls(%(hosts)b::text[], %(calls)b::integer[], %(failures)b::integer[],
                             %(ratio)s, %(min_calls)s, %(window)s, %(cooldown)s, %(probes)s);

-- name: host_circuits_not_closed
-- An idle worker's refresh of its view (once a second at most).
SELECT host, state, open_for FROM taskq.host_circuits_not_closed();

-- name: claim_host_probe
SELECT granted, state, open_for
FROM taskq.claim_host_probe(%(host)s, %(probes)s, %(cooldown)s);

-- name: list_host_circuits
-- GET /hosts and the metric: an open host whose cool-down is over is probing
-- (half_open) whether or not a probe was handed out yet. Hosts not closed first.
SELECT host,
       CASE WHEN state = 'open' AND open_until <= clock_timestamp() THEN 'half_open'
            ELSE state END AS state,
       calls, failures, times_opened,
       CASE WHEN state = 'open' AND open_until > clock_timestamp() THEN open_until END
           AS opens_until,
       last_failure_at, updated_at
FROM taskq.host_circuits
ORDER BY state = 'closed', host
LIMIT %(limit)s;
