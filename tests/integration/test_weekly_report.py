"""The weekly checks: thresholds → flags (pure), the durable screen-pop counters, and the report
through the real starter, worker, Temporal dev server and emulators (`/admin/api/report`,
`/admin/report` and `callbridge report weekly`)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from callbridge.core import metrics
from callbridge.ops.report import Thresholds, WeeklyFigures, falls_short, weekly_checks
from callbridge.store import ops_counters
from callbridge.store.db import get_engine
from tests.helpers import call_event, conversation_id, post_webhook, refresh_index, unique_us_number, tls
from workflows.call_logging import CallLoggingWorkflow, workflow_id

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
ADMIN = ("admin", "callbridge-demo-admin")
LOOKUP = ("genesys-data-action", "callbridge-demo-lookup")


def figures(**overrides) -> WeeklyFigures:
    """A good week: every check passes."""
    good = dict(since=NOW - timedelta(days=7), until=NOW,
                screenpop={"index": 9_950, "salesforce": 30, "not_found": 400, "timeout": 5},
                sync_durations=[12.0, 30.5, 95.0], sync_runs=3,
                call_logging={"Completed": 2_000, "Failed": 3}, workflow_failures=3, sync_errors=1,
                erasures_open=2, erasures_overdue=0, erasures_completed=4)
    return WeeklyFigures(**{**good, **overrides})


def status(f: WeeklyFigures) -> dict[str, str]:
    return {c.key: c.status for c in weekly_checks(f)}


# --- thresholds → flags ---------------------------------------------------------------------------

def test_a_good_week_passes_every_check():
    checks = weekly_checks(figures())
    assert [c.status for c in checks] == ["ok"] * 5 and falls_short(checks) == []
    assert [c.title for c in checks] == ["Screen pop success rate", "Contact sync duration",
                                         "Activity logging success", "GDPR deletion requests", "Errors"]


def test_screen_pop_needs_more_than_99_percent_answered():
    # Exactly 99% is not "> 99%"; not_found is an answer, timeout and unavailable are not.
    assert status(figures(screenpop={"index": 99, "timeout": 1}))["screenpop"] == "short"
    assert status(figures(screenpop={"index": 990, "not_found": 9, "unavailable": 1}))["screenpop"] == "ok"
    assert status(figures(screenpop={"index": 98, "timeout": 1, "unavailable": 1}))["screenpop"] == "short"
    assert status(figures(screenpop={"not_found": 50}))["screenpop"] == "ok"
    assert status(figures(screenpop={}))["screenpop"] == "no_data"


def test_sync_duration_counts_the_slowest_run_of_the_week():
    assert status(figures(sync_durations=[10.0, 119.9]))["sync_duration"] == "ok"
    short = weekly_checks(figures(sync_durations=[10.0, 120.0, 15.0]))[1]
    assert short.status == "short" and short.figure == "slowest 120.0 s, median 15.0 s"
    assert status(figures(sync_durations=[]))["sync_duration"] == "no_data"


def test_call_logging_needs_more_than_99_percent_completed():
    assert status(figures(call_logging={"Completed": 99, "Failed": 1}))["call_logging"] == "short"
    assert status(figures(call_logging={"Completed": 995, "TimedOut": 1, "Terminated": 1}))["call_logging"] == "ok"
    # Running executions and continued-as-new ones are neither success nor failure.
    assert status(figures(call_logging={"Running": 5}))["call_logging"] == "no_data"
    assert status(figures(call_logging=None))["call_logging"] == "no_data"


def test_an_overdue_erasure_falls_short_an_open_one_does_not():
    assert status(figures(erasures_open=3, erasures_overdue=0))["erasures"] == "ok"
    check = weekly_checks(figures(erasures_open=3, erasures_overdue=1))[3]
    assert check.status == "short" and check.figure == "3 open, 1 overdue, 4 completed"


def test_five_errors_a_week_is_too_many():
    assert status(figures(workflow_failures=3, sync_errors=1))["errors"] == "ok"
    assert status(figures(workflow_failures=4, sync_errors=1))["errors"] == "short"
    assert status(figures(workflow_failures=None))["errors"] == "no_data"
    stricter = {c.key: c.status for c in weekly_checks(figures(), Thresholds(errors_per_week=2))}
    assert stricter["errors"] == "short"


# --- the durable counters -------------------------------------------------------------------------

def test_the_flusher_writes_only_what_the_counters_moved(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'state.db'}")
    flusher = ops_counters.CounterFlusher(engine)
    flusher.flush()  # whatever this process counted before the test
    before = ops_counters.totals_since(engine, ops_counters.week_start())
    for _ in range(3):
        metrics.record_lookup("index", 0.0004)
    metrics.record_lookup("timeout", 1.5)
    assert flusher.flush() == {"screenpop_lookups:index": 3, "screenpop_lookups:timeout": 1}
    assert flusher.flush() == {}  # nothing moved: nothing written
    after = ops_counters.totals_since(engine, ops_counters.week_start())
    assert {k: after[k] - before.get(k, 0) for k in after} == {"screenpop_lookups:index": 3,
                                                                "screenpop_lookups:timeout": 1}


def test_counts_from_several_processes_add_up_per_day(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'state.db'}")
    today = ops_counters.today()
    ops_counters.add_counts(engine, {"screenpop_lookups:index": 5}, day=today)
    ops_counters.add_counts(engine, {"screenpop_lookups:index": 7, "screenpop_lookups:timeout": 1}, day=today)
    ops_counters.add_counts(engine, {"screenpop_lookups:index": 100}, day=today - timedelta(days=7))  # last week
    assert ops_counters.totals_since(engine, ops_counters.week_start(), ops_counters.SCREENPOP_PREFIX) == {
        "screenpop_lookups:index": 12, "screenpop_lookups:timeout": 1}


# --- end to end ---------------------------------------------------------------------------------

def report_json(stack) -> dict:
    resp = httpx.get(f"{stack.starter_url}/admin/api/report", auth=ADMIN, timeout=30)
    resp.raise_for_status()
    return resp.json()


@pytest.mark.integration
async def test_the_report_counts_this_weeks_lookups_calls_and_failures(stack, sf, salesforce, temporal_client):
    account = sf.Account.create({"Name": "Initech", "BillingCountry": "United States"})["id"]
    e164, digits = unique_us_number()
    sf.Contact.create({"FirstName": "Peter", "LastName": "Gibbons", "AccountId": account,
                       "MailingCountry": "United States", "Phone": f"{digits[:3]}.{digits[3:6]}.{digits[6:]}"})
    await refresh_index(temporal_client, stack)
    before = report_json(stack)["figures"]

    # Screen-pop lookups: three found in the index, two callers nobody knows.
    unknown, _ = unique_us_number()
    for number in (e164, e164, e164, unknown, unknown):
        resp = httpx.post(f"{stack.starter_url}/screenpop/lookup", json={"phoneNumber": number}, auth=LOOKUP)
        assert resp.status_code == 200
    # Calls: two logged, one refused by a Salesforce validation rule.
    rules = f"{salesforce.instance_url}/_emulator/validation-rules"
    httpx.post(rules, verify=tls(salesforce), json={
        "sobject": "Task", "field": "Description", "contains": "Queue: Weekly blocked queue",
        "message": "Calls from this queue may not be logged"}).raise_for_status()
    logged = [conversation_id(), conversation_id()]
    refused = conversation_id()
    try:
        for conversation in logged:
            assert post_webhook(stack.starter_url, stack.webhook_secret, call_event(conversation, e164)).status_code == 202
        assert post_webhook(stack.starter_url, stack.webhook_secret,
                            call_event(refused, e164, queueName="Weekly blocked queue")).status_code == 202
        for conversation in logged:
            await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conversation)).result()
        with pytest.raises(WorkflowFailureError):
            await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(refused)).result()
    finally:
        httpx.delete(rules, verify=tls(salesforce))

    def moved(after: dict, status: str) -> int:
        return (after["call_logging"] or {}).get(status, 0) - (before["call_logging"] or {}).get(status, 0)

    # Temporal's visibility catches up with closed executions a moment later. "At least": in a full
    # suite a call an earlier test left retrying may close in this window too.
    deadline = time.monotonic() + 30
    while True:
        after = report_json(stack)["figures"]
        if moved(after, "Completed") >= 2 and moved(after, "Failed") >= 1:
            break  # visibility has them
        assert time.monotonic() < deadline, f"visibility never showed the calls: {after['call_logging']}"
        await asyncio.sleep(0.5)
    assert after["workflow_failures"] - before["workflow_failures"] >= 1
    assert workflow_id(refused) in [w["workflow_id"] for w in after["failed_workflows"]]
    # The page flushed the starter's counts first: exactly the five lookups above.
    lookups = {k: v - before["screenpop"].get(k, 0) for k, v in after["screenpop"].items()}
    assert {k: v for k, v in lookups.items() if v} == {"index": 3, "not_found": 2}

    # The page: every check with its flag, the refused call linked into the Temporal UI.
    page = httpx.get(f"{stack.starter_url}/admin/report", auth=ADMIN, timeout=30).text
    api = report_json(stack)
    for check in api["checks"]:
        assert re.search(rf'<tr class="{check["status"]}" data-check="{check["key"]}">', page), check
    assert f"/workflows/{workflow_id(refused)}/" in page

    # The command reads the same store and Temporal: the same figures, exit 1 iff something falls short.
    env = {**os.environ, **stack.env, "COLUMNS": "200"}
    cli = subprocess.run([sys.executable, "-m", "callbridge.cli", "report", "weekly", "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    printed = json.loads(cli.stdout)
    assert printed["figures"]["screenpop"] == api["figures"]["screenpop"]
    assert printed["figures"]["call_logging"] == api["figures"]["call_logging"]
    assert cli.returncode == (1 if any(c["status"] == "short" for c in printed["checks"]) else 0), cli.stderr
    table = subprocess.run([sys.executable, "-m", "callbridge.cli", "report", "weekly"], env=env,
                           capture_output=True, text=True, timeout=120)
    for title in ("Screen pop success rate", "Contact sync duration", "Activity logging success",
                  "GDPR deletion requests", "Errors"):
        assert title in table.stdout
    assert f"failed: CallLoggingWorkflow {workflow_id(refused)}" in table.stdout


@pytest.mark.integration
def test_a_starter_flushes_its_lookup_counts_when_it_stops(stack, test_var_dir, tmp_path):
    """Its own store, so only its counts land there; stopped with SIGTERM before any periodic flush."""
    from devstack.processes import ManagedProcess, free_port, python_module
    from tests.conftest import REPO

    port = free_port()
    url = f"sqlite:///{tmp_path / 'own.db'}"
    starter = ManagedProcess(name="counting-starter", argv=python_module("starter.app"),
                             env={**stack.env, "CALLBRIDGE_STARTER_PORT": str(port), "CALLBRIDGE_DATABASE_URL": url},
                             ready_url=f"http://127.0.0.1:{port}/healthz",
                             log_path=test_var_dir / "counting-starter.log", cwd=REPO).start()
    try:
        for number in [unique_us_number()[0] for _ in range(4)] + ["anonymous"]:
            assert httpx.post(f"http://127.0.0.1:{port}/screenpop/lookup", json={"phoneNumber": number},
                              auth=LOOKUP).status_code == 200
    finally:
        starter.stop()
    assert starter.proc.returncode == 0
    assert ops_counters.totals_since(get_engine(url), ops_counters.week_start()) == {
        "screenpop_lookups:not_found": 4, "screenpop_lookups:anonymous": 1}
