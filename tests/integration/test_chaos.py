"""Chaos, short: the chaos bench's scenarios (bench.chaos) at small scale on a stack of their own.

A file-backed Temporal dev server (the session's in-memory one can't be restarted), both
emulators, the real worker and starter: the worker is SIGKILLed and the dev server restarted
while Salesforce answers 5% 503s, 1% UNABLE_TO_LOCK_ROW and expires every session once. The
outcome is read from Salesforce and Genesys themselves. Timings are the bench's business.
"""

from __future__ import annotations

import pytest

from bench.chaos.faults import ChaosPlan
from bench.chaos.scenarios import calls_scenario, erasures_scenario
from bench.chaos.stack import ChaosStack

# Its own stack and SQLite store (bench.chaos): nothing to learn from a PostgreSQL rerun.
pytestmark = [pytest.mark.integration, pytest.mark.own_store]


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory):
    cs = ChaosStack(tmp_path_factory.mktemp("chaos"), contacts=300)
    try:
        cs.start()
        yield cs
    finally:
        cs.stop()


async def test_every_call_logged_once_on_its_contact_through_kills_and_a_temporal_restart(chaos_stack):
    # As a real org delivers them: the Genesys emulator's trigger runs the call-ended data action
    # once per call (not retried); a call whose delivery met the restart is the reconciliation's.
    report = await calls_scenario(chaos_stack, calls=100, rate=10, plan=ChaosPlan(kills=2, restarts=1), seed=11,
                                  via_genesys=True)

    struck = [f.kind for f in chaos_stack.faults]
    assert sorted(struck) == ["session-expiry", "temporal-restart", "worker-kill", "worker-kill"]
    # The reconciliation starts only calls whose delivery failed; not necessarily all of them: a
    # start can land while the starter's answer is already a 503 (its 3 s budget ran out in the
    # restart), and that call is logged by its own workflow. Every call logged once either way.
    assert report.reconciled <= report.undelivered
    assert report.tasks == 100 and report.on_right_contact == 100
    assert report.duplicates == 0 and report.lost == 0 and report.wrong_contact == 0
    assert report.unexpected == 0 and report.not_finished == 0


async def test_erasures_complete_and_leave_nothing_through_a_kill_and_a_temporal_restart(chaos_stack):
    # The three faults within the first 16 s; the erasures (10 s verification rounds) outlast them.
    # With the 30 s default window the last fault could come after a fast run had finished.
    report = await erasures_scenario(chaos_stack, count=4, plan=ChaosPlan(kills=1, restarts=1), seed=5,
                                     fault_window=16.0)

    assert sorted(f.kind for f in chaos_stack.faults) == ["session-expiry", "temporal-restart", "worker-kill"]
    assert report.completed == 4 and report.failed == 0 and report.not_finished == 0
    assert report.verified_clean == 4, report.leftovers  # searched in Salesforce and Genesys directly
    assert report.histories_left == 0
