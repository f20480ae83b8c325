"""The Salesforce emulator where Salesforce is less simple than it looks (issue #16): short
query pages, archived activities, a purged delete log, hard delete. Driven with
simple-salesforce (a real client) over real HTTPS, as tests/emulators/test_salesforce_emulator.py is."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.helpers import tls
from tests.private_org import start_salesforce
from tests.emulators.test_salesforce_emulator import make_sf

V = "/services/data/v62.0"


@pytest.fixture
def sf(salesforce):
    return make_sf(salesforce)


@pytest.fixture
def admin(salesforce):
    with httpx.Client(base_url=f"{salesforce.instance_url}/_emulator", verify=tls(salesforce), timeout=20) as c:
        yield c
        c.delete("/query-pages").raise_for_status()


@pytest.fixture(scope="module")
def own_salesforce(test_var_dir):
    """Purging the recycle bin moves getDeleted's earliestDateAvailable for everyone: an org of our own."""
    org = start_salesforce(test_var_dir, "aging")
    yield org
    org.process.stop()


def marker() -> str:
    return "R" + uuid.uuid4().hex[:10]


def make_contacts(sf, last_name: str, n: int, consents_each: int = 0) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 200):
        batch = [{"attributes": {"type": "Contact"}, "LastName": last_name, "FirstName": f"P{i:03d}"}
                 for i in range(start, min(n, start + 200))]
        ids += [r["id"] for r in sf.restful("composite/sobjects", method="POST",
                                            json={"allOrNone": True, "records": batch})]
    consents = [{"attributes": {"type": "Contact_Consent__c"}, "Contact__c": cid, "Consent_Type__c": "Data Processing",
                 "Channel__c": "Phone", "Version__c": f"v{k}", "Consent_Date__c": "2024-01-15T09:00:00.000+0000"}
                for cid in ids for k in range(consents_each)]
    for start in range(0, len(consents), 200):
        assert all(r["success"] for r in sf.restful("composite/sobjects", method="POST", json={
            "allOrNone": True, "records": consents[start:start + 200]}))
    return ids


# -- query pages ---------------------------------------------------------------------------------


def test_child_rows_count_toward_the_batch_size(sf):
    m = marker()
    make_contacts(sf, m, 60, consents_each=4)
    q = (f"SELECT Id, FirstName, (SELECT Id FROM Contact_Consents__r) FROM Contact WHERE LastName = '{m}' "
         "ORDER BY FirstName")
    first = sf.query(q, headers={"Sforce-Query-Options": "batchSize=200"})
    # 40 contacts with 4 consents each are 200 rows: the page is full.
    assert first["totalSize"] == 60 and first["done"] is False and len(first["records"]) == 40
    assert all(len(r["Contact_Consents__r"]["records"]) == 4 for r in first["records"])
    everyone = list(sf.query_all_iter(q, headers={"Sforce-Query-Options": "batchSize=200"}))
    assert [r["FirstName"] for r in everyone] == [f"P{i:03d}" for i in range(60)]
    # Without subquery rows the same batch size holds every contact.
    plain = sf.query(f"SELECT Id FROM Contact WHERE LastName = '{m}'", headers={"Sforce-Query-Options": "batchSize=200"})
    assert plain["done"] is True and len(plain["records"]) == 60


def test_pages_can_be_cut_short_below_the_batch_size(sf, admin):
    m = marker()
    make_contacts(sf, m, 20)
    assert admin.post("/query-pages", json={"max_records": 7}).json() == {"max_records": 7}
    q = f"SELECT Id, FirstName FROM Contact WHERE LastName = '{m}' ORDER BY FirstName"
    first = sf.query(q)
    assert first["totalSize"] == 20 and first["done"] is False and len(first["records"]) == 7
    assert [r["FirstName"] for r in sf.query_all_iter(q)] == [f"P{i:03d}" for i in range(20)]
    assert len(sf.query(f"SELECT Id FROM Contact WHERE LastName = '{m}'")["records"]) == 7  # natural order too
    assert admin.post("/query-pages", json={"max_records": 0}).status_code == 400
    admin.delete("/query-pages").raise_for_status()
    assert sf.query(q)["done"] is True


