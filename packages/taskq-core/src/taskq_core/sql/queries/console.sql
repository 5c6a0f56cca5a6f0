-- name: console_outcomes
-- The web console's chart: successes and failures per type and minute over the
-- last %(minutes)s minutes (minutes_ago 0 is the current minute). Two branches
-- so each reads its own partial index: successes off task_status_expirable
-- (updated_at), failures off task_status_failed_by_type (failed rows only);
-- neither scans the whole status table.
SELECT task_type, 'success' AS status,
       floor(extract(epoch FROM now() - updated_at) / 60)::integer AS minutes_ago,
       count(*)::integer AS messages
FROM taskq.task_status
WHERE status = 'success' AND updated_at > now() - make_interval(mins => %(minutes)s)
GROUP BY 1, 3
UNION ALL
SELECT task_type, 'failed' AS status,
       floor(extract(epoch FROM now() - updated_at) / 60)::integer AS minutes_ago,
       count(*)::integer AS messages
FROM taskq.task_status
WHERE status = 'failed' AND updated_at > now() - make_interval(mins => %(minutes)s)
GROUP BY 1, 3;
