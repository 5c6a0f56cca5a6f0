"""`make soak`: steady load for SOAK_MINUTES (30) while the worker is restarted every few minutes.

Not part of CI. Reports the RSS growth of the worker and the API and any
message lost (accepted but never delivered) or duplicated (delivered more than
once) at the end. Needs a PostgreSQL server: TASKQ_TEST_DSN (or what the tests
use when it is unset).
"""
