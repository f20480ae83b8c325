"""The weekly checks of the seed's go-live checklist, with real figures.

`weekly_checks` is pure (figures → checks with their flags); `gather_figures` fetches the
figures from the state store and Temporal's visibility. The CLI (`callbridge report weekly`)
and the admin UI (`/admin/report`) both print what these return.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import Engine, func, select

from callbridge.store import ops_counters, sync_runs
from callbridge.store.privacy import erasure_requests

Status = Literal["ok", "short", "no_data"]

# A lookup that could not answer in time: the agent's screen stayed empty. A caller nobody
# knows (not_found), or a withheld number, is a correct answer, not a failure.
SCREENPOP_FAILURES = ("timeout", "unavailable")
# Executions that ended without doing their job.
FAILED_STATUSES = ("Failed", "TimedOut", "Terminated")
DAYS = 7


@dataclass(frozen=True)
class Thresholds:
    """The seed's targets."""

    screenpop_success: float = 0.99      # > 99%
    sync_seconds: float = 120.0          # < 2 min
    call_logging_success: float = 0.99   # > 99%
    errors_per_week: int = 5             # < 5


@dataclass(frozen=True)
class FailedWorkflow:
    workflow_type: str
    workflow_id: str
    run_id: str
    status: str
    closed_at: datetime | None


@dataclass(frozen=True)
class WeeklyFigures:
    since: datetime
    until: datetime
    screenpop: dict[str, int] = field(default_factory=dict)          # lookups by outcome
    sync_durations: list[float] = field(default_factory=list)        # finished contact-sync runs, seconds
    sync_runs: int = 0
    sync_failed_runs: int = 0
    sync_errors: int = 0                                             # records runs could not settle
    call_logging: dict[str, int] | None = None                       # CallLoggingWorkflow by status; None: Temporal unreachable
    workflow_failures: int | None = None                             # every type but SyncPairWorkflow (its run counts it)
    failed_workflows: list[FailedWorkflow] = field(default_factory=list)  # the newest few, to look at
    erasures_open: int = 0
    erasures_overdue: int = 0
    erasures_completed: int = 0                                      # completed in the week

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=lambda v: v.isoformat()))


@dataclass(frozen=True)
class Check:
    key: str
    title: str       # the seed's wording
    target: str
    figure: str
    status: Status
    detail: str = ""


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def _target(rate: float) -> str:
    return f"> {rate * 100:g}%"


def screenpop_check(f: WeeklyFigures, t: Thresholds) -> Check:
    total = sum(f.screenpop.values())
    failed = sum(f.screenpop.get(o, 0) for o in SCREENPOP_FAILURES)
    detail = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(f.screenpop.items()) if v)
    if not total:
        return Check("screenpop", "Screen pop success rate", _target(t.screenpop_success), "no lookups",
                     "no_data")
    rate = (total - failed) / total
    return Check("screenpop", "Screen pop success rate", _target(t.screenpop_success),
                 f"{_pct(rate)} of {total} lookups", "ok" if rate > t.screenpop_success else "short",
                 f"{failed} not answered in time; {detail}")


def sync_check(f: WeeklyFigures, t: Thresholds) -> Check:
    target = f"< {t.sync_seconds / 60:g} min"
    if not f.sync_durations:
        return Check("sync_duration", "Contact sync duration", target, "no finished runs", "no_data")
    slowest = max(f.sync_durations)
    median = statistics.median(f.sync_durations)
    # The slowest run is the one that counts: one slow run in a week is worth a look.
    return Check("sync_duration", "Contact sync duration", target,
                 f"slowest {slowest:.1f} s, median {median:.1f} s", "ok" if slowest < t.sync_seconds else "short",
                 f"{len(f.sync_durations)} finished runs, {f.sync_failed_runs} failed or with errors")


def call_logging_check(f: WeeklyFigures, t: Thresholds) -> Check:
    target = _target(t.call_logging_success)
    if f.call_logging is None:
        return Check("call_logging", "Activity logging success", target, "Temporal unreachable", "no_data")
    done = f.call_logging.get("Completed", 0)
    failed = sum(f.call_logging.get(s, 0) for s in FAILED_STATUSES)
    if not done + failed:
        return Check("call_logging", "Activity logging success", target, "no calls logged", "no_data")
    rate = done / (done + failed)
    return Check("call_logging", "Activity logging success", target, f"{_pct(rate)} of {done + failed} calls",
                 "ok" if rate > t.call_logging_success else "short", f"{done} logged, {failed} failed")


def erasure_check(f: WeeklyFigures, t: Thresholds) -> Check:
    # Open requests within their deadline are work in progress; an overdue one is the breach.
    return Check("erasures", "GDPR deletion requests", "0 overdue",
                 f"{f.erasures_open} open, {f.erasures_overdue} overdue, {f.erasures_completed} completed",
                 "short" if f.erasures_overdue else "ok")


