-- Statements of the migrate step (taskq_core.migrate).

-- name: migrations_prepare
CREATE SCHEMA IF NOT EXISTS taskq;
CREATE TABLE IF NOT EXISTS taskq.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
-- Whether code older than this migration may keep running on the schema it
-- leaves (taskq_core.schema_version); absent in databases migrated before it existed.
ALTER TABLE taskq.schema_migrations
    ADD COLUMN IF NOT EXISTS backward_compatible boolean NOT NULL DEFAULT false;

-- name: migrate_lock
SELECT pg_advisory_lock(hashtext('taskq.migrate'));

-- name: migrate_unlock
SELECT pg_advisory_unlock(hashtext('taskq.migrate'));

-- name: applied_migrations
SELECT version FROM taskq.schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO taskq.schema_migrations (version, name, backward_compatible)
VALUES (%(version)s, %(name)s, %(backward_compatible)s);

-- name: applied_migrations_compatibility
-- The flag is read through to_jsonb so that a database migrated by an older
-- taskq-migrate (no such column yet) reads as "not compatible" rather than failing.
SELECT version, name,
       coalesce((to_jsonb(m) ->> 'backward_compatible')::boolean, false) AS backward_compatible
FROM taskq.schema_migrations AS m
ORDER BY version;

-- name: pgmq_extension_available
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgmq') AS available;

-- name: pgmq_installed
SELECT to_regclass('pgmq.meta') IS NOT NULL AS installed;

-- name: create_pgmq_extension
CREATE EXTENSION IF NOT EXISTS pgmq;

-- name: queue_exists
SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = %(queue)s) AS present;

-- name: create_queue
SELECT pgmq.create(%(queue)s);

