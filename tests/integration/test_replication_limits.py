"""Replication limits (issue #16 item 3): getDeleted's latestDateCovered can be earlier than
the window's end, and once the delete log is purged getDeleted refuses the window
(INVALID_REPLICATION_DATE). The caller-ID index then compares every id with Salesforce instead
of failing, and never moves its watermark past what was covered.

The org is this module's own (purging moves earliestDateAvailable for everyone); the refresh
is the worker's own activity, run by Temporal's ActivityEnvironment on a store of its own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from activities.caller_index import CallerIndexActivities
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.domain.models import IndexRefreshRequest
from callbridge.store import caller_index
from callbridge.store.db import get_engine
from tests.helpers import stack_settings, tls, unique_us_number
from tests.private_org import start_salesforce
from tests.emulators.test_salesforce_emulator import make_sf

pytestmark = pytest.mark.integration


@pytest.fixture
def org(test_var_dir, request):
    """An org per test: a purge in one would refuse the other's getDeleted windows."""
    emulator = start_salesforce(test_var_dir, request.node.name.removeprefix("test_")[:24])
    yield emulator
    emulator.process.stop()


@pytest.fixture
def settings(stack, org, test_var_dir, request):
    return stack_settings(stack, salesforce_instance_url=org.instance_url, salesforce_login_url=org.instance_url,
                          salesforce_client_id=org.client_id, salesforce_client_secret=org.client_secret,
                          salesforce_ca_file=org.ca_file,
                          database_url=f"sqlite:///{test_var_dir / (request.node.name + '.db')}")


def refresh(settings, full: bool = False):
    from temporalio.testing import ActivityEnvironment

    activities = CallerIndexActivities(SalesforceConnection(settings), settings)
    return ActivityEnvironment().run(activities.refresh_caller_index, IndexRefreshRequest(full=full))


def contact_with_phone(sf) -> tuple[str, str]:
    e164, digits = unique_us_number()
    cid = sf.Contact.create({"LastName": "Replica", "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
                             "MailingCountry": "United States"})["id"]
    return cid, e164


def indexed(settings, e164: str) -> list[str]:
    return [h["contact_id"] for h in caller_index.lookup(get_engine(settings.database_url), e164)]


def test_a_purged_delete_log_falls_back_to_comparing_every_id(org, settings):
    sf = make_sf(org)
    gone, gone_number = contact_with_phone(sf)
    kept, kept_number = contact_with_phone(sf)
    refresh(settings, full=True)
    assert indexed(settings, gone_number) == [gone] and indexed(settings, kept_number) == [kept]

    sf.Contact.delete(gone)
    admin = httpx.Client(base_url=f"{org.instance_url}/_emulator", verify=tls(org))
    admin.post("/recycle-bin/purge", json={}).raise_for_status()  # an admin empties the recycle bin
    result = refresh(settings)
    assert result.removed >= 1
    assert indexed(settings, gone_number) == [] and indexed(settings, kept_number) == [kept]


def test_the_watermark_never_passes_latest_date_covered(org, settings):
    sf = make_sf(org)
    refresh(settings, full=True)
    admin = httpx.Client(base_url=f"{org.instance_url}/_emulator", verify=tls(org))
    admin.post("/replication", json={"covered_lag_seconds": 600}).raise_for_status()
    try:
        before = datetime.now(timezone.utc)
        result = refresh(settings)
    finally:
        admin.delete("/replication").raise_for_status()
    watermark = datetime.fromisoformat(result.watermark)
    assert watermark < before - timedelta(minutes=9)
    # So a contact deleted inside the uncovered stretch is still found by the next refresh.
    cid, number = contact_with_phone(sf)
    refresh(settings)
    sf.Contact.delete(cid)
    refresh(settings)
    assert indexed(settings, number) == []


def test_contact_sync_sees_a_purged_deletion_of_a_paired_contact(org, settings):
    """Contact sync reads changes with queryAll, which no longer holds a purged record: getDeleted
    reports it until its own log is purged, then the stored pairs are compared with Salesforce."""
    from callbridge.clients.genesys.connection import GenesysConnection
    from activities.contact_sync import ContactSyncActivities
    from callbridge.store import sync as sync_store

    sf = make_sf(org)
    engine = get_engine(settings.database_url)
    paired, _ = contact_with_phone(sf)
    untouched, _ = contact_with_phone(sf)
    for sf_id in (paired, untouched):
        sync_store.store_base(engine, sf_id, f"gc-{sf_id}", {"LastName": "Replica"}, 0)
    run = ContactSyncActivities(SalesforceConnection(settings), GenesysConnection(settings), settings)
    since = datetime.now(timezone.utc)  # the last run's watermark: both contacts were read before it
    sf.Contact.delete(paired)
    httpx.post(f"{org.instance_url}/_emulator/recycle-bin/purge", json={}, verify=tls(org)).raise_for_status()

    from temporalio.testing import ActivityEnvironment

    until = datetime.now(timezone.utc).replace(microsecond=0)
    changed, covered = ActivityEnvironment().run(run._salesforce_changes, since, until)
    # (untouched may be listed too: SOQL compares SystemModstamp to the second of the watermark)
    assert paired in changed and len(changed) == len(set(changed))
    assert covered <= until
