-- compatible: backward
-- Messages waiting for a retry are counted for the queue metrics every few
-- seconds; this partial index keeps that count cheap on a large status table.
CREATE INDEX task_status_retrying ON taskq.task_status (task_type)
    WHERE status = 'pending' AND attempt > 0;
