"""The alert channel against a real HTTP receiver: delivery, deduplication, the rules."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from callbridge.core import metrics
from callbridge.core.alerts import AlertChannel, FailureRateRule, check_erasures, check_sync_run
from callbridge.core.settings import Settings
from tests.http_receiver import HttpReceiver


class AlertReceiver(HttpReceiver):
    """A Slack-style incoming webhook: the {"text": ...} of each message it got."""

    def __init__(self, status: int = 200) -> None:
        super().__init__("/hooks/alerts", status=status, answer=b"ok")

    @property
    def messages(self) -> list[str]:
        return [json.loads(body)["text"] for _, body, _ in self.requests]


@pytest.fixture
def receiver():
    r = AlertReceiver()
    yield r
    r.close()


def channel(url: str | None, dedup: float = 900.0) -> AlertChannel:
    return AlertChannel(Settings(alert_webhook_url=url, alert_dedup_seconds=dedup))


async def test_a_storm_sends_one_message(receiver):
    ch = channel(receiver.url)
    sent = [await ch.fire("storm", "Salesforce refused 42 requests") for _ in range(50)]
    assert sent.count(True) == 1 and sent[0] is True
    assert receiver.messages == ["[warning] Salesforce refused 42 requests"]
    assert metrics.counter_value(metrics.ALERTS_SUPPRESSED, rule="storm") >= 49


async def test_after_the_window_the_next_message_counts_what_was_held_back(receiver):
    ch = channel(receiver.url, dedup=0.2)
    assert await ch.fire("window", "first")
    assert not await ch.fire("window", "second")
    assert not await ch.fire("window", "third")
    await asyncio.sleep(0.3)  # past the dedup window
    assert await ch.fire("window", "fourth", level="error")
    assert receiver.messages == ["[warning] first", "[error] fourth (2 repeat(s) held back since the last message)"]


async def test_rules_deduplicate_separately_and_resolve_rearms(receiver):
    ch = channel(receiver.url)
    assert await ch.fire("a", "rule a")
    assert await ch.fire("b", "rule b")
    assert not await ch.fire("a", "rule a again")
    ch.resolve("a")
    assert await ch.fire("a", "rule a is back")
    assert receiver.messages == ["[warning] rule a", "[warning] rule b", "[warning] rule a is back"]


async def test_log_only_channel_logs_and_never_posts(capsys):
    from callbridge.core.logs import configure_logging

    configure_logging("INFO")
    ch = channel(None)
    assert await ch.fire("log-only", "sync run failed")
    err = capsys.readouterr().err
    line = next(json.loads(x) for x in err.splitlines() if '"alert"' in x)
    assert line["text"] == "sync run failed" and line["rule"] == "log-only"


async def test_a_failing_webhook_never_raises_and_is_counted():
    failing = AlertReceiver(status=500)
    try:
        before = metrics.counter_value(metrics.ALERT_DELIVERY_FAILURES)
        assert await channel(failing.url).fire("broken", "erasure overdue") is False
        assert failing.messages == ["[warning] erasure overdue"]
        assert metrics.counter_value(metrics.ALERT_DELIVERY_FAILURES) == before + 1
    finally:
        failing.close()


async def test_failure_rate_rule_fires_above_five_percent_once(receiver):
    wf_type = f"Rate{uuid.uuid4().hex[:8]}"
    ch = channel(receiver.url)
    rule = FailureRateRule(ch, "rate", wf_type, threshold=0.05, window_seconds=600, min_count=20)
    metrics.WORKFLOWS_COMPLETED.labels(wf_type).inc(10)
    metrics.WORKFLOWS_FAILED.labels(wf_type).inc(5)
    assert await rule.evaluate() is None  # 15 executions: too few to judge
    metrics.WORKFLOWS_COMPLETED.labels(wf_type).inc(95)
    assert await rule.evaluate() == pytest.approx(5 / 110)  # 4.5%: quiet
    assert receiver.messages == []
    metrics.WORKFLOWS_FAILED.labels(wf_type).inc(2)
    assert await rule.evaluate() == pytest.approx(7 / 112)  # 6.25%: alert
    metrics.WORKFLOWS_FAILED.labels(wf_type).inc(20)
    await rule.evaluate()
    assert len(receiver.messages) == 1
    assert receiver.messages[0].startswith(f"[error] {wf_type}: 6.2% of 112 executions failed")


async def test_sync_and_erasure_rules(receiver):
    ch = channel(receiver.url)
    await check_sync_run(ch, "contacts", ok=True, seconds=1.0, conflicts=3)
    assert receiver.messages == []  # within limits
    await check_sync_run(ch, "contacts", ok=False, seconds=1.0)
    await check_sync_run(ch, "contacts", ok=True, seconds=5000.0, conflicts=11)
    await check_erasures(ch, open_count=4, overdue=0)
    await check_erasures(ch, open_count=4, overdue=2)
    await check_erasures(ch, open_count=4, overdue=2)  # a repeat: held back
    assert receiver.messages == [
        "[error] contacts sync run failed",
        "[warning] contacts sync run took 5000 s (limit 600 s)",
        "[warning] contacts sync run met 11 conflicts (limit 10)",
        "[error] 2 erasure request(s) past their deadline (4 open)",
    ]
    assert metrics.ERASURES_OVERDUE._value.get() == 2 and metrics.ERASURES_OPEN._value.get() == 4