# -- archived activities -------------------------------------------------------------------------


def test_old_closed_activities_are_archived_and_only_query_all_returns_them(sf, admin):
    m = marker()
    cid = sf.Contact.create({"LastName": m})["id"]
    old_call = sf.Task.create({"Subject": f"{m} old call", "WhoId": cid, "Status": "Completed",
                               "ActivityDate": "2025-01-10"})["id"]
    old_open = sf.Task.create({"Subject": f"{m} old open", "WhoId": cid, "ActivityDate": "2025-01-10"})["id"]
    recent = sf.Task.create({"Subject": f"{m} recent", "WhoId": cid, "Status": "Completed",
                             "ActivityDate": "2026-06-01"})["id"]
    old_meeting = sf.Event.create({"Subject": f"{m} meeting", "WhoId": cid, "StartDateTime": "2025-01-10T09:00:00Z",
                                   "EndDateTime": "2025-01-10T10:00:00Z"})["id"]
    r = admin.post("/archive", json={"today": "2026-03-01"})
    assert r.status_code == 200 and r.json()["archived"]["Task"] >= 1 and r.json()["archived"]["Event"] >= 1
    tasks = f"SELECT Id, IsArchived FROM Task WHERE WhoId = '{cid}'"
    assert {t["Id"] for t in sf.query_all(tasks)["records"]} == {old_open, recent}
    every = {t["Id"]: t["IsArchived"] for t in sf.query_all(tasks, include_deleted=True)["records"]}
    assert every == {old_call: True, old_open: False, recent: False}
    assert sf.query(f"SELECT Id FROM Event WHERE WhoId = '{cid}'")["totalSize"] == 0
    assert [e["Id"] for e in sf.query_all(f"SELECT Id FROM Event WHERE WhoId = '{cid}' AND IsArchived = true",
                                          include_deleted=True)["records"]] == [old_meeting]
    # A subquery from the contact follows the same rule.
    child = sf.query(f"SELECT Id, (SELECT Id FROM Tasks) FROM Contact WHERE Id = '{cid}'")["records"][0]["Tasks"]
    assert {t["Id"] for t in child["records"]} == {old_open, recent}
    # Archived records can still be deleted, and the archive flag can't be written.
    sf.Task.delete(old_call)
    assert admin.post("/archive", json={"today": "not a date"}).status_code == 400


# -- the recycle bin, the delete log, replication ------------------------------------------------


def test_purged_records_vanish_from_query_all_and_get_deleted(own_salesforce):
    sf = make_sf(own_salesforce)
    admin = httpx.Client(base_url=f"{own_salesforce.instance_url}/_emulator", verify=tls(own_salesforce))
    m = marker()
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    gone = sf.Contact.create({"LastName": m})["id"]
    sf.Contact.delete(gone)
    end = datetime.now(timezone.utc) + timedelta(minutes=2)
    assert gone in {d["id"] for d in sf.Contact.deleted(start, end)["deletedRecords"]}
    assert sf.query_all(f"SELECT Id FROM Contact WHERE Id = '{gone}'", include_deleted=True)["totalSize"] == 1
    # Only records recycled more than 15 days ago go by themselves...
    admin.post("/recycle-bin/purge", json={"older_than_days": 15}).raise_for_status()
    assert sf.query_all(f"SELECT Id FROM Contact WHERE Id = '{gone}'", include_deleted=True)["totalSize"] == 1
    # ...and an admin empties the bin.
    assert admin.post("/recycle-bin/purge", json={}).json()["purged"].get("Contact", 0) >= 1
    assert sf.query_all(f"SELECT Id FROM Contact WHERE Id = '{gone}'", include_deleted=True)["totalSize"] == 0
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.deleted(start, end)
    assert exc.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    # A window starting after the purge is answered again (getDeleted ignores seconds).
    later = sf.Contact.deleted(datetime.now(timezone.utc) + timedelta(minutes=1), end + timedelta(minutes=2))
    assert later["deletedRecords"] == [] and later["earliestDateAvailable"]


