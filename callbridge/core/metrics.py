"""Prometheus metrics of the starter and the worker (prometheus_client's default registry).

Labels are closed sets (reasons, outcomes, workflow types, system names, status classes):
never an id, a number, an email or a name. Each process exposes the metrics it updates;
the rest stay at zero there.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# --- Starter: webhooks ---------------------------------------------------------------------
WEBHOOKS_RECEIVED = Counter("callbridge_webhooks_received", "Webhook deliveries received.", ["endpoint"])
WEBHOOKS_REJECTED = Counter(
    "callbridge_webhooks_rejected", "Webhook deliveries refused, by reason.", ["endpoint", "reason"]
)
WEBHOOKS_IN_FLIGHT = Gauge("callbridge_webhooks_in_flight", "Webhook requests being handled right now.")
WORKFLOW_STARTS = Counter(
    "callbridge_workflow_starts",
    "Workflow start requests made by the starter, by result (started, duplicate, unavailable).",
    ["workflow_type", "result"],
)

# --- Worker: workflow executions -------------------------------------------------------------
WORKFLOWS_STARTED = Counter("callbridge_workflows_started", "Workflow executions begun.", ["workflow_type"])
WORKFLOWS_COMPLETED = Counter("callbridge_workflows_completed", "Workflow executions completed.", ["workflow_type"])
WORKFLOWS_FAILED = Counter("callbridge_workflows_failed", "Workflow executions failed.", ["workflow_type"])

# --- Starter: screen-pop lookups -------------------------------------------------------------
LOOKUP_OUTCOMES = ("index", "salesforce", "not_found", "timeout", "unavailable", "anonymous", "unparseable")
SCREENPOP_LOOKUPS = Counter("callbridge_screenpop_lookups", "Screen-pop lookups, by outcome.", ["outcome"])
SCREENPOP_LATENCY = Histogram(
    "callbridge_screenpop_lookup_seconds",
    "Screen-pop lookup latency inside the starter.",
    ["outcome"],
    # The data action's budget is 3 s; most answers come from the index in well under 1 ms.
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0),
)

# --- Worker: sync runs (the caller-ID index refresh today; contact sync later) ----------------
SYNC_RUNS = Counter("callbridge_sync_runs", "Sync runs, by kind and status (ok, failed).", ["kind", "status"])
SYNC_DURATION = Histogram(
    "callbridge_sync_run_seconds", "Sync run duration.", ["kind"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
SYNC_RECORDS = Counter("callbridge_sync_records", "Records a sync run touched, by action.", ["kind", "action"])
SYNC_CONFLICTS = Counter("callbridge_sync_conflicts", "Conflicts sync runs met.", ["kind"])
SYNC_LAST_SUCCESS = Gauge("callbridge_sync_last_success_timestamp_seconds", "When a sync run last succeeded.", ["kind"])

# --- Both: external API requests -------------------------------------------------------------
API_REQUESTS = Counter(
    "callbridge_api_requests", "HTTP requests to an external system, by status class.", ["system", "status"]
)
API_RATE_LIMITED = Counter(
    "callbridge_api_rate_limited", "Requests an external system refused for rate or API limits.", ["system"]
)

# --- Privacy: erasure requests (set by the privacy feature) ---------------------------------
ERASURES_OPEN = Gauge("callbridge_erasures_open", "Erasure requests not yet completed.")
ERASURES_OVERDUE = Gauge("callbridge_erasures_overdue", "Open erasure requests past their deadline.")

# --- Alerts -----------------------------------------------------------------------------------
AUTH_FAILURES = Counter("callbridge_starter_auth_failures", "Requests refused for missing or wrong credentials, by scheme.", ["scheme"])
AUTH_THROTTLED = Counter("callbridge_starter_auth_throttled", "Requests refused while their address backs off after failed authentications.", ["scheme"])
ALERTS_SENT = Counter("callbridge_alerts_sent", "Alerts delivered, by rule.", ["rule"])
ALERTS_SUPPRESSED = Counter("callbridge_alerts_suppressed", "Repeats of an alert held back by deduplication.", ["rule"])
ALERT_DELIVERY_FAILURES = Counter("callbridge_alert_delivery_failures", "Alert webhook posts that failed.")


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def record_api_response(system: str, status: int, body_hint: str | None = None) -> None:
    """Count one response; 429 anywhere, and Salesforce's 403 REQUEST_LIMIT_EXCEEDED, are rate limits."""
    API_REQUESTS.labels(system, status_class(status)).inc()
    if status == 429 or (status == 403 and body_hint and "REQUEST_LIMIT_EXCEEDED" in body_hint):
        API_RATE_LIMITED.labels(system).inc()


def record_lookup(outcome: str, seconds: float) -> None:
    SCREENPOP_LOOKUPS.labels(outcome).inc()
    SCREENPOP_LATENCY.labels(outcome).observe(seconds)


