"""Caller-ID index rows and ranking (pure), and the store round trip on SQLite."""

from __future__ import annotations

from callbridge.domain.caller_id import index_rows, rank_index_hits
from callbridge.store import caller_index
from callbridge.store.db import get_engine


def contact(id_, **fields):
    return {"Id": id_, "FirstName": "Ana", "LastName": id_, "AccountId": "001000000000001AAA",
            "Account": {"Name": "Acme", "AccountNumber": "ACME-1", "BillingCountry": "Brazil"},
            "Custom_Tier__c": "Premium", "SystemModstamp": "2026-03-14T10:00:00.000+0000", **fields}


def test_rows_use_the_accounts_country_when_the_contact_has_none():
    rows = index_rows(contact("003A", MobilePhone="(11) 91234-5678", Phone=None), "US")
    assert [(r["phone_field"], r["e164"]) for r in rows] == [("MobilePhone", "+5511912345678")]


def test_contacts_without_a_usable_number_have_no_rows():
    assert index_rows(contact("003A", Phone="n/a"), "US") == []


def test_shared_switchboard_ranks_below_an_own_line():
    rows = (
        index_rows(contact("003A", Phone="+55 11 3333-4444", Last_Call_Date__c="2026-03-10T00:00:00.000+0000"), "US")
        + index_rows(contact("003B", Phone="+55 11 3333-4444", Last_Call_Date__c="2026-03-12T00:00:00.000+0000"), "US")
        + index_rows(contact("003C", MobilePhone="+55 11 3333-4444"), "US")
    )
    ranked = rank_index_hits(rows)
    assert [r["contact_id"] for r in ranked] == ["003C", "003B", "003A"]
    assert [r["own_line"] for r in ranked] == [True, False, False]


def test_store_apply_replace_remove_and_version(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'state.db'}")
    v0 = caller_index.version(engine)
    caller_index.apply_contacts(engine, [contact("003000000000001AAA", Phone="512-555-0101", MailingCountry="USA")], "US")
    assert [r["contact_id"] for r in caller_index.lookup(engine, "+15125550101")] == ["003000000000001AAA"]
    # The number changed in Salesforce: the old one no longer finds the contact.
    caller_index.apply_contacts(engine, [contact("003000000000001AAA", Phone="512-555-0202", MailingCountry="USA")], "US")
    assert caller_index.lookup(engine, "+15125550101") == []
    assert len(caller_index.lookup(engine, "+15125550202")) == 1
    account, contacts = caller_index.lookup_account(engine, "ACME-1")
    assert account["name"] == "Acme" and [c["contact_id"] for c in contacts] == ["003000000000001AAA"]
    caller_index.remove_contacts(engine, ["003000000000001AAA"])
    assert caller_index.lookup(engine, "+15125550202") == []
    assert caller_index.version(engine) == v0 + 3


def test_call_loggings_update_is_taken_from_its_change_event_anything_else_is_read():
    from datetime import datetime, timezone

    from callbridge.domain.caller_id import index_update_in_change

    at = int(datetime(2026, 3, 14, 10, 0, tzinfo=timezone.utc).timestamp() * 1000)
    values = {"Last_Call_Date__c": at, "Last_Call_Duration__c": 42.0, "LastModifiedDate": at + 5}
    own = ["Last_Call_Date__c", "Last_Call_Duration__c", "LastModifiedDate"]
    assert index_update_in_change(own, [], values) == {
        "last_activity": datetime(2026, 3, 14, 10, 0, tzinfo=timezone.utc),
        "modstamp": datetime(2026, 3, 14, 10, 0, 0, 5000, tzinfo=timezone.utc)}
    assert index_update_in_change(own + ["Phone"], [], {**values, "Phone": "512-555-0101"}) is None
    assert index_update_in_change(own + ["Name.FirstName"], [], values) is None
    assert index_update_in_change(own, ["MailingAddress.Country"], values) is None
    assert index_update_in_change(own, ["Custom_Tier__c"], values) is None
    # A nulled Last_Call_Date__c: the row falls back to LastActivityDate, which isn't in the event.
    assert index_update_in_change(["LastModifiedDate"], ["Last_Call_Date__c"], {"LastModifiedDate": at}) is None
    # Nothing of the rows changed: read (the read also refreshes LastActivityDate, as before).
    assert index_update_in_change(["Description", "LastModifiedDate"], [], {"LastModifiedDate": at}) is None


def test_store_update_from_an_event_leaves_a_later_read_and_unindexed_contacts(tmp_path):
    from datetime import datetime, timezone

    engine = get_engine(f"sqlite:///{tmp_path / 'state.db'}")
    cid = "003000000000001AAA"
    caller_index.apply_contacts(engine, [contact(cid, Phone="512-555-0101", MobilePhone="512-555-0102",
                                                 MailingCountry="USA")], "US")
    v0 = caller_index.version(engine)
    call = {"last_activity": datetime(2026, 3, 15, 9, 0, tzinfo=timezone.utc),
            "modstamp": datetime(2026, 3, 15, 9, 0, 1, tzinfo=timezone.utc)}
    assert caller_index.update_contacts(engine, {cid: call, "003000000000009AAA": call}) == {"003000000000009AAA"}
    assert caller_index.version(engine) == v0 + 1
    # The same rows a read of the updated record makes.
    from_event = caller_index.lookup(engine, "+15125550101")
    caller_index.apply_contacts(engine, [contact(cid, Phone="512-555-0101", MobilePhone="512-555-0102",
                                                 MailingCountry="USA", Last_Call_Date__c="2026-03-15T09:00:00.000+0000",
                                                 SystemModstamp="2026-03-15T09:00:01.000+0000")], "US")
    assert caller_index.lookup(engine, "+15125550101") == from_event
    # An older event (a replayed batch) doesn't undo it: left for a read.
    older = {"last_activity": datetime(2026, 3, 1, tzinfo=timezone.utc),
             "modstamp": datetime(2026, 3, 1, 0, 0, 1, tzinfo=timezone.utc)}
    assert caller_index.update_contacts(engine, {cid: older}) == {cid}
    assert caller_index.lookup(engine, "+15125550101") == from_event