def errors_check(f: WeeklyFigures, t: Thresholds) -> Check:
    target = f"< {t.errors_per_week} per week"
    if f.workflow_failures is None:
        return Check("errors", "Errors", target, f"{f.sync_errors} sync errors; Temporal unreachable", "no_data")
    total = f.workflow_failures + f.sync_errors
    return Check("errors", "Errors", target, str(total), "ok" if total < t.errors_per_week else "short",
                 f"{f.workflow_failures} failed workflows, {f.sync_errors} records sync runs could not settle")


def weekly_checks(f: WeeklyFigures, t: Thresholds = Thresholds()) -> list[Check]:
    return [screenpop_check(f, t), sync_check(f, t), call_logging_check(f, t), erasure_check(f, t),
            errors_check(f, t)]


def falls_short(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == "short"]


# --- gathering the figures (I/O) ---------------------------------------------------------------

def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive; they were stored in UTC.
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def _visibility_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def call_logging_query(since: datetime) -> str:
    return f"WorkflowType = 'CallLoggingWorkflow' AND CloseTime > '{_visibility_time(since)}'"


def failures_query(since: datetime) -> str:
    statuses = ", ".join(f"'{s}'" for s in FAILED_STATUSES)
    return (f"CloseTime > '{_visibility_time(since)}' AND ExecutionStatus IN ({statuses}) "
            "AND WorkflowType != 'SyncPairWorkflow'")


def erasure_counts(engine: Engine, since: datetime, now: datetime) -> tuple[int, int, int]:
    """(open, overdue, completed since) from the erasure requests table."""
    t = erasure_requests
    with engine.connect() as conn:
        open_count = conn.execute(select(func.count()).select_from(t).where(t.c.status != "completed")).scalar_one()
        overdue = conn.execute(select(func.count()).select_from(t)
                               .where(t.c.status != "completed", t.c.deadline < now)).scalar_one()
        completed = conn.execute(select(func.count()).select_from(t)
                                 .where(t.c.status == "completed", t.c.completed_at >= since)).scalar_one()
    return open_count, overdue, completed


def list_erasures(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    """The newest requests with their deadlines and certificates (never the sealed identifiers)."""
    from workflows.gdpr_erasure import workflow_id

    t = erasure_requests
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.request_id, t.c.status, t.c.requested_at, t.c.deadline, t.c.completed_at,
                                   t.c.certificate).order_by(t.c.requested_at.desc()).limit(limit)).mappings().all()
    return [{**r, "requested_at": _aware(r["requested_at"]), "deadline": _aware(r["deadline"]),
             "completed_at": _aware(r["completed_at"]), "workflow_id": workflow_id(r["request_id"]),
             "certificate": json.loads(r["certificate"]) if r["certificate"] else None} for r in rows]


async def temporal_figures(client, since: datetime, failed_limit: int = 20
                           ) -> tuple[dict[str, int], int, list[FailedWorkflow]]:
    grouped = await client.count_workflows(call_logging_query(since) + " GROUP BY ExecutionStatus")
    by_status = {str(g.group_values[0]): g.count for g in grouped.groups}
    query = failures_query(since)
    failures = (await client.count_workflows(query)).count
    recent = [FailedWorkflow(wf.workflow_type, wf.id, wf.run_id, wf.status.name.title() if wf.status else "",
                             wf.close_time)
              async for wf in client.list_workflows(query, limit=failed_limit)]
    return by_status, failures, recent


def store_figures(engine: Engine, since: datetime, now: datetime) -> dict[str, Any]:
    """The state store's part of the week (blocking: callers off an event loop run it in a thread)."""
    counters = ops_counters.totals_since(engine, ops_counters.week_start(now), ops_counters.SCREENPOP_PREFIX)
    runs = [r for r in sync_runs.runs_since(engine, since) if r["status"] != "running"]
    open_count, overdue, completed = erasure_counts(engine, since, now)
    return {
        "screenpop": {k.removeprefix(ops_counters.SCREENPOP_PREFIX): v for k, v in counters.items()},
        "sync_durations": [float(r["duration_seconds"]) for r in runs], "sync_runs": len(runs),
        "sync_failed_runs": sum(r["status"] in ("failed", "completed_with_errors") for r in runs),
        "sync_errors": sum(int(r["stats"].get("errors", 0)) for r in runs),
        "erasures_open": open_count, "erasures_overdue": overdue, "erasures_completed": completed,
    }


async def gather_figures(engine: Engine, client, now: datetime | None = None) -> WeeklyFigures:
    """The week's figures; `client` None (or Temporal unreachable) leaves its figures unknown."""
    import asyncio

    from temporalio.service import RPCError

    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=DAYS)
    stored = await asyncio.to_thread(store_figures, engine, since, now)
    call_logging = failures = None
    recent: list[FailedWorkflow] = []
    if client is not None:
        try:
            call_logging, failures, recent = await temporal_figures(client, since)
        except RPCError:
            pass
    return WeeklyFigures(since=since, until=now, call_logging=call_logging, workflow_failures=failures,
                         failed_workflows=recent, **stored)