def record_sync_run(kind: str, ok: bool, seconds: float, records: dict[str, int] | None = None,
                    conflicts: int = 0) -> None:
    SYNC_RUNS.labels(kind, "ok" if ok else "failed").inc()
    SYNC_DURATION.labels(kind).observe(seconds)
    for action, n in (records or {}).items():
        if n:
            SYNC_RECORDS.labels(kind, action).inc(n)
    if conflicts:
        SYNC_CONFLICTS.labels(kind).inc(conflicts)
    if ok:
        SYNC_LAST_SUCCESS.labels(kind).set(time.time())


def set_erasures(open_count: int, overdue: int) -> None:
    ERASURES_OPEN.set(open_count)
    ERASURES_OVERDUE.set(overdue)


def counter_value(counter: Counter, **labels: str) -> float:
    """The current value of one labelled counter (0 if never incremented): the alert rules read these."""
    value = REGISTRY.get_sample_value(f"{counter._name}_total", labels)
    return value or 0.0


@contextmanager
def timed() -> Iterator[dict[str, Any]]:
    box: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - started


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve(port: int, host: str = "0.0.0.0") -> None:
    """/metrics on its own port, from a daemon thread (for the worker, which has no HTTP server)."""
    start_http_server(port, addr=host)


# --- The worker: an interceptor counting executions and sync runs, its endpoints --------------

from temporalio import activity, workflow  # noqa: E402
from temporalio.exceptions import FailureError  # noqa: E402
from temporalio.worker import (  # noqa: E402
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

# Activities that are sync runs, by the kind their metrics and alerts are labelled with.
SYNC_ACTIVITIES = {"refresh_caller_index": "caller_index"}


class _WorkflowCounter(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        wf_type = workflow.info().workflow_type
        # A replay re-runs code whose outcome was already counted live.
        if not workflow.unsafe.is_replaying():
            WORKFLOWS_STARTED.labels(wf_type).inc()
        try:
            result = await self.next.execute_workflow(input)
        except FailureError:
            # Only these fail the execution; other exceptions fail the task, which is retried.
            if not workflow.unsafe.is_replaying():
                WORKFLOWS_FAILED.labels(wf_type).inc()
            raise
        if not workflow.unsafe.is_replaying():
            WORKFLOWS_COMPLETED.labels(wf_type).inc()
        return result


class _SyncRunRecorder(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, on_sync_run) -> None:
        super().__init__(next)
        self._on_sync_run = on_sync_run

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        kind = SYNC_ACTIVITIES.get(activity.info().activity_type)
        if kind is None:
            return await self.next.execute_activity(input)
        started = time.perf_counter()
        try:
            result = await self.next.execute_activity(input)
        except BaseException:
            seconds = time.perf_counter() - started
            record_sync_run(kind, False, seconds)
            await self._on_sync_run(kind, False, seconds, 0)
            raise
        seconds = time.perf_counter() - started
        stats = {k: getattr(result, k) for k in ("applied", "removed", "created", "updated", "deleted")
                 if isinstance(getattr(result, k, None), int)}
        conflicts = getattr(result, "conflicts", 0) or 0
        record_sync_run(kind, True, seconds, stats, conflicts=conflicts)
        await self._on_sync_run(kind, True, seconds, conflicts)
        return result


class MetricsInterceptor(Interceptor):
    """Counts workflow executions by type (started, completed, failed) and sync runs."""

    def __init__(self, on_sync_run=None) -> None:
        async def _nothing(*_args: Any) -> None:
            return None

        self._on_sync_run = on_sync_run or _nothing

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _SyncRunRecorder(next, self._on_sync_run)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput):
        return _WorkflowCounter


def serve_worker_metrics(settings: Any) -> None:
    """Callbridge's registry on `worker_metrics_port`, the Temporal SDK's on
    `worker_temporal_metrics_port` (its own Prometheus endpoint, in the default runtime set
    before any client connects). A busy port is logged, not fatal: metrics never stop work."""
    import structlog

    from callbridge.core.temporal import use_runtime

    log = structlog.get_logger("callbridge.core.metrics")
    if settings.worker_metrics_port:
        try:
            serve(settings.worker_metrics_port, settings.metrics_host)
        except OSError as exc:
            log.warning("metrics port unavailable", port=settings.worker_metrics_port, error=str(exc))
    address = None
    if settings.worker_temporal_metrics_port:
        address = f"{settings.metrics_host}:{settings.worker_temporal_metrics_port}"
    try:
        use_runtime(address)
    except Exception as exc:  # the SDK raises a plain RuntimeError when the bind fails
        log.warning("temporal metrics port unavailable", address=address, error=str(exc))
        use_runtime()
