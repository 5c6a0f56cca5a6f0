-- compatible: backward
-- The queue name is derived from the task type (taskq_core.queue_names), so
-- the primary key already makes it unique. A second unique index made
-- concurrent first submissions of a new type fail: INSERT ... ON CONFLICT
-- (task_type) handles only its own arbiter, and the other unique index raised
-- a duplicate-key error instead of waiting its turn.
ALTER TABLE taskq.task_types DROP CONSTRAINT task_types_queue_name_key;
