"""Callbridge's own state: SQLite file by default, PostgreSQL for scale (CALLBRIDGE_DATABASE_URL)."""
