"""Alerts to people: a Slack-compatible webhook (`{"text": ...}`) when configured, and a log
line always, so an alert is never lost because no webhook is set up."""

from __future__ import annotations

import httpx
import structlog

from callbridge.core.settings import Settings

log = structlog.get_logger("callbridge.core.alerts")


async def send_alert(settings: Settings, level: str, text: str, **ids: str) -> bool:
    """Send one alert; True when the webhook took it (or none is configured). Text holds no PII:
    callers pass request ids and counts only."""
    log.warning("alert", level=level, text=text, **ids)
    if not settings.alert_webhook_url:
        return True
    async with httpx.AsyncClient(timeout=10.0) as http:
        resp = await http.post(settings.alert_webhook_url, json={"text": f"[{level}] {text}"})
    if resp.status_code >= 400:
        raise RuntimeError(f"alert webhook answered {resp.status_code}")
    return True


# --- Deduplicated channel and the operational rules (metrics, sync, erasure deadlines) ---------
# A storm sends one message: the first firing of a rule goes out through `send_alert`; repeats
# within `alert_dedup_seconds` are counted and held back, and the next message after the window
# says how many were. Texts carry counts, rates and durations only.

import time as _time  # noqa: E402
from collections import deque  # noqa: E402

from callbridge.core import metrics as _metrics  # noqa: E402


class AlertChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dedup_seconds = float(getattr(settings, "alert_dedup_seconds", 900))
        self._last_sent: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    async def fire(self, rule: str, text: str, level: str = "warning") -> bool:
        """True when sent, False when held back as a repeat (or the webhook failed: logged)."""
        now = _time.monotonic()
        last = self._last_sent.get(rule)
        if last is not None and now - last < self.dedup_seconds:
            self._held_back[rule] = self._held_back.get(rule, 0) + 1
            _metrics.ALERTS_SUPPRESSED.labels(rule).inc()
            return False
        self._last_sent[rule] = now
        held = self._held_back.pop(rule, 0)
        if held:
            text = f"{text} ({held} repeat(s) held back since the last message)"
        _metrics.ALERTS_SENT.labels(rule).inc()
        try:
            await send_alert(self.settings, level, text, rule=rule)
        except (httpx.HTTPError, RuntimeError) as exc:
            # Operational alerts must not take down what they watch; the log line is written.
            _metrics.ALERT_DELIVERY_FAILURES.inc()
            log.error("alert delivery failed", rule=rule, error=type(exc).__name__)
            return False
        return True

    def resolve(self, rule: str) -> None:
        """The condition is over: the next firing is news and goes out at once."""
        self._last_sent.pop(rule, None)
        self._held_back.pop(rule, None)


_channels: dict[tuple[str | None, float], AlertChannel] = {}


def get_alert_channel(settings: Settings) -> AlertChannel:
    """One channel per process and configuration, so deduplication spans every caller."""
    key = (settings.alert_webhook_url, float(getattr(settings, "alert_dedup_seconds", 900)))
    if key not in _channels:
        _channels[key] = AlertChannel(settings)
    return _channels[key]


class FailureRateRule:
    """A workflow type's failure rate over a sliding window, from the worker's own counters."""

    def __init__(self, channel: AlertChannel, rule: str, workflow_type: str, threshold: float,
                 window_seconds: float, min_count: int) -> None:
        self.channel, self.rule, self.workflow_type = channel, rule, workflow_type
        self.threshold, self.window, self.min_count = threshold, window_seconds, min_count
        self._samples: deque[tuple[float, float, float]] = deque([(_time.monotonic(), 0.0, 0.0)])

    async def evaluate(self) -> float | None:
        """Sample the counters and alert (or resolve) on the window's rate; returns the rate."""
        now = _time.monotonic()
        done = _metrics.counter_value(_metrics.WORKFLOWS_COMPLETED, workflow_type=self.workflow_type)
        failed = _metrics.counter_value(_metrics.WORKFLOWS_FAILED, workflow_type=self.workflow_type)
        self._samples.append((now, done, failed))
        # Keep the newest sample at least a window old as the baseline.
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        _, done0, failed0 = self._samples[0]
        total = (done - done0) + (failed - failed0)
        if total < self.min_count:
            return None
        rate = (failed - failed0) / total
        if rate > self.threshold:
            await self.channel.fire(self.rule, (
                f"{self.workflow_type}: {rate:.1%} of {int(total)} executions failed in the last "
                f"{int(self.window)} s (threshold {self.threshold:.0%})"), level="error")
        else:
            self.channel.resolve(self.rule)
        return rate


async def check_sync_run(channel: AlertChannel, kind: str, ok: bool, seconds: float,
                         errors: int = 0, conflicts: int = 0) -> None:
    """Sync alerts: a failed run or one with errors, a run slower than allowed, too many conflicts."""
    s = channel.settings
    if not ok or errors:
        what = "failed" if not ok else f"had {errors} error(s)"
        await channel.fire(f"sync_errors:{kind}", f"{kind} sync run {what}", level="error")
    max_seconds = float(getattr(s, "alert_sync_max_seconds", 600))
    if seconds > max_seconds:
        await channel.fire(f"sync_duration:{kind}", f"{kind} sync run took {seconds:.0f} s (limit {max_seconds:.0f} s)")
    max_conflicts = int(getattr(s, "alert_sync_max_conflicts", 10))
    if conflicts > max_conflicts:
        await channel.fire(f"sync_conflicts:{kind}", f"{kind} sync run met {conflicts} conflicts (limit {max_conflicts})")


async def check_erasures(channel: AlertChannel, open_count: int, overdue: int) -> None:
    """Erasure deadlines as metrics, and one deduplicated alert while any request is overdue."""
    _metrics.set_erasures(open_count, overdue)
    if overdue:
        await channel.fire("erasure_overdue", f"{overdue} erasure request(s) past their deadline "
                           f"({open_count} open)", level="error")
    else:
        channel.resolve("erasure_overdue")


class WorkerAlerts:
    """The worker's rules: call-logging failure rate (checked periodically) and sync runs."""

    def __init__(self, settings: Settings) -> None:
        self.channel = get_alert_channel(settings)
        self.call_logging = FailureRateRule(
            self.channel, "call_logging_failure_rate", "CallLoggingWorkflow",
            settings.alert_call_logging_failure_rate, settings.alert_call_logging_window_seconds,
            settings.alert_call_logging_min_executions,
        )
        self.every = settings.alert_check_seconds

    async def on_sync_run(self, kind: str, ok: bool, seconds: float, conflicts: int) -> None:
        await check_sync_run(self.channel, kind, ok, seconds, conflicts=conflicts)

    async def run(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(self.every)
            try:
                await self.call_logging.evaluate()
            except Exception as exc:  # a broken rule must not stop the next check
                log.error("alert rule failed", error=type(exc).__name__)
