-- compatible: backward
-- The planner must not trust statistics on status: they are a snapshot of a
-- column that swings between "all pending" and "all final" within seconds.
-- Analysed while nothing was pending, it estimated one pending row for the
-- outcome writes (UPDATE ... FROM unnest(...) WHERE status = 'pending') and
-- joined every batch row against every pending row: 0.8 s for 500 outcomes
-- with 8,000 pending. Without statistics the default estimate leads to a hash
-- or index join, linear in the batch. (Statistics gathered before this
-- migration stay until the column's next rewrite; a fresh install has none.)
ALTER TABLE taskq.task_status ALTER COLUMN status SET STATISTICS 0;
