"""The Salesforce emulator's per-record semantics (issue #16 items 4 and 5), over real HTTPS with
simple-salesforce as the client: record-level faults inside collections and composites, the
Account delete cascade, the URI length limit, case-insensitive SOQL beyond ASCII, email checks.
"""

from __future__ import annotations

import httpx
import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.emulators.test_salesforce_emulator import V, clean_controls, http, marker, sf  # noqa: F401  (fixtures)


def test_a_record_rule_fails_one_record_of_a_collection(sf, http):
    m = marker()
    ids = [sf.Contact.create({"LastName": f"{m}-{i}"})["id"] for i in range(3)]
    http.post("/_emulator/faults", json={"fail_records": [
        {"sobject": "Contact", "id": ids[1], "errorCode": "UNABLE_TO_LOCK_ROW", "count": 1}]}).raise_for_status()
    out = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "id": i, "Title": "Boss"} for i in ids]})
    assert [r["success"] for r in out] == [True, False, True]
    error = out[1]["errors"][0]
    assert error["statusCode"] == "UNABLE_TO_LOCK_ROW" and error["fields"] == []
    assert error["message"] == f"unable to obtain exclusive access to this record or 1 records: {ids[1]}"
    assert [sf.Contact.get(i)["Title"] for i in ids] == ["Boss", None, "Boss"]
    # Used up: the same write now goes through.
    assert http.get("/_emulator/faults").json()["fail_records"] == []
    assert sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "id": ids[1], "Title": "Boss"}]})[0]["success"] is True


def test_record_rules_by_field_value_and_operation(sf, http):
    m = marker()
    http.post("/_emulator/faults", json={"fail_records": [
        {"sobject": "Contact", "operation": "insert", "field": "LastName", "value": f"{m}-dup",
         "errorCode": "DUPLICATE_VALUE", "count": 5},
        {"sobject": "Contact", "operation": "insert", "field": "Email", "value": m.lower(),
         "errorCode": "INVALID_EMAIL_ADDRESS", "count": 5}]}).raise_for_status()
    out = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Contact"}, "LastName": f"{m}-ok"},
        {"attributes": {"type": "Contact"}, "LastName": f"{m}-dup"},
        {"attributes": {"type": "Contact"}, "LastName": f"{m}-mail", "Email": f"{m}@b.example"}]})
    assert [r["success"] for r in out] == [True, False, False]
    assert out[1]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert out[1]["errors"][0]["message"].startswith("duplicate value found: LastName duplicates value on record")
    assert out[2]["errors"][0] == {"statusCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"],
                                   "message": f"Email: invalid email address: {m}@b.example"}
    # A single-record call answers the same error as a 400 list.
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"LastName": f"{m}-dup"})
    assert refused.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    # An update isn't an insert: the rule leaves it alone.
    sf.Contact.update(out[0]["id"], {"LastName": f"{m}-dup"})


