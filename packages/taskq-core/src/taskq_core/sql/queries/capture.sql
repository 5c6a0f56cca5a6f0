-- Response capture (taskq_core.repository.worker, migration 0011).

-- name: record_responses
-- Runs before the outcome writes of the same transaction, under the same
-- compare-and-set: only a pending row still pointing at this message takes the
-- reply, so a late duplicate never replaces the reply of a final status.
UPDATE taskq.task_status AS s
SET response_body = u.body, response_body_encoding = u.encoding,
    response_content_type = u.content_type, response_truncated = u.truncated
FROM unnest(%(task_ids)s::uuid[], %(payload_ids)s::integer[], %(message_ids)s::bigint[],
            %(bodies)s::text[], %(encodings)s::text[], %(content_types)s::text[],
            %(truncated)s::boolean[])
     AS u(task_id, payload_id, message_id, body, encoding, content_type, truncated)
WHERE s.task_id = u.task_id AND s.payload_id = u.payload_id
  AND s.message_id = u.message_id AND s.status = 'pending';
