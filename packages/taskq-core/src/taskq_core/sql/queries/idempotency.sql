-- Statements of idempotent submission (taskq_core.repository.api, migration 0011).

-- name: claim_idempotency_key
-- Returns a row only when this transaction now owns the key: it was new, or
-- its previous use has expired. A concurrent claimer of the same key waits on
-- the primary key until the owner's transaction ends. The same statement
-- deletes up to 100 other expired keys (SKIP LOCKED: never waits on them),
-- which bounds the table without a separate job.
WITH purged AS (
    DELETE FROM taskq.idempotency_keys
    WHERE idempotency_key IN (
        SELECT idempotency_key FROM taskq.idempotency_keys
        WHERE expires_at < now() AND idempotency_key <> %(key)s
        ORDER BY expires_at
        LIMIT 100
        FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO taskq.idempotency_keys AS k (idempotency_key, body_hash, expires_at)
VALUES (%(key)s, %(body_hash)s, now() + make_interval(secs => %(ttl_seconds)s))
ON CONFLICT (idempotency_key) DO UPDATE
    SET body_hash = excluded.body_hash, task_id = NULL, message_ids = NULL,
        created_at = now(), expires_at = excluded.expires_at
    WHERE k.expires_at < now()
RETURNING idempotency_key;

-- name: record_idempotent_answer
UPDATE taskq.idempotency_keys
SET task_id = %(task_id)s, message_ids = %(message_ids)s
WHERE idempotency_key = %(key)s;

-- name: idempotent_answer
SELECT body_hash, task_id, message_ids
FROM taskq.idempotency_keys
WHERE idempotency_key = %(key)s AND expires_at >= now();
