"""Contract tests for the Salesforce emulator, driven over real HTTPS sockets.

simple-salesforce is the client where it can be (as Callbridge uses it); httpx checks raw
status codes, headers and error bodies. Every test makes its own records (names carry a
unique marker) so the shared session org may hold anything else.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
import uuid
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from tests.helpers import tls

V = "/services/data/v62.0"


def get_token(salesforce) -> str:
    r = requests.post(f"{salesforce.instance_url}/services/oauth2/token", verify=str(salesforce.ca_file), data={
        "grant_type": "client_credentials", "client_id": salesforce.client_id,
        "client_secret": salesforce.client_secret})
    r.raise_for_status()
    return r.json()["access_token"]


def make_sf(salesforce) -> Salesforce:
    session = requests.Session()
    session.verify = str(salesforce.ca_file)
    # requests lets REQUESTS_CA_BUNDLE from the environment override Session.verify
    # unless the session ignores the environment.
    session.trust_env = False
    return Salesforce(instance_url=salesforce.instance_url, session_id=get_token(salesforce), session=session,
                      version="62.0")


@pytest.fixture
def sf(salesforce) -> Salesforce:
    return make_sf(salesforce)


@pytest.fixture
def http(salesforce):
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce), timeout=20) as client:
        client.headers["Authorization"] = "Bearer " + get_token(salesforce)
        yield client


@pytest.fixture(autouse=True)
def clean_controls(salesforce):
    yield
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce)) as client:
        client.delete("/_emulator/faults").raise_for_status()
        client.delete("/_emulator/validation-rules").raise_for_status()


def marker() -> str:
    return "T" + uuid.uuid4().hex[:10]


def error_of(exc: Exception) -> dict:
    return exc.content[0]  # type: ignore[attr-defined]


# -- discovery, OAuth, sessions ---------------------------------------------------------------


def test_versions_and_health_need_no_auth(salesforce):
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce)) as c:
        versions = c.get("/services/data").json()
        assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in versions
        assert all(set(v) == {"label", "url", "version"} for v in versions)
        assert c.get("/_emulator/health").json() == {"status": "ok"}


def test_client_credentials_token_shape(salesforce):
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce)) as c:
        r = c.post("/services/oauth2/token", data={"grant_type": "client_credentials",
                                                   "client_id": salesforce.client_id,
                                                   "client_secret": salesforce.client_secret})
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"}
        assert body["token_type"] == "Bearer" and body["instance_url"] == salesforce.instance_url
        basic = c.post("/services/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(salesforce.client_id, salesforce.client_secret))
        assert basic.status_code == 200
        bad = c.post("/services/oauth2/token", data={"grant_type": "client_credentials", "client_id": "x",
                                                     "client_secret": "y"})
        assert bad.status_code == 400
        assert bad.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
        grant = c.post("/services/oauth2/token", data={"grant_type": "magic"})
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_missing_or_unknown_token_is_invalid_session(salesforce):
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce)) as c:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            r = c.get(f"{V}/sobjects", headers=headers)
            assert r.status_code == 401
            assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_expired_sessions_raise_expired_session(salesforce):
    sf = make_sf(salesforce)
    sf.query("SELECT COUNT() FROM Account")
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce)) as c:
        c.post("/_emulator/sessions/expire").raise_for_status()
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT COUNT() FROM Account")
    make_sf(salesforce).query("SELECT COUNT() FROM Account")  # a new token works


# -- sObject rows -----------------------------------------------------------------------------


def test_crud_roundtrip_and_recycle_bin(sf):
    m = marker()
    acc = sf.Account.create({"Name": f"Acme {m}", "BillingCountry": "US", "Phone": "(512) 555-0199"})
    assert acc["success"] is True and acc["errors"] == [] and acc["id"].startswith("001") and len(acc["id"]) == 18
    created = sf.Contact.create({"FirstName": "Ana", "LastName": m, "AccountId": acc["id"],
                                 "Phone": "+55 11 91234-5678", "Custom_Tier__c": "Premium"})
    cid = created["id"]
    rec = sf.Contact.get(cid)
    assert rec["attributes"] == {"type": "Contact", "url": f"{V}/sobjects/Contact/{cid}"}
    assert rec["Name"] == f"Ana {m}" and rec["Phone"] == "+55 11 91234-5678"  # kept exactly as typed
    assert rec["CreatedDate"].endswith("+0000") and rec["IsDeleted"] is False
    assert sf.Contact.get(cid[:15])["Id"] == cid  # 15-character ids are accepted
    assert sf.Contact.update(cid, {"Title": "CTO", "Last_Call_Duration__c": 42}) == 204
    again = sf.Contact.get(cid)
    assert again["Title"] == "CTO" and again["Last_Call_Duration__c"] == 42.0
    assert again["LastModifiedDate"] >= rec["LastModifiedDate"]
    assert sf.Contact.delete(cid) == 204
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Contact.get(cid)
    assert error_of(exc.value) == {"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}
    q = f"SELECT Id, IsDeleted FROM Contact WHERE LastName = '{m}'"
    assert sf.query(q)["totalSize"] == 0
    deleted = sf.query_all(q, include_deleted=True)
    assert deleted["totalSize"] == 1 and deleted["records"][0]["IsDeleted"] is True


def test_get_with_fields_param(http, sf):
    cid = sf.Contact.create({"LastName": marker(), "Email": "x@example.com"})["id"]
    r = http.get(f"{V}/sobjects/Contact/{cid}", params={"fields": "Email,LastName"})
    assert r.status_code == 200 and list(r.json()) == ["attributes", "Email", "LastName"]
    assert r.headers["Last-Modified"].endswith("GMT")


def test_write_errors_match_salesforce(sf, http):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "x", "Foo__c": 1})
    assert error_of(exc.value) == {"message": "No such column 'Foo__c' on sobject of type Contact",
                                   "errorCode": "INVALID_FIELD", "fields": []}
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"FirstName": "x"})
    assert error_of(exc.value) == {"message": "Required fields are missing: [LastName]",
                                   "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.create({"Phone": "1"})
    assert error_of(exc.value)["fields"] == ["Name"]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "x", "Custom_Tier__c": "Gold"})
    err = error_of(exc.value)
    assert err["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" and err["fields"] == ["Custom_Tier__c"]
    for field, value in (("Name", "Someone"), ("CreatedDate", "2026-01-01T00:00:00Z"),
                         ("SystemModstamp", "2026-01-01T00:00:00Z")):
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Contact.create({"LastName": "x", field: value})
        assert error_of(exc.value)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
        assert error_of(exc.value)["fields"] == [field]
    cid = sf.Contact.create({"LastName": marker()})["id"]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.update(cid, {"Id": cid})
    assert error_of(exc.value)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.update(cid, {"LastName": None})
    assert error_of(exc.value)["errorCode"] == "REQUIRED_FIELD_MISSING"
    r = http.patch(f"{V}/sobjects/Contact/not-an-id", json={"Title": "x"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_ID"
    r = http.patch(f"{V}/sobjects/Contact/0018d0000000001AAA", json={"Title": "x"})  # an Account id
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_ID"
    r = http.get(f"{V}/sobjects/Contact/0038dZZZZZZZZZZ")
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"
    r = http.get(f"{V}/sobjects/NoSuchThing/0038dZZZZZZZZZZ")
    assert r.status_code == 404 and r.json() == [{"message": "The requested resource does not exist",
                                                  "errorCode": "NOT_FOUND"}]
    r = http.post(f"{V}/sobjects/Contact", json={"LastName": "x", "AccountId": "garbage"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_ID"
    r = http.post(f"{V}/sobjects/Contact", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_task_subtype_is_create_only_including_upsert_update(sf):
    who = sf.Contact.create({"LastName": marker()})["id"]
    conv = marker()
    r = sf.Task.upsert(f"Genesys_Conversation_Id__c/{conv}", {"Subject": "Call", "WhoId": who,
                                                              "TaskSubtype": "Call", "CallType": "Inbound"},
                       raw_response=True)
    assert r.status_code == 201
    assert r.json() == {"id": r.json()["id"], "success": True, "errors": [], "created": True}
    tid = r.json()["id"]
    assert sf.Task.get(tid)["TaskSubtype"] == "Call" and sf.Task.get(tid)["Priority"] == "Normal"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Task.update(tid, {"TaskSubtype": "Task"})
    err = error_of(exc.value)
    assert err["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE" and err["fields"] == ["TaskSubtype"]
    assert "TaskSubtype" in err["message"]
    # The update path of an upsert refuses it the same way.
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Task.upsert(f"Genesys_Conversation_Id__c/{conv}", {"Subject": "Call 2", "TaskSubtype": "Call"})
    assert error_of(exc.value)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    r = sf.Task.upsert(f"Genesys_Conversation_Id__c/{conv}", {"Subject": "Call 2", "Status": "Completed"},
                       raw_response=True)
    assert r.status_code == 200 and r.json() == {"id": tid, "success": True, "errors": [], "created": False}
    assert sf.Task.get(tid)["IsClosed"] is True


def test_upsert_multiple_matches_and_unknown_field(sf, http):
    m = marker().lower()
    sf.Contact.create({"LastName": "Dup1", "Email": f"John@{m}.com"})
    sf.Contact.create({"LastName": "Dup2", "Email": f"john@{m}.com"})
    with pytest.raises(SalesforceMoreThanOneRecord) as exc:
        sf.Contact.upsert(f"Email/john@{m}.com", {"Title": "x"})
    assert exc.value.status == 300 and len(exc.value.content) == 2
    assert all(u.startswith(f"{V}/sobjects/Contact/003") for u in exc.value.content)
    r = http.patch(f"{V}/sobjects/Contact/No_Such__c/1", json={"LastName": "x"})
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"
    r = http.patch(f"{V}/sobjects/Contact/Genesys_Contact_Id__c/{m}?updateOnly=true", json={"LastName": "x"})
    assert r.status_code == 404


def test_get_by_custom_id_and_unique_external_id(sf):
    gid = marker()
    cid = sf.Contact.upsert(f"Genesys_Contact_Id__c/{gid}", {"LastName": "Ext"}, raw_response=True).json()["id"]
    got = sf.Contact.get_by_custom_id("Genesys_Contact_Id__c", gid)
    assert got["Id"] == cid and got["Genesys_Contact_Id__c"] == gid
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "Other", "Genesys_Contact_Id__c": gid.lower()})  # unique, case-insensitive
    assert error_of(exc.value)["errorCode"] == "DUPLICATE_VALUE" and cid in error_of(exc.value)["message"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get_by_custom_id("Genesys_Contact_Id__c", "missing-" + gid)


def test_if_unmodified_since(http, sf):
    cid = sf.Contact.create({"LastName": marker()})["id"]
    past = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), usegmt=True)
    future = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
    r = http.patch(f"{V}/sobjects/Contact/{cid}", json={"Title": "a"}, headers={"If-Unmodified-Since": past})
    assert r.status_code == 412
    r = http.patch(f"{V}/sobjects/Contact/{cid}", json={"Title": "b"}, headers={"If-Unmodified-Since": future})
    assert r.status_code == 204


def test_last_activity_date_follows_closed_tasks(sf):
    cid = sf.Contact.create({"LastName": marker()})["id"]
    sf.Task.create({"Subject": "Open", "WhoId": cid, "ActivityDate": "2026-03-20"})
    assert sf.Contact.get(cid)["LastActivityDate"] is None
    sf.Task.create({"Subject": "Done", "WhoId": cid, "ActivityDate": "2026-03-14", "Status": "Completed"})
    assert sf.Contact.get(cid)["LastActivityDate"] == "2026-03-14"
    with pytest.raises(SalesforceMalformedRequest):
        sf.Contact.update(cid, {"LastActivityDate": "2026-01-01"})


# -- queries ----------------------------------------------------------------------------------


def test_query_parent_fields_nested_and_null(sf):
    m = marker()
    acc = sf.Account.create({"Name": f"Parent {m}"})["id"]
    sf.Contact.create({"LastName": m, "FirstName": "With", "AccountId": acc, "Phone": "(512) 555-1234"})
    sf.Contact.create({"LastName": m, "FirstName": "Without", "MobilePhone": "512.555.1234"})
    res = sf.query(f"SELECT Id, FirstName, Account.Name FROM Contact WHERE LastName = '{m}' ORDER BY FirstName")
    with_acc, without = res["records"]
    assert with_acc["Account"] == {"attributes": {"type": "Account", "url": f"{V}/sobjects/Account/{acc}"},
                                   "Name": f"Parent {m}"}
    assert without["Account"] is None
    like = "%5%1%2%5%5%5%1%2%3%4"
    phones = sf.query(
        "SELECT Id, Name, FirstName, LastName, AccountId, Account.Name, Phone, MobilePhone, HomePhone, OtherPhone, "
        "MailingCountry, Custom_Tier__c, Last_Call_Date__c, LastModifiedDate FROM Contact "
        f"WHERE (Phone LIKE '{like}' OR MobilePhone LIKE '{like}' OR HomePhone LIKE '{like}' OR OtherPhone LIKE "
        f"'{like}') AND LastName = '{m}' ORDER BY Last_Call_Date__c DESC NULLS LAST LIMIT 50")
    assert phones["totalSize"] == 2


def test_count_and_task_lookups(sf):
    cid = sf.Contact.create({"LastName": marker()})["id"]
    conv = marker()
    sf.Task.create({"Subject": "Inbound call", "WhoId": cid, "Genesys_Conversation_Id__c": conv,
                    "CallObject": conv})
    sf.Task.create({"Subject": "Follow-up", "WhoId": cid})
    count = sf.query(f"SELECT COUNT() FROM Task WHERE WhoId = '{cid[:15]}'")
    assert count == {"totalSize": 2, "done": True, "records": []}
    found = sf.query(f"SELECT Id, WhoId, Subject, CallObject FROM Task WHERE Genesys_Conversation_Id__c = '{conv}'")
    assert found["totalSize"] == 1 and found["records"][0]["WhoId"] == cid
    who = sf.query(f"SELECT Who.Name, Subject FROM Task WHERE WhoId = '{cid}' AND Subject = 'Follow-up'")
    assert who["records"][0]["Who"]["attributes"]["type"] == "Contact"


def test_unknown_callers_query_shape(sf):
    sf.Account.create({"Name": "Unknown callers"})
    res = sf.query("SELECT Id, Name FROM Account WHERE Name = 'unknown CALLERS' ORDER BY CreatedDate ASC LIMIT 1")
    assert res["totalSize"] == 1 and res["records"][0]["Name"] == "Unknown callers"


def test_paging_with_batch_size_and_collections(sf, http):
    m = marker()
    for chunk in range(3):
        records = [{"attributes": {"type": "Contact"}, "LastName": m, "FirstName": f"P{chunk * 150 + i:03d}"}
                   for i in range(150)]
        r = http.post(f"{V}/composite/sobjects", json={"allOrNone": True, "records": records})
        assert r.status_code == 200 and all(x["success"] for x in r.json()), r.text
    q = f"SELECT Id, FirstName FROM Contact WHERE LastName = '{m}' ORDER BY FirstName"
    first = sf.query(q, headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["totalSize"] == 450 and first["done"] is False and len(first["records"]) == 200
    assert first["nextRecordsUrl"].startswith(f"{V}/query/") and first["nextRecordsUrl"].endswith("-200")
    names = [r["FirstName"] for r in sf.query_all_iter(q, headers={"Sforce-Query-Options": "batchSize=200"})]
    assert names == [f"P{i:03d}" for i in range(450)]
    assert sf.query_all(q)["totalSize"] == 450
    default = sf.query(f"SELECT Id FROM Contact WHERE LastName = '{m}' LIMIT 300 OFFSET 10")
    assert default["totalSize"] == 300 and default["done"] is True and len(default["records"]) == 300
    assert http.get(f"{V}/query/01gNOPE-200").json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_errors(sf, http):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query("SELECT Foo FROM Contact")
    err = error_of(exc.value)
    assert err["errorCode"] == "INVALID_FIELD"
    assert err["message"].startswith("\nSELECT Foo FROM Contact\n       ^\nERROR at Row:1:Column:8\n"
                                     "No such column 'Foo' on entity 'Contact'.")
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id FROM Nope")
    assert error_of(exc.value)["errorCode"] == "INVALID_TYPE"
    for bad in ("SELECT Id FROM Contact WHERE CreatedDate > LAST_N_MINUTES:30",
                "SELECT LastName FROM Contact GROUP BY LastName", "SELECT Id FROM Contact WHERE"):
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.query(bad)
        assert error_of(exc.value)["errorCode"] == "MALFORMED_QUERY"
    r = http.get(f"{V}/query")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_QUERY"


# -- composite --------------------------------------------------------------------------------


def _composite(all_or_none: bool, m: str, fail_second: bool) -> dict:
    return {"allOrNone": all_or_none, "compositeRequest": [
        {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "acc", "body": {"Name": f"Comp {m}"}},
        {"method": "POST", "url": f"{V}/sobjects/Contact", "referenceId": "con",
         "body": {"LastName": m, "AccountId": "@{acc.id}", **({"Custom_Tier__c": "Gold"} if fail_second else {})}},
        {"method": "GET", "url": f"{V}/query?q=SELECT+Id+FROM+Account+WHERE+Name='Comp+{m}'", "referenceId": "q"},
        {"method": "PATCH", "url": f"{V}/sobjects/Account/@{{q.records[0].Id}}", "referenceId": "upd",
         "body": {"Phone": "+1 416-555-0000"}},
    ]}


def test_composite_resolves_references(sf):
    m = marker()
    out = sf.restful("composite", method="POST", json=_composite(False, m, fail_second=False))
    codes = [r["httpStatusCode"] for r in out["compositeResponse"]]
    assert codes == [201, 201, 200, 204]
    acc_id = out["compositeResponse"][0]["body"]["id"]
    assert out["compositeResponse"][0]["httpHeaders"]["Location"] == f"{V}/sobjects/Account/{acc_id}"
    assert out["compositeResponse"][3]["body"] is None
    contact = sf.query(f"SELECT AccountId, Account.Phone FROM Contact WHERE LastName = '{m}'")["records"][0]
    assert contact["AccountId"] == acc_id and contact["Account"]["Phone"] == "+1 416-555-0000"


def test_composite_all_or_none_false_keeps_successes(sf):
    m = marker()
    out = sf.restful("composite", method="POST", json=_composite(False, m, fail_second=True))["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [201, 400, 200, 204]
    assert out[1]["body"][0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sf.query(f"SELECT COUNT() FROM Account WHERE Name = 'Comp {m}'")["totalSize"] == 1
    dependent = sf.restful("composite", method="POST", json={"allOrNone": False, "compositeRequest": [
        {"method": "POST", "url": f"{V}/sobjects/Contact", "referenceId": "bad", "body": {"FirstName": "x"}},
        {"method": "PATCH", "url": f"{V}/sobjects/Contact/@{{bad.id}}", "referenceId": "dep", "body": {}},
    ]})["compositeResponse"]
    assert dependent[0]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert dependent[1]["httpStatusCode"] == 400 and dependent[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_composite_all_or_none_true_rolls_back(sf, salesforce):
    m = marker()
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce)) as c:
        c.post("/_emulator/stats/reset").raise_for_status()
    out = sf.restful("composite", method="POST", json=_composite(True, m, fail_second=True))["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [400, 400, 400, 400]
    assert out[1]["body"][0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    for i in (0, 2, 3):
        assert out[i]["body"] == [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back "
                                   "since another operation in the same transaction failed."}]
    assert sf.query(f"SELECT COUNT() FROM Account WHERE Name = 'Comp {m}'")["totalSize"] == 0
    ok = sf.restful("composite", method="POST", json=_composite(True, m, fail_second=False))["compositeResponse"]
    assert [r["httpStatusCode"] for r in ok] == [201, 201, 200, 204]
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce)) as c:
        stats = c.get("/_emulator/stats").json()
    assert stats["byRoute"]["POST /services/data/v62.0/composite"] == 2  # a composite is one request


async def test_composite_commits_each_subrequest_before_the_next(salesforce):
    """allOrNone=false: a reader sees the first write while the second is still running."""
    m = marker()
    token = get_token(salesforce)
    async with httpx.AsyncClient(base_url=salesforce.instance_url, verify=tls(salesforce), timeout=20,
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        (await c.post("/_emulator/faults", json={"delay_next": [
            {"method": "PATCH", "path_regex": "/sobjects/Account/", "seconds": 1.5, "count": 1}]})).raise_for_status()
        started = time.monotonic()
        composite = asyncio.create_task(c.post(f"{V}/composite", json=_composite(False, m, fail_second=False)))
        seen = 0
        while time.monotonic() - started < 1.2 and not seen:
            await asyncio.sleep(0.1)
            r = await c.get(f"{V}/query", params={"q": f"SELECT COUNT() FROM Account WHERE Name = 'Comp {m}'"})
            seen = r.json()["totalSize"]
        assert seen == 1 and not composite.done()  # other requests are served during the delay
        resp = await composite
        assert time.monotonic() - started >= 1.5
        assert [x["httpStatusCode"] for x in resp.json()["compositeResponse"]] == [201, 201, 200, 204]


# -- faults, rules, limits, stats ---------------------------------------------------------------


def test_fail_next_then_recover(sf, salesforce, http):
    http.post("/_emulator/faults", json={"fail_next": [
        {"method": "POST", "path_regex": "/sobjects/Contact$", "status": 503, "errorCode": "SERVER_UNAVAILABLE",
         "count": 2}]}).raise_for_status()
    assert http.get("/_emulator/faults").json()["fail_next"][0]["count"] == 2
    for _ in range(2):
        r = http.post(f"{V}/sobjects/Contact", json={"LastName": "x"})
        assert r.status_code == 503 and r.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
        assert r.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert http.post(f"{V}/sobjects/Contact", json={"LastName": "x"}).status_code == 201
    assert http.get("/_emulator/faults").json()["fail_next"] == []


def test_fail_next_matches_composite_subrequests(sf, http):
    m = marker()
    http.post("/_emulator/faults", json={"fail_next": [
        {"method": "POST", "path_regex": "/sobjects/Contact$", "status": 500, "count": 1}]}).raise_for_status()
    out = sf.restful("composite", method="POST", json=_composite(False, m, fail_second=False))["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [201, 500, 200, 204]
    assert out[1]["body"][0]["errorCode"] == "UNKNOWN_EXCEPTION"


def test_random_faults_and_lock_errors(sf, http):
    http.post("/_emulator/faults", json={"unable_to_lock_row_rate": 1.0}).raise_for_status()
    r = http.post(f"{V}/sobjects/Contact", json={"LastName": "x"})
    assert r.status_code == 400
    body = r.json()[0]
    assert body["errorCode"] == "UNABLE_TO_LOCK_ROW" and body["fields"] == []
    assert body["message"].startswith("unable to obtain exclusive access to this record or 1 records: ")
    assert http.get(f"{V}/sobjects").status_code == 200  # reads don't lock
    http.delete("/_emulator/faults")
    http.post("/_emulator/faults", json={"error_rate": 1.0, "error_status": 500}).raise_for_status()
    r = http.get(f"{V}/sobjects")
    assert r.status_code == 500 and r.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    http.delete("/_emulator/faults")
    http.post("/_emulator/faults", json={"latency_ms": 300}).raise_for_status()
    started = time.monotonic()
    http.get(f"{V}/limits")
    assert time.monotonic() - started >= 0.3


def test_request_limit_and_usage_header(sf, http):
    sf.query("SELECT COUNT() FROM Contact")
    usage = sf.api_usage["api-usage"]
    assert usage.total == 100000 and 1 <= usage.used <= usage.total
    limits = http.get(f"{V}/limits").json()["DailyApiRequests"]
    assert limits["Max"] == 100000 and limits["Remaining"] < 100000
    http.post("/_emulator/faults", json={"request_limit_exceeded": True}).raise_for_status()
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.query("SELECT COUNT() FROM Contact")
    assert error_of(exc.value) == {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}


def test_validation_rule(sf, http):
    cid = sf.Contact.create({"LastName": marker()})["id"]
    r = http.post("/_emulator/validation-rules", json={"sobject": "Task", "field": "Subject", "contains": "REJECT",
                                                       "message": "Subject may not contain REJECT"})
    assert r.status_code == 200
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Task.create({"Subject": "please REJECT me", "WhoId": cid})
    assert error_of(exc.value) == {"message": "Subject may not contain REJECT",
                                   "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": []}
    tid = sf.Task.create({"Subject": "fine", "WhoId": cid})["id"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Task.update(tid, {"Subject": "REJECT"})
    http.delete("/_emulator/validation-rules")
    assert sf.Task.update(tid, {"Subject": "REJECT"}) == 204


def test_stats_count_requests_by_route(sf, http):
    http.post("/_emulator/stats/reset").raise_for_status()
    cid = sf.Contact.create({"LastName": marker()})["id"]
    sf.Contact.get(cid)
    sf.query("SELECT COUNT() FROM Contact")
    stats = http.get("/_emulator/stats").json()
    assert stats["apiRequests"] == 3
    assert stats["byRoute"] == {"POST /services/data/v62.0/sobjects/Contact": 1,
                                "GET /services/data/v62.0/sobjects/Contact/{id}": 1,
                                "GET /services/data/v62.0/query": 1}


# -- search, replication ---------------------------------------------------------------------------


def test_sosl_phone_search_ignores_formatting(sf, http):
    m = marker()
    a = sf.Contact.create({"LastName": m, "FirstName": "Fmt", "Phone": "(512) 555-0142"})["id"]
    b = sf.Contact.create({"LastName": m, "FirstName": "Intl", "MobilePhone": "+1 512.555.0142 x12"})["id"]
    sf.Contact.create({"LastName": m, "FirstName": "Other", "Phone": "(512) 555-0143"})
    found = sf.search("FIND {5125550142} IN PHONE FIELDS RETURNING Contact(Id, Name, Phone, MobilePhone "
                      f"WHERE LastName = '{m}' ORDER BY FirstName)")
    assert [r["Id"] for r in found["searchRecords"]] == [a, b]
    assert found["searchRecords"][0]["attributes"]["type"] == "Contact"
    email = sf.Contact.create({"LastName": m, "Email": f"{m}@Example.com"})["id"]
    hits = sf.search(f"FIND {{{m.lower()}@example.com}} IN EMAIL FIELDS RETURNING Contact(Id)")["searchRecords"]
    assert [r["Id"] for r in hits] == [email]
    names = sf.search(f"FIND {{{m}}} IN NAME FIELDS RETURNING Contact(Id), Account(Id) LIMIT 2")["searchRecords"]
    assert len(names) == 2
    for bad in ("FIND {a OR} RETURNING Contact", "FIND {(a b} RETURNING Contact", "FIND {NOT a} RETURNING Contact"):
        r = http.get(f"{V}/search", params={"q": bad})
        assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_SEARCH", bad


def test_sosl_boolean_operators_and_phrases(sf):
    m = marker()
    ids = {first: sf.Contact.create({"LastName": m, "FirstName": first, "Title": title})["id"]
           for first, title in (("Ann", "Help Desk Lead"), ("Bob", "Desk Manager"), ("Cid", "Lead Engineer"))}

    def found(expr: str) -> set[str]:
        hits = sf.search(f"FIND {{{expr}}} IN ALL FIELDS RETURNING Contact(Id, FirstName WHERE LastName = '{m}')")
        return {r["FirstName"] for r in hits["searchRecords"]}

    assert found("Ann OR Bob") == {"Ann", "Bob"}
    assert found("desk lead") == {"Ann"}  # words side by side: implicit AND
    assert found("desk AND NOT lead") == {"Bob"}
    assert found('"desk lead" OR "lead engineer"') == {"Ann", "Cid"}  # phrases: adjacent words
    assert found('"lead desk"') == set()
    assert found("(Ann OR Cid) AND lead") == {"Ann", "Cid"}
    assert found("Ann OR Cid AND NOT engineer") == {"Ann"}  # AND NOT binds tighter than OR
    assert ids


def test_get_updated_and_deleted(sf):
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    cid = sf.Contact.create({"LastName": marker()})["id"]
    gone = sf.Contact.create({"LastName": marker()})["id"]
    sf.Contact.delete(gone)
    end = datetime.now(timezone.utc) + timedelta(minutes=2)
    updated = sf.Contact.updated(start, end)
    assert cid in updated["ids"] and gone not in updated["ids"] and updated["latestDateCovered"].endswith("+0000")
    deleted = sf.Contact.deleted(start, end)
    assert gone in [d["id"] for d in deleted["deletedRecords"]]
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.updated(end, start)
    assert error_of(exc.value)["errorCode"] == "INVALID_REPLICATION_DATE"


def test_bulk2_query_job_csv_paging(sf, http):
    import csv
    import io

    m = marker()
    acc = sf.Account.create({"Name": f"Bulk, {m}"})["id"]
    records = [{"attributes": {"type": "Contact"}, "LastName": m, "FirstName": f"B{i:02d}", "AccountId": acc}
               for i in range(25)]
    assert all(r["success"] for r in http.post(f"{V}/composite/sobjects", json={"records": records}).json())
    pages = list(sf.bulk2.Contact.query(f"SELECT Id, FirstName, Account.Name FROM Contact WHERE LastName = '{m}' "
                                        "ORDER BY FirstName", max_records=10, wait=0))
    assert len(pages) == 3
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert [r["FirstName"] for r in rows] == [f"B{i:02d}" for i in range(25)]
    assert rows[0]["Account.Name"] == f"Bulk, {m}" and pages[0].startswith('"Id","FirstName","Account.Name"')
    job = http.post(f"{V}/jobs/query", json={"operation": "query", "query": "SELECT COUNT() FROM Contact"})
    assert job.status_code == 400
    bad = http.post(f"{V}/jobs/query", json={"operation": "query", "query": "SELECT Nope FROM Contact"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"


# -- describe, pages ------------------------------------------------------------------------------


def test_describe(sf):
    names = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert names["Contact"]["keyPrefix"] == "003" and names["Task"]["keyPrefix"] == "00T"
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    ext = fields["Genesys_Contact_Id__c"]
    assert ext["externalId"] and ext["unique"] and ext["length"] == 64 and ext["type"] == "string"
    assert fields["LastName"]["nillable"] is False and fields["Name"]["createable"] is False
    assert [p["value"] for p in fields["Custom_Tier__c"]["picklistValues"]] == ["Standard", "Premium", "Enterprise"]
    task = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert task["TaskSubtype"]["createable"] and not task["TaskSubtype"]["updateable"]
    assert task["WhoId"]["relationshipName"] == "Who"


def test_record_page_shows_contact_timeline(sf, salesforce):
    m = marker()
    acc = sf.Account.create({"Name": f"Page <b>{m}</b>"})["id"]
    cid = sf.Contact.create({"FirstName": "Pat", "LastName": m, "AccountId": acc, "Custom_Tier__c": "Enterprise",
                             "Phone": "(512) 555-7777"})["id"]
    sf.Case.create({"Subject": "VPN down", "ContactId": cid})
    sf.Task.create({"Subject": "Older call", "WhoId": cid, "ActivityDate": "2026-03-01", "CallType": "Inbound",
                    "CallDurationInSeconds": 60})
    sf.Task.create({"Subject": "Newest call", "WhoId": cid, "ActivityDate": "2026-03-14", "CallType": "Inbound",
                    "CallDurationInSeconds": 95, "Description": "<script>x</script>"})
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce)) as c:
        for path in (f"/{cid}", f"/lightning/r/Contact/{cid}/view", f"/{cid[:15]}"):
            r = c.get(path)
            assert r.status_code == 200 and "text/html" in r.headers["content-type"]
            html = r.text
            assert f"Pat {m}" in html and "Enterprise" in html and "(512) 555-7777" in html and "VPN down" in html
            assert html.index("Newest call") < html.index("Older call")
            assert "<script>x" not in html and "&lt;b&gt;" in html
        account = c.get(f"/lightning/r/Account/{acc}/view")
        assert account.status_code == 200 and f"Pat {m}" in account.text
        assert "Open Cases (0)" in account.text
        sf.Case.create({"Subject": "Billing portal", "AccountId": acc})
        sf.Task.create({"Subject": "Account call", "WhatId": acc, "CallType": "Outbound"})
        account = c.get(f"/{acc}").text
        assert "Open Cases (1)" in account and "Billing portal" in account and "Account call" in account
        assert c.get(f"/lightning/r/Contact/{acc}/view").status_code == 404  # type must match the id
        assert c.get("/lightning/r/Contact/0038dZZZZZZZZZZ/view").status_code == 404
        assert "Newest call" in c.get("/_emulator/").text


# -- seed and persistence -------------------------------------------------------------------------


def _contacts(data_dir) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(data_dir / "org.db") as conn:
        return conn.execute("SELECT Id, Name, Email, Phone, MobilePhone, HomePhone, OtherPhone, MailingCountry, "
                            "AccountId, Custom_Tier__c FROM Contact ORDER BY rid").fetchall()


def test_seed_is_deterministic_and_messy_on_purpose(tmp_path):
    import re
    import sqlite3

    from emulators.salesforce.seed import build_techsupport_org

    # No timing here: a speed target is a bench's (it failed a loaded clean-clone run at 2.3 s).
    counts = build_techsupport_org(tmp_path / "a", contacts=3000)
    assert counts["reused"] is False and counts["contacts"] == 3000 and counts["accounts"] >= 4
    assert build_techsupport_org(tmp_path / "a", contacts=3000)["reused"] is True
    build_techsupport_org(tmp_path / "b", contacts=3000)
    rows = _contacts(tmp_path / "a")
    assert rows == _contacts(tmp_path / "b")  # same seed, same org (ids included)
    with sqlite3.connect(tmp_path / "a" / "org.db") as conn:
        accounts = dict(conn.execute("SELECT Id, Phone FROM Account").fetchall())
        names = {n for (n,) in conn.execute("SELECT Name FROM Account")}
        assert "Unknown callers" in names
        assert any("Austin" in n for n in names) and any("Toronto" in n for n in names)
        assert any("São Paulo" in n for n in names)
        assert conn.execute("SELECT COUNT(*) FROM Account WHERE BillingCountry IS NULL OR BillingCity IS NULL "
                            "OR AccountNumber IS NULL").fetchone()[0] == 0
    phones = [p for r in rows for p in r[3:7] if p]
    patterns = {
        r"^\(\d{3}\) \d{3}-\d{4}$", r"^\d{3}\.\d{3}\.\d{4}$", r"^\+1 \d{3}-\d{3}-\d{4}$", r"^\d{10}$",
        r"^\d{3}-\d{3}-\d{4} x\d+$", r"^\+55 \d{2} 9\d{4}-\d{4}$", r"^\(\d{2}\) 9\d{4}-\d{4}$", r"^011 55 \d{2} ",
    }
    for pattern in patterns:
        assert any(re.search(pattern, p) for p in phones), pattern
    assert sum(1 for r in rows if not any(r[3:7])) > 30  # some contacts have no phone at all
    assert sum(1 for r in rows if r[8] and r[3] == accounts.get(r[8])) > 30  # company main line
    emails = [r[2] for r in rows if r[2]]
    assert len({e.lower() for e in emails}) < len(set(emails))  # duplicates differing only by case
    assert sum(1 for r in rows if r[7]) > 0.8 * len(rows)
    assert {r[9] for r in rows} == {"Standard", "Premium", "Enterprise"}


def test_seed_cli_and_restart_keep_the_org(tmp_path):
    import subprocess
    import sys

    from devstack.processes import ManagedProcess, free_port, python_module

    data_dir = tmp_path / "sf"
    out = subprocess.run(python_module("emulators.salesforce", "seed", "--data-dir", str(data_dir), "--contacts",
                                       "200", "--random-seed", "7"), capture_output=True, text=True, check=True)
    assert "built" in out.stdout
    again = subprocess.run(python_module("emulators.salesforce", "seed", "--data-dir", str(data_dir)),
                           capture_output=True, text=True, check=True)
    assert "reused" in again.stdout
    port = free_port()
    argv = python_module("emulators.salesforce", "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                         str(data_dir), "--client-id", "c", "--client-secret", "s", "--daily-api-limit", "5",
                         "--sosl-lag-seconds", "0.5")
    proc = ManagedProcess("sf-restart", argv, ready_url=f"https://127.0.0.1:{port}/_emulator/health",
                          ca_file=data_dir / "ca.pem", log_path=tmp_path / "sf.log")
    proc.start()
    base = f"https://127.0.0.1:{port}"
    ctx = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
    try:
        with httpx.Client(base_url=base, verify=ctx) as c:
            token = c.post("/services/oauth2/token", data={"grant_type": "client_credentials", "client_id": "c",
                                                           "client_secret": "s"}).json()["access_token"]
            c.headers["Authorization"] = f"Bearer {token}"
            r = c.get(f"{V}/query", params={"q": "SELECT COUNT() FROM Contact"})
            assert r.json()["totalSize"] == 200 and r.headers["Sforce-Limit-Info"] == "api-usage=1/5"
            cid = c.post(f"{V}/sobjects/Contact", json={"LastName": "Survivor"}).json()["id"]
            # The search index lags writes by --sosl-lag-seconds.
            search = {"q": "FIND {Survivor} IN NAME FIELDS RETURNING Contact(Id)"}
            assert c.get(f"{V}/search", params=search).json()["searchRecords"] == []
            time.sleep(0.6)
            assert c.get(f"{V}/search", params=search).json()["searchRecords"][0]["Id"] == cid
        ca_before = (data_dir / "ca.pem").read_bytes()
        proc.stop()
        proc.start()
        assert (data_dir / "ca.pem").read_bytes() == ca_before  # certificates are reused
        ctx = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
        with httpx.Client(base_url=base, verify=ctx, headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.get(f"{V}/sobjects/Contact/{cid}").json()["LastName"] == "Survivor"  # token and data survive
            for _ in range(4):
                c.get(f"{V}/limits")
            r = c.get(f"{V}/limits")
            assert r.status_code == 403 and r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    finally:
        proc.stop()


def test_oauth_password_refresh_and_jwt_bearer_flows(tmp_path):
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from devstack.processes import ManagedProcess, free_port, python_module

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "app.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    data_dir, port = tmp_path / "sf", free_port()
    proc = ManagedProcess("sf-oauth", python_module(
        "emulators.salesforce", "serve", "--port", str(port), "--data-dir", str(data_dir), "--client-id", "app",
        "--client-secret", "shh", "--username", "integration@techsupport.example", "--password", "pw",
        "--jwt-public-key", str(tmp_path / "app.pub")), ready_url=f"https://127.0.0.1:{port}/_emulator/health",
        ca_file=data_dir / "ca.pem", log_path=tmp_path / "sf.log").start()
    try:
        ctx = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx) as c:
            def token(**form):
                return c.post("/services/oauth2/token", data=form)

            pw = token(grant_type="password", client_id="app", client_secret="shh",
                       username="integration@techsupport.example", password="pw")
            assert pw.status_code == 200 and pw.json()["refresh_token"]
            wrong = token(grant_type="password", client_id="app", client_secret="shh",
                          username="integration@techsupport.example", password="nope")
            assert wrong.status_code == 400 and wrong.json() == {"error": "invalid_grant",
                                                                 "error_description": "authentication failure"}
            refreshed = token(grant_type="refresh_token", client_id="app", client_secret="shh",
                              refresh_token=pw.json()["refresh_token"])
            assert refreshed.status_code == 200 and "refresh_token" not in refreshed.json()
            access = refreshed.json()["access_token"]
            assert c.get(f"{V}/limits", headers={"Authorization": f"Bearer {access}"}).status_code == 200
            assert token(grant_type="refresh_token", client_id="app", client_secret="shh",
                         refresh_token="bogus").json()["error"] == "invalid_grant"
            claims = {"iss": "app", "sub": "integration@techsupport.example", "aud": "https://login.salesforce.com",
                      "exp": int(time.time()) + 180}
            grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
            ok = token(grant_type=grant, assertion=jwt.encode(claims, key, algorithm="RS256"))
            assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer"
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            forged = token(grant_type=grant, assertion=jwt.encode(claims, other, algorithm="RS256"))
            assert forged.status_code == 400 and forged.json()["error"] == "invalid_grant"
            stranger = token(grant_type=grant, assertion=jwt.encode({**claims, "sub": "x@y"}, key, algorithm="RS256"))
            assert stranger.status_code == 400
    finally:
        proc.stop()


# -- added: cascade, upsert statuses, child paging, session refresh, latency, start-time faults ------


def test_contact_delete_cascades_to_its_activities(sf, http):
    m = marker()
    cid = sf.Contact.create({"LastName": m})["id"]
    other = sf.Contact.create({"LastName": m})["id"]
    task = sf.Task.create({"Subject": f"call {m}", "WhoId": cid})["id"]
    kept = sf.Task.create({"Subject": f"call {m}", "WhoId": other})["id"]
    event = sf.Event.create({"Subject": f"visit {m}", "WhoId": cid, "StartDateTime": "2026-03-14T10:00:00Z",
                             "EndDateTime": "2026-03-14T11:00:00Z"})["id"]
    consent = sf.Contact_Consent__c.create({"Contact__c": cid, "Consent_Type__c": "Call Recording",
                                            "Channel__c": "Phone"})["id"]
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    assert sf.Contact.delete(cid) == 204
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    # Tasks and Events go to the recycle bin with their contact: gone from query, seen by queryAll.
    assert sf.query(f"SELECT Id FROM Task WHERE Subject = 'call {m}'")["records"][0]["Id"] == kept
    gone = sf.query_all(f"SELECT Id, IsDeleted FROM Task WHERE Subject = 'call {m}' ORDER BY IsDeleted",
                        include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in gone] == [(kept, False), (task, True)]
    assert sf.query(f"SELECT COUNT() FROM Event WHERE Id = '{event}'")["totalSize"] == 0
    assert sf.query_all(f"SELECT IsDeleted FROM Event WHERE Id = '{event}'",
                        include_deleted=True)["records"][0]["IsDeleted"] is True
    assert task in {d["id"] for d in sf.Task.deleted(start, end)["deletedRecords"]}
    assert event in {d["id"] for d in sf.Event.deleted(start, end)["deletedRecords"]}
    with pytest.raises(SalesforceResourceNotFound):
        sf.Task.get(task)
    # The consent's lookup is cleared (deleteConstraint SetNull), the consent stays.
    assert sf.Contact_Consent__c.get(consent)["Contact__c"] is None
    rels = {r["relationshipName"]: r for r in sf.Contact.describe()["childRelationships"]}
    assert rels["Tasks"]["cascadeDelete"] and rels["Events"]["cascadeDelete"] and not rels["Cases"]["cascadeDelete"]
    # Restricted picklists as the deployed metadata defines them.
    bad = http.post(f"{V}/sobjects/Contact_Consent__c", json={"Channel__c": "Pigeon"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_upsert_statuses_by_api_version(http):
    gid = marker()
    url = f"/services/data/{{v}}/sobjects/Contact/Genesys_Contact_Id__c/{gid}"
    created = http.patch(url.format(v="v62.0"), json={"LastName": gid})
    assert created.status_code == 201 and created.json()["created"] is True
    assert created.headers["Location"].endswith(created.json()["id"])
    updated = http.patch(url.format(v="v62.0"), json={"Title": "x"})
    assert updated.status_code == 200
    assert updated.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": False}
    old = http.patch(url.format(v="v45.0"), json={"Title": "y"})  # before v46.0: 204 No Content
    assert old.status_code == 204 and old.content == b""
    missing = http.patch(f"{V}/sobjects/Contact/Genesys_Contact_Id__c/{marker()}?updateOnly=true",
                         json={"LastName": "x"})
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"


def test_child_subquery_results_page(sf):
    m = marker()
    cid = sf.Contact.create({"LastName": m})["id"]
    tasks = [{"attributes": {"type": "Task"}, "Subject": f"{m}-{i:03d}", "WhoId": cid} for i in range(205)]
    for chunk in (tasks[:200], tasks[200:]):
        assert all(r["success"] for r in sf.restful("composite/sobjects", method="POST",
                                                    json={"allOrNone": True, "records": chunk}))
    rec = sf.query(f"SELECT Id, (SELECT Subject FROM Tasks ORDER BY Subject) FROM Contact "
                   f"WHERE Id = '{cid}'")["records"][0]
    child = rec["Tasks"]
    assert child["totalSize"] == 205 and child["done"] is False and len(child["records"]) == 200
    assert child["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g")
    rest = sf.query_more(child["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] is True and rest["totalSize"] == 205
    subjects = [r["Subject"] for r in child["records"] + rest["records"]]
    assert subjects == [t["Subject"] for t in tasks]
    small = sf.query(f"SELECT Id, (SELECT Id FROM Tasks LIMIT 3) FROM Contact WHERE Id = '{cid}'")["records"][0]
    assert small["Tasks"]["done"] is True and small["Tasks"]["totalSize"] == 3


def test_simple_salesforce_logs_in_again_after_session_expiry(salesforce):
    """simple-salesforce re-runs its login on 401 INVALID_SESSION_ID; here that login is the
    client-credentials flow against the emulator (its own builder targets *.salesforce.com)."""
    sf = make_sf(salesforce)
    logins = []

    def client_credentials_login() -> tuple[str, str]:
        logins.append(get_token(salesforce))
        return logins[-1], salesforce.instance_url.removeprefix("https://")

    sf._salesforce_login_partial = client_credentials_login
    before = sf.session_id
    sf.query("SELECT COUNT() FROM Contact")
    with httpx.Client(base_url=salesforce.instance_url, verify=tls(salesforce)) as c:
        c.post("/_emulator/sessions/expire").raise_for_status()
    assert sf.query("SELECT COUNT() FROM Contact")["done"] is True
    assert len(logins) == 1 and sf.session_id == logins[0] != before
    assert sf.api_usage["api-usage"].used >= 1


def test_latency_distributions():
    import random
    import statistics

    from emulators.salesforce.faults import Faults, Latency

    rng = random.Random(1)
    lognormal = Latency.parse({"distribution": "lognormal", "median": 150, "p99": 600})
    samples = sorted(lognormal.sample(rng) for _ in range(20000))
    assert 140 < statistics.median(samples) < 160
    assert 540 < samples[int(0.99 * len(samples))] < 660
    uniform = Latency.parse({"distribution": "uniform", "min": 50, "max": 80})
    assert all(50 <= uniform.sample(rng) <= 80 for _ in range(1000))
    assert Latency.parse(25).sample(rng) == 25
    for bad in ({"distribution": "pareto"}, {"distribution": "uniform", "min": 5, "max": 1}, -1,
                {"distribution": "lognormal", "median": 0, "p99": 1}):
        with pytest.raises((ValueError, KeyError)):
            Latency.parse(bad)
    faults = Faults()
    faults.merge({"latency_ms": {"distribution": "uniform", "min": 50, "max": 80}})
    assert faults.snapshot()["latency_ms"] == {"distribution": "uniform", "min": 50.0, "max": 80.0}


def test_latency_distribution_at_run_time(http):
    r = http.post("/_emulator/faults", json={"latency_ms": {"distribution": "uniform", "min": 150, "max": 200}})
    assert r.status_code == 200 and r.json()["latency_ms"]["distribution"] == "uniform"
    started = time.monotonic()
    assert http.get(f"{V}/limits").status_code == 200
    assert 0.15 <= time.monotonic() - started < 1.0
    assert http.post("/_emulator/faults", json={"latency_ms": {"distribution": "nope"}}).status_code == 400


def test_faults_at_start_token_ttl_and_rules_survive_restart(tmp_path):
    import json
    import subprocess

    from devstack.processes import ManagedProcess, free_port, python_module

    data_dir, port = tmp_path / "sf", free_port()
    # The seed form, through the callbridge CLI.
    out = subprocess.run([str(Path(sys.executable).parent / "callbridge-dev"), "emulate", "salesforce", "--seed",
                          "techsupport", "--contacts", "40", "--data-dir", str(data_dir)],
                         capture_output=True, text=True, check=True)
    assert "built TechSupport Inc." in out.stdout and "40 contacts" in out.stdout
    faults = {"fail_next": [{"method": "GET", "path_regex": "/sobjects$", "status": 503, "count": 1}]}
    proc = ManagedProcess("sf-faults", python_module(
        "emulators.salesforce", "serve", "--port", str(port), "--data-dir", str(data_dir), "--client-id", "c",
        "--client-secret", "s", "--token-ttl", "1", "--latency", '{"distribution": "uniform", "min": 1, "max": 2}',
        "--unable-to-lock-row-rate", "0", "--faults", json.dumps(faults)),
        ready_url=f"https://127.0.0.1:{port}/_emulator/health", ca_file=data_dir / "ca.pem",
        log_path=tmp_path / "sf.log").start()
    ctx = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx) as c:
            state = c.get("/_emulator/faults").json()
            assert state["latency_ms"] == {"distribution": "uniform", "min": 1.0, "max": 2.0}
            assert state["fail_next"][0]["count"] == 1
            token = c.post("/services/oauth2/token", data={"grant_type": "client_credentials", "client_id": "c",
                                                           "client_secret": "s"}).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            assert c.get(f"{V}/sobjects", headers=auth).status_code == 503  # the start-time rule
            assert c.get(f"{V}/sobjects", headers=auth).status_code == 200
            c.post("/_emulator/validation-rules", json={"sobject": "Contact", "field": "LastName",
                                                        "contains": "Forbidden", "message": "No."}).raise_for_status()
            time.sleep(1.1)  # --token-ttl 1
            expired = c.get(f"{V}/sobjects", headers=auth)
            assert expired.status_code == 401
            assert expired.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        proc.stop()
        proc.start()
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx) as c:
            assert c.get("/_emulator/validation-rules").json()[0]["contains"] == "Forbidden"
            token = c.post("/services/oauth2/token", data={"grant_type": "client_credentials", "client_id": "c",
                                                           "client_secret": "s"}).json()["access_token"]
            r = c.post(f"{V}/sobjects/Contact", json={"LastName": "Forbidden"},
                       headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 400 and r.json()[0]["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
            assert c.get(f"{V}/query", params={"q": "SELECT COUNT() FROM Contact"},
                         headers={"Authorization": f"Bearer {token}"}).json()["totalSize"] == 40
    finally:
        proc.stop()
    bad = subprocess.run(python_module("emulators.salesforce", "serve", "--data-dir", str(data_dir), "--client-id",
                                       "c", "--client-secret", "s", "--latency", '{"distribution": "nope"}'),
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "bad fault configuration" in bad.stderr
