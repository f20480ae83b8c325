"""Durable daily counters for the weekly checks (`ops_daily_counters`).

The screen pop answers thousands of lookups a second, so nothing on that path writes here:
each process keeps counting in its Prometheus counters, and a `CounterFlusher` adds what they
moved since its last flush (every few seconds and at shutdown). Flushes add, never overwrite,
so several starters share the rows.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Mapping

from prometheus_client import Counter
from sqlalchemy import Engine, func, select
from callbridge.store.tables import ops_daily_counters  # noqa: F401  (the schema lives in one module)



SCREENPOP_PREFIX = "screenpop_lookups:"


def today() -> date:
    return datetime.now(timezone.utc).date()


def add_counts(engine: Engine, counts: Mapping[str, int], day: date | None = None) -> None:
    """Add these amounts to the day's counters in one transaction (an upsert per name)."""
    rows = [{"day": day or today(), "name": name, "value": int(n)} for name, n in counts.items() if n]
    if not rows:
        return
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(ops_daily_counters)
    stmt = stmt.on_conflict_do_update(index_elements=["day", "name"],
                                      set_={"value": ops_daily_counters.c.value + stmt.excluded.value})
    with engine.begin() as conn:
        conn.execute(stmt, rows)


def totals_since(engine: Engine, since: date, prefix: str = "") -> dict[str, int]:
    """Each counter summed over the days from `since` (inclusive) to today."""
    query = (select(ops_daily_counters.c.name, func.sum(ops_daily_counters.c.value))
             .where(ops_daily_counters.c.day >= since).group_by(ops_daily_counters.c.name))
    if prefix:
        query = query.where(ops_daily_counters.c.name.startswith(prefix))
    with engine.connect() as conn:
        return {name: int(total) for name, total in conn.execute(query).all()}


def week_start(now: datetime | None = None) -> date:
    """The first of the seven UTC days ending today."""
    return ((now or datetime.now(timezone.utc)) - timedelta(days=6)).date()


def labelled_values(counter: Counter, prefix: str) -> dict[str, float]:
    """A labelled counter's current values as {prefix + label: value} (one label only)."""
    out: dict[str, float] = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels:
                out[prefix + next(iter(sample.labels.values()))] = sample.value
    return out


def screenpop_counts() -> dict[str, float]:
    from callbridge.core import metrics

    return labelled_values(metrics.SCREENPOP_LOOKUPS, SCREENPOP_PREFIX)


class CounterFlusher:
    """Writes what in-process counters moved since the last flush. A failed write keeps the
    difference for the next one, so a database blip loses nothing."""

    def __init__(self, engine: Engine, read: Callable[[], Mapping[str, float]] = screenpop_counts) -> None:
        self._engine = engine
        self._read = read
        self._flushed: dict[str, float] = {}
        self._lock = threading.Lock()  # the periodic flush and the admin page's may overlap

    def flush(self) -> dict[str, int]:
        with self._lock:
            current = dict(self._read())
            delta = {k: int(v - self._flushed.get(k, 0.0)) for k, v in current.items()}
            delta = {k: n for k, n in delta.items() if n > 0}
            if delta:
                add_counts(self._engine, delta)
                for name, n in delta.items():
                    self._flushed[name] = self._flushed.get(name, 0.0) + n
            return delta
