"""SQLite-backed document store: the emulator's org survives a restart.

Each entity is one JSON document keyed by (kind, id). Emulator-sized data sets (thousands
of rows) are filtered in Python, so there is no per-kind schema to migrate.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

Doc = dict[str, Any]


class Store:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "genesys.sqlite3"
        # One connection shared by the event loop and the webhook threads, serialised by a lock.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # As the Salesforce emulator: a commit is not an fsync (a bulk add of 200 contacts made
        # 200 of them, on the event loop, and every other request waited).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS docs (
                seq  INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                id   TEXT NOT NULL,
                body TEXT NOT NULL,
                UNIQUE (kind, id)
            );
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )

    def get(self, kind: str, id_: str) -> Doc | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM docs WHERE kind=? AND id=?", (kind, id_)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, id_: str, doc: Doc) -> Doc:
        body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            # Upsert keeps the original seq, so listings stay in creation order.
            self._db.execute(
                "INSERT INTO docs (kind, id, body) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET body=excluded.body",
                (kind, id_, body),
            )
        return doc

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The writes inside as one commit (a bulk request's entities): still each entity's
        own success or failure, since a refused entity raises before it writes anything."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def delete(self, kind: str, id_: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM docs WHERE kind=? AND id=?", (kind, id_))
        return cur.rowcount > 0

    def all(self, kind: str) -> list[Doc]:
        return list(self.iter(kind))

    def iter(self, kind: str) -> Iterator[Doc]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM docs WHERE kind=? ORDER BY seq", (kind,)).fetchall()
        for (body,) in rows:
            yield json.loads(body)

    def page_after(self, kind: str, after_seq: int, limit: int) -> list[tuple[int, Doc]]:
        """Up to `limit` documents created after position `after_seq`, with their positions: a
        scan page reads only its own rows (by rowid range), at any depth."""
        with self._lock:
            rows = self._db.execute("SELECT seq, body FROM docs WHERE kind=? AND seq > ? ORDER BY seq LIMIT ?",
                                    (kind, after_seq, limit)).fetchall()
        return [(seq, json.loads(body)) for seq, body in rows]

    def containing(self, kind: str, needle: str) -> list[Doc]:
        """Documents whose stored JSON contains `needle` (ASCII case-insensitive): a prefilter for
        exact lookups, so they don't decode every document. Callers still check each hit."""
        if not needle.isascii() or '"' in needle or "\\" in needle:
            return self.all(kind)  # JSON escaping or SQLite's ASCII-only lower(): no shortcut
        with self._lock:
            rows = self._db.execute("SELECT body FROM docs WHERE kind=? AND instr(lower(body), ?) > 0 ORDER BY seq",
                                    (kind, needle.lower())).fetchall()
        return [json.loads(body) for (body,) in rows]

    def ids(self, kind: str) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM docs WHERE kind=? ORDER BY seq", (kind,)).fetchall()
        return [r[0] for r in rows]

    def count(self, kind: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM docs WHERE kind=?", (kind,)).fetchone()[0]

    def meta_get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
