"""The Salesforce emulator where Salesforce is less simple than it looks (issue #16): short
query pages, archived activities, a purged delete log, hard delete. Driven with
simple-salesforce (a real client) over real HTTPS, as tests/test_salesforce_emulator.py is."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.helpers import tls
from tests.test_salesforce_emulator import make_sf

V = "/services/data/v62.0"


@pytest.fixture
def sf(salesforce):
    return make_sf(salesforce)


@pytest.fixture
def admin(salesforce):
    with httpx.Client(base_url=f"{salesforce.instance_url}/_emulator", verify=tls(salesforce), timeout=20) as c:
        yield c
        c.delete("/query-pages").raise_for_status()


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
