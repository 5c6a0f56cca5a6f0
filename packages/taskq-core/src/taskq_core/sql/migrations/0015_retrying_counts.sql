-- compatible: backward
-- What "retrying" means, in one place: a message that failed at least once
-- and is not finished (pending with attempt > 0), counted per task type. The
-- queue metrics (queue_stats) and GET /task-types (task_type_figures) both
-- read this view. Its predicate is the partial index task_status_retrying's
-- (migration 0002), word for word: the planner inlines the view into each
-- query and counts off that index only while the two predicates match.
CREATE VIEW taskq.retrying_counts AS
SELECT task_type, count(*) AS retrying
FROM taskq.task_status
WHERE status = 'pending' AND attempt > 0
GROUP BY task_type;
