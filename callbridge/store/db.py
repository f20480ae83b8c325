"""Engine and schema of Callbridge's state store (SQLAlchemy Core)."""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from pathlib import Path

from sqlalchemy.exc import OperationalError
from sqlalchemy import Engine, create_engine, event



def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (the lookup) never wait for the refresher
    cur.execute("PRAGMA synchronous=NORMAL")
    # Writers queue rather than fail: contact sync's pages, call logging and the index
    # refresher all write; "database is locked" after 5 s once failed a page mid-way.
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


_opening = threading.Lock()
_failed: dict[str, tuple[float, Exception]] = {}
RETRY_OPEN_SECONDS = 5.0


def get_engine(url: str) -> Engine:
    """The store's engine, created and migrated on first use. One thread at a time opens it: the
    starter opens a database server's store lazily from its lookup threads (it may be down at
    start), and two migrations at once would collide. A database server that just failed to
    open is not tried again for a few seconds: callers queued behind the lock fail at once
    instead of each waiting out its own connect timeout."""
    with _opening:
        failed = _failed.get(url)
        if failed is not None and time.monotonic() - failed[0] < RETRY_OPEN_SECONDS:
            raise failed[1]
        try:
            return _open_engine(url)
        except OperationalError as exc:
            if not url.startswith("sqlite"):
                _failed[url] = (time.monotonic(), exc)
            raise


@lru_cache(maxsize=8)
def _open_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: a failed statement's message would carry its values (names, numbers)
        # into logs and workflow failures.
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # connect_timeout: a hung server fails a connection after 5 s instead of holding its
        # thread (and the starter's first open of the store) forever.
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True,
                               connect_args={"connect_timeout": 5})

    from callbridge.store.migrations import upgrade_to_head

    # Alembic migrations, not create_all: a store made by an older release is brought up to date.
    upgrade_to_head(engine)
    return engine


get_engine.cache_clear = _open_engine.cache_clear  # type: ignore[attr-defined]  (tests drop databases)
