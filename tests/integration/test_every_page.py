"""Every page of every Salesforce read (issue #16 item 1): Salesforce may cut a query page
short (child rows count toward the batch size; the batch size is no guarantee), and a
contact left out of a read must never be taken as deleted."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import GENESYS_CONTACTS as CONTACTS
from tests.helpers import run_sync, tls, unique_us_number

pytestmark = pytest.mark.integration


def consented_contacts(sf, n: int) -> list[str]:
    contacts = []
    for _ in range(n):
        _, digits = unique_us_number()
        contacts.append({"attributes": {"type": "Contact"}, "FirstName": "Page", "LastName": f"Reader{digits[-6:]}",
                         "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "MailingCountry": "USA"})
    ids = [r["id"] for r in sf.restful("composite/sobjects", method="POST",
                                       json={"allOrNone": True, "records": contacts})]
    consents = [{"attributes": {"type": "Contact_Consent__c"}, "Contact__c": cid, "Consent_Type__c": "Data Processing",
                 "Channel__c": "Phone", "Version__c": "2024-01", "Consent_Date__c": "2024-01-15T09:00:00.000+0000"}
                for cid in ids]
    assert all(r["success"] for r in sf.restful("composite/sobjects", method="POST",
                                                json={"allOrNone": True, "records": consents}))
    return ids


async def test_a_sync_page_of_200_consented_contacts_read_in_several_pages_deletes_nothing(
        stack, sf, gc, salesforce, temporal_client):
    ids = consented_contacts(sf, 200)
    first = await run_sync(temporal_client, stack, mode="one_way", force_path="bulk", page_size=200)
    assert first.errors == 0
    linked = {cid: sf.Contact.get(cid)["Genesys_Contact_Id__c"] for cid in ids}
    assert all(linked.values())
    # Each contact changes, so the next run reads all 200 (with their consents) in one sync page...
    for start in range(0, 200, 200):
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
            {"attributes": {"type": "Contact"}, "id": cid, "Title": "Paged"} for cid in ids[start:start + 200]]})
    admin = f"{salesforce.instance_url}/_emulator/query-pages"
    # ...and Salesforce answers that read in pages of 60 rows (a contact and its consent are two).
    httpx.post(admin, verify=tls(salesforce), json={"max_records": 60}).raise_for_status()
    try:
        second = await run_sync(temporal_client, stack, mode="one_way", force_path="bulk", page_size=200)
    finally:
        httpx.delete(admin, verify=tls(salesforce)).raise_for_status()
    assert second.errors == 0 and second.deleted == 0
    for cid, gc_id in linked.items():
        contact = gc.get(f"{CONTACTS}/{gc_id}")
        assert contact.status_code == 200 and contact.json().get("title") == "Paged", cid
