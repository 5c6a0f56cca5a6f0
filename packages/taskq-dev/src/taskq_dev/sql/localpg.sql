-- Statements of the local development PostgreSQL (taskq_dev.localpg).

-- name: localpg_database_exists
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'taskq') AS present;

-- name: localpg_create_database
CREATE DATABASE taskq;
