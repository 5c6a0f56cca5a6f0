"""Database access: the only code that talks to PostgreSQL, one module per service.

Each module runs the named statements of its own `sql/queries/*.sql` file, maps
rows to typed values by column name and turns psycopg errors into
`taskq_core.errors` so no caller ever handles a driver exception.
"""

from __future__ import annotations
