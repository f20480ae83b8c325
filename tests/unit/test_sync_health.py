"""The seed's sync health score and alerts, and the Genesys request budget (pure / in-process)."""

from __future__ import annotations

import asyncio
import time

import pytest

from callbridge.clients.genesys.connection import RequestBudget
from callbridge.clients.metering import Meter, count_salesforce, metering
from callbridge.domain.sync.health import health_score, run_alerts


def test_health_score_is_the_seeds_formula_over_the_last_ten_runs():
    assert health_score([]) == 100
    assert health_score([(0, 0.0)]) == 100
    # 100 - 5 × average errors - average seconds
    assert health_score([(2, 10.0), (0, 30.0)]) == 100 - 5 - 20
    # Only the last ten count: an old disaster is forgotten.
    assert health_score([(100, 1000.0)] + [(0, 1.0)] * 10) == 99
    assert health_score([(50, 400.0)]) == 0  # never below zero


@pytest.mark.parametrize(("errors", "seconds", "conflicts", "rules"), [
    (10, 300.0, 10, []),  # at the thresholds: no alert (the seed alerts above them)
    (11, 0.0, 0, ["contact_sync_errors"]),
    (0, 301.0, 0, ["contact_sync_duration"]),
    (0, 0.0, 11, ["contact_sync_conflicts"]),
    (20, 900.0, 30, ["contact_sync_errors", "contact_sync_duration", "contact_sync_conflicts"]),
])
def test_run_alerts_fire_above_the_seeds_thresholds(errors, seconds, conflicts, rules):
    assert [a.rule for a in run_alerts(errors, seconds, conflicts)] == rules


def test_alert_thresholds_come_from_the_config():
    assert [a.rule for a in run_alerts(3, 0, 0, max_errors=2)] == ["contact_sync_errors"]


async def test_the_request_budget_holds_requests_beyond_it_until_the_window_moves():
    budget = RequestBudget(per_minute=3)
    budget.WINDOW = 0.5  # a half-second "minute" keeps the test short
    start = time.monotonic()
    for _ in range(4):
        await budget.acquire()
    assert time.monotonic() - start >= 0.45  # the fourth waits for the first to leave the window


async def test_no_budget_means_no_pacing():
    budget = RequestBudget(per_minute=0)
    await asyncio.wait_for(asyncio.gather(*(budget.acquire() for _ in range(1000))), timeout=1)


def test_the_meter_counts_requests_and_reads_the_daily_allowance():
    with metering() as meter:
        count_salesforce("api-usage=800/1000")
        count_salesforce(None)
    assert meter.salesforce == 2 and meter.salesforce_share == 0.8
    assert Meter().salesforce_share is None
