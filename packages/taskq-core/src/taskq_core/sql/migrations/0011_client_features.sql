-- Idempotency-Key of POST /tasks (issue 15): the first submission with a key
-- claims its row in the submission's own transaction, so a concurrent repeat
-- waits on the primary key until that transaction ends and then reads the
-- committed answer (or claims the key itself if the first rolled back).
-- body_hash is SHA-256 of the canonical body: a repeat with another body is a
-- conflict. Expired rows are deleted in small batches by each new claim
-- (claim_idempotency_key), so the table never grows past a day's keys.
CREATE TABLE taskq.idempotency_keys (
    idempotency_key text PRIMARY KEY,
    body_hash       bytea NOT NULL,
    task_id         uuid,
    message_ids     bigint[],
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);

CREATE INDEX idempotency_keys_expiry ON taskq.idempotency_keys (expires_at);

-- Delayed and scheduled delivery: the time a held message first becomes
-- visible (NULL: delivered at once). Its status stays pending meanwhile.
ALTER TABLE taskq.task_status ADD COLUMN scheduled_for timestamptz;

-- Response capture: the first RESPONSE_CAPTURE_BYTES of the last reply body
-- received, as text, or base64 when it is not UTF-8 text (encoding says which).
ALTER TABLE taskq.task_status
    ADD COLUMN response_body          text,
    ADD COLUMN response_body_encoding text CHECK (response_body_encoding IN ('utf-8', 'base64')),
    ADD COLUMN response_content_type  text,
    ADD COLUMN response_truncated     boolean;

-- Request signing: a task type's signing secrets (one, or two during a
-- rotation), sealed with AES-256-GCM under the SECRETS_KEY setting
-- (taskq_core.secret_box); NULL: calls are not signed. Never returned by a GET.
ALTER TABLE taskq.task_types ADD COLUMN signing_secrets bytea;
