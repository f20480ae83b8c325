"""Alembic migrations of Callbridge's state store, run by `get_engine` at start-up.

The Alembic configuration lives here rather than in an alembic.ini, so an installed package
migrates itself; `upgrade_to_head` serialises concurrent starts (worker and starter start
together): a PostgreSQL advisory lock, or a lock file next to a SQLite database.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

HERE = Path(__file__).resolve().parent
# Any constant works: it only has to be the same in every Callbridge process.
_PG_LOCK_ID = 0x63616C6C  # "call"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    return cfg


@contextlib.contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _legacy_revision(conn, script: ScriptDirectory) -> str | None:
    """For a store made by `create_all` before migrations: the newest revision whose tables
    all exist (each revision lists its tables in TABLES), to stamp before upgrading."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables or "caller_index" not in tables:
        return None
    found = None
    for rev in reversed(list(script.walk_revisions())):  # oldest first
        module = importlib.import_module(f"callbridge.store.migrations.versions.{Path(rev.path).stem}")
        if not set(getattr(module, "TABLES", [])) <= tables:
            break
        found = rev.revision
    return found


def upgrade_to_head(engine: Engine) -> None:
    cfg = alembic_config()
    lock = _sqlite_lock(engine) if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    with lock, engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        cfg.attributes["connection"] = conn
        legacy = _legacy_revision(conn, ScriptDirectory.from_config(cfg))
        if legacy:
            command.stamp(cfg, legacy)
        command.upgrade(cfg, "head")
