"""The Salesforce emulator's per-record semantics (issue #16 items 4 and 5), over real HTTPS with
simple-salesforce as the client: record-level faults inside collections and composites, the
Account delete cascade, the URI length limit, case-insensitive SOQL beyond ASCII, email checks.
"""

from __future__ import annotations

import httpx
import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.test_salesforce_emulator import V, clean_controls, http, marker, sf  # noqa: F401  (fixtures)


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
