"""The product on more of Salesforce's real semantics (issue #16 item 5): an Account's delete
taking its Contacts along, the 16,384-byte URI limit, case-insensitive SOQL beyond ASCII."""

from __future__ import annotations

import uuid

import pytest

from callbridge.clients.salesforce.soql_in import URI_BUDGET, encoded_length, in_chunks
from callbridge.store import caller_index
from callbridge.store.db import get_engine
from tests.helpers import GENESYS_CONTACTS, new_sf_contact, refresh_index, run_sync, stack_settings, unique_us_number

pytestmark = pytest.mark.integration


def engine_of(stack):
    return get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])


async def test_an_accounts_delete_takes_its_contacts_out_of_the_caller_index_and_genesys(
        stack, sf, gc, temporal_client):
    account = sf.Account.create({"Name": f"Doomed {uuid.uuid4().hex[:8]}", "BillingCountry": "United States"})["id"]
    e164, digits = unique_us_number()
    sf_id = new_sf_contact(sf, AccountId=account, Phone=f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
    await run_sync(temporal_client, stack, mode="one_way")
    gc_id = sf.Contact.get(sf_id)["Genesys_Contact_Id__c"]
    await refresh_index(temporal_client, stack)
    assert [r["contact_id"] for r in caller_index.lookup(engine_of(stack), e164)] == [sf_id]

    sf.Account.delete(account)  # the contact goes to the recycle bin with it
    await refresh_index(temporal_client, stack)
    result = await run_sync(temporal_client, stack, mode="one_way")

    assert caller_index.lookup(engine_of(stack), e164) == []
    assert result.errors == 0 and gc.get(f"{GENESYS_CONTACTS}/{gc_id}").status_code == 404


def test_in_chunks_are_cut_by_bytes():
    latin = [f"silva{i:03d}" for i in range(300)]
    assert [len(c) for _, c in in_chunks("SELECT Id FROM Contact WHERE LastName IN {}", latin, max_count=100)] \
        == [100, 100, 100]
    # 40 CJK characters: 360 bytes each once percent-encoded.
    long_names = [("山田太郎" * 10) + f"{i:03d}" for i in range(100)]
    chunks = list(in_chunks("SELECT Id FROM Contact WHERE LastName IN {}", long_names, max_count=100))
    assert len(chunks) > 1 and sum(len(c) for _, c in chunks) == 100
    assert all(encoded_length(q) <= URI_BUDGET for q, _ in chunks)


async def test_a_page_of_long_non_latin_names_and_unicode_case_matches_by_name(stack, sf, gc, temporal_client):
    tag = uuid.uuid4().hex[:6]
    org = gc.post("/api/v2/externalcontacts/organizations", json={"name": f"Café Zürich {tag}"}).json()
    # Salesforce holds the person in capitals; Genesys in mixed case: SOQL compares them equal.
    account = sf.Account.create({"Name": f"CAFÉ ZÜRICH {tag}", "BillingCountry": "Switzerland"})["id"]
    sf_id = new_sf_contact(sf, FirstName="JÖRG", LastName=f"MÜLLER{tag}", AccountId=account, Phone=None,
                           Email=None)
    person = gc.post(GENESYS_CONTACTS, json={"firstName": "Jörg", "lastName": f"Müller{tag}",
                                             "externalOrganization": {"id": org["id"]}}).json()
    # …and a page of contacts whose last names, percent-encoded, pass the URI limit at 100 a query.
    for i in range(60):
        gc.post(GENESYS_CONTACTS, json={"firstName": "太郎", "lastName": f"{'山田' * 20}{tag}{i:02d}",
                                        "externalOrganization": {"id": org["id"]}}).raise_for_status()

    result = await run_sync(temporal_client, stack, mode="bidirectional")

    assert result.errors == 0 and result.matched_by_name >= 1
    assert sf.Contact.get(sf_id)["Genesys_Contact_Id__c"] == person["id"]


async def test_sync_matches_a_genesys_number_typed_with_full_width_digits_and_thin_spaces(
        stack, sf, gc, temporal_client):
    e164, digits = unique_us_number()
    sf_id = new_sf_contact(sf, Phone=f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", Email=None)
    await refresh_index(temporal_client, stack)
    wide = "".join(chr(0xFF10 + int(d)) for d in digits)
    typed = f"\uff0b\uff11\u2009{wide[:3]}\u2009{wide[3:6]}\u2009{wide[6:]}"
    person = gc.post(GENESYS_CONTACTS, json={"firstName": "Yui", "lastName": uuid.uuid4().hex[:8],
                                             "workPhone": {"display": typed}}).json()

    result = await run_sync(temporal_client, stack, mode="bidirectional")

    assert result.errors == 0 and result.matched_by_phone >= 1
    assert sf.Contact.get(sf_id)["Genesys_Contact_Id__c"] == person["id"]


async def test_erasure_by_phone_finds_a_number_typed_in_full_width_digits(stack, sf, temporal_client):
    from callbridge.ops.privacy_requests import start_erasure
    from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id

    e164, digits = unique_us_number()
    wide = "".join(chr(0xFF10 + int(d)) for d in digits)
    contact = sf.Contact.create({"LastName": f"Suzuki{uuid.uuid4().hex[:6]}",
                                 "MobilePhone": f"\uff08{wide[:3]}\uff09{wide[3:6]}\uff0d{wide[6:]}"})["id"]

    request_id = await start_erasure(temporal_client, stack_settings(stack), phone=e164, task_queue=stack.task_queue)
    result = await temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id)).result()

    assert result.status == "completed", result
    assert sf.query(f"SELECT Id FROM Contact WHERE Id = '{contact}'")["totalSize"] == 0