def test_latest_date_covered_can_lag_the_end_of_the_window(sf, admin):
    start = datetime.now(timezone.utc) - timedelta(minutes=30)
    end = datetime.now(timezone.utc)
    assert admin.post("/replication", json={"covered_lag_seconds": 600}).status_code == 200
    try:
        fresh = sf.Contact.create({"LastName": marker()})["id"]
        answer = sf.Contact.updated(start, end)
        covered = datetime.fromisoformat(answer["latestDateCovered"].replace("+0000", "+00:00"))
        assert covered < end - timedelta(minutes=9) and fresh not in answer["ids"]
    finally:
        admin.delete("/replication").raise_for_status()
    assert fresh in sf.Contact.updated(start, end + timedelta(minutes=1))["ids"]


# -- hard delete -----------------------------------------------------------------------------------
# simple-salesforce's bulk2 sleeps `wait` seconds (default 5) before it first asks for a job's
# state, then polls about as often: 0.2 s here, not 5 s per job.
POLL = 0.2


def test_bulk_hard_delete_leaves_nothing_and_needs_its_permission(own_salesforce):


    sf = make_sf(own_salesforce)
    admin = httpx.Client(base_url=f"{own_salesforce.instance_url}/_emulator", verify=tls(own_salesforce))
    m = marker()
    live = sf.Contact.create({"LastName": m})["id"]
    call = sf.Task.create({"Subject": m, "WhoId": live})["id"]
    binned = sf.Contact.create({"LastName": m})["id"]
    sf.Contact.delete(binned)
    result = sf.bulk2.Contact.hard_delete(records=[{"Id": live}, {"Id": binned}], wait=POLL)
    assert result[0]["numberRecordsProcessed"] == 2 and result[0]["numberRecordsFailed"] == 0
    every = f"SELECT Id FROM Contact WHERE LastName = '{m}'"
    assert sf.query_all(every, include_deleted=True)["totalSize"] == 0  # not even in the recycle bin
    assert sf.query_all(f"SELECT Id FROM Task WHERE Id = '{call}'", include_deleted=True)["totalSize"] == 0
    # Gone again: the job reports the record as deleted, per record.
    again = sf.bulk2.Contact.hard_delete(records=[{"Id": live}], wait=POLL)
    assert again[0]["numberRecordsFailed"] == 1
    failed = sf.bulk2.Contact.get_failed_records(again[0]["job_id"])
    assert "ENTITY_IS_DELETED" in failed
    # Without the "Bulk API Hard Delete" permission the job is refused.
    admin.post("/permissions", json={"PermissionsBulkApiHardDelete": False}).raise_for_status()
    try:
        other = sf.Contact.create({"LastName": m})["id"]
        with pytest.raises(Exception) as exc:
            sf.bulk2.Contact.hard_delete(records=[{"Id": other}], wait=POLL)
        assert "FEATURENOTENABLED" in str(exc.value)
        assert sf.query(every)["totalSize"] == 1
    finally:
        admin.post("/permissions", json={"PermissionsBulkApiHardDelete": True}).raise_for_status()



def test_an_id_is_never_handed_out_again_after_a_purge_or_a_hard_delete(own_salesforce):
    sf = make_sf(own_salesforce)
    admin = httpx.Client(base_url=f"{own_salesforce.instance_url}/_emulator", verify=tls(own_salesforce))
    purged = sf.Contact.create({"LastName": marker()})["id"]
    sf.Contact.delete(purged)
    admin.post("/recycle-bin/purge", json={}).raise_for_status()
    hard = sf.Contact.create({"LastName": marker()})["id"]
    sf.bulk2.Contact.hard_delete(records=[{"Id": hard}], wait=POLL)
    fresh = sf.Contact.create({"LastName": marker()})["id"]
    assert len({purged, hard, fresh}) == 3