def test_record_rules_hit_composite_subrequests_and_all_or_none_reports_the_real_error(sf, http):
    m = marker()
    http.post("/_emulator/faults", json={"fail_records": [
        {"sobject": "Task", "operation": "insert", "errorCode": "UNABLE_TO_LOCK_ROW", "count": 1}]}
    ).raise_for_status()
    out = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": f"{V}/sobjects/Contact", "referenceId": "contact", "body": {"LastName": m}},
        {"method": "POST", "url": f"{V}/sobjects/Task", "referenceId": "task",
         "body": {"Subject": m, "WhoId": "@{contact.id}"}}]})["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [400, 400]
    assert out[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert out[1]["body"][0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert sf.query(f"SELECT Id FROM Contact WHERE LastName = '{m}'")["totalSize"] == 0  # rolled back


def test_a_deleted_record_and_bad_record_rules(sf, http):
    m = marker()
    cid = sf.Contact.create({"LastName": m})["id"]
    sf.Contact.delete(cid)
    out = sf.restful("composite/sobjects", method="DELETE", params={"ids": cid, "allOrNone": "false"})
    assert out[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    for bad in ({"errorCode": "NOT_A_CODE"}, {"errorCode": "DUPLICATE_VALUE", "operation": "merge"},
                {"errorCode": "DUPLICATE_VALUE", "field": "Email"}):
        assert http.post("/_emulator/faults", json={"fail_records": [bad]}).status_code == 400


# -- more real semantics (item 5) ---------------------------------------------------------------


def test_deleting_an_account_takes_its_contacts_and_their_activities_to_the_recycle_bin(sf):
    m = marker()
    account = sf.Account.create({"Name": f"Acme {m}"})["id"]
    other = sf.Account.create({"Name": f"Other {m}"})["id"]
    cid = sf.Contact.create({"LastName": m, "AccountId": account})["id"]
    kept = sf.Contact.create({"LastName": m, "AccountId": other})["id"]
    on_contact = sf.Task.create({"Subject": f"call {m}", "WhoId": cid})["id"]
    on_account = sf.Task.create({"Subject": f"call {m}", "WhatId": account})["id"]
    event = sf.Event.create({"Subject": f"visit {m}", "WhoId": cid, "StartDateTime": "2026-03-14T10:00:00Z",
                             "EndDateTime": "2026-03-14T11:00:00Z"})["id"]

    assert sf.Account.delete(account) == 204

    assert [r["Id"] for r in sf.query(f"SELECT Id FROM Contact WHERE LastName = '{m}'")["records"]] == [kept]
    binned = sf.query_all(f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{cid}'", include_deleted=True)["records"]
    assert binned[0]["IsDeleted"] is True
    for sobject, rid in (("Task", on_contact), ("Task", on_account), ("Event", event)):
        assert sf.query(f"SELECT COUNT() FROM {sobject} WHERE Id = '{rid}'")["totalSize"] == 0
        assert sf.query_all(f"SELECT IsDeleted FROM {sobject} WHERE Id = '{rid}'",
                            include_deleted=True)["records"][0]["IsDeleted"] is True
    rels = {r["relationshipName"]: r for r in sf.Account.describe()["childRelationships"]}
    assert rels["Contacts"]["cascadeDelete"] and rels["Tasks"]["cascadeDelete"]


def test_uri_and_headers_over_16384_bytes_are_refused(http):
    def where(n: int) -> dict:
        return {"q": "SELECT Id FROM Contact WHERE LastName = '" + "x" * n + "'"}

    assert http.get(f"{V}/query", params=where(17_000)).status_code == 414  # the URI alone
    # The URI fits, URI + headers don't.
    assert http.get(f"{V}/query", params=where(15_500), headers={"X-Note": "y" * 1_000}).status_code == 431
    assert http.get(f"{V}/query", params=where(15_500)).status_code == 200


def test_soql_string_comparison_is_case_insensitive_beyond_ascii(sf):
    m = marker()
    ids = {sf.Contact.create({"FirstName": first, "LastName": f"{last}{m}"})["id"]
           for first, last in (("Jörg", "Müller"), ("JÖRG", "MÜLLER"), ("Élodie", "Ångström"))}
    same = sf.query(f"SELECT Id FROM Contact WHERE LastName = 'müller{m}'")["records"]
    assert len(same) == 2
    listed = sf.query(f"SELECT Id FROM Contact WHERE LastName IN ('MüLLER{m}', 'ångström{m}')")["records"]
    assert {r["Id"] for r in listed} == ids
    liked = sf.query(f"SELECT Id FROM Contact WHERE FirstName LIKE 'jö%' AND LastName LIKE '%{m}'")["records"]
    assert len(liked) == 2
    assert sf.query(f"SELECT Id FROM Contact WHERE LastName != 'MÜLLER{m}' AND LastName LIKE '%{m}'"
                    )["totalSize"] == 1


@pytest.mark.parametrize("email", ["jörg@example.com", "ana@example", "ana@@example.com", "ana example@x.com",
                                   "ana@-example.com"])
def test_malformed_email_addresses_are_refused(sf, email):
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"LastName": marker(), "Email": email})
    assert refused.value.content[0]["errorCode"] == "INVALID_EMAIL_ADDRESS"
    assert refused.value.content[0]["fields"] == ["Email"]


def test_well_formed_email_addresses_are_taken(sf):
    for email in ("ana.silva+calls@example.com", "O'Brien@Example.CO.UK", "x_y-z@sub.example-mail.org"):
        cid = sf.Contact.create({"LastName": marker(), "Email": email})["id"]
        assert sf.Contact.get(cid)["Email"] == email
