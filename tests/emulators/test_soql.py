"""SOQL parser and evaluator unit tests, run against a real SQLite store (no server)."""

from __future__ import annotations

from datetime import date

import pytest

from emulators.salesforce import schema, soql
from emulators.salesforce.errors import ApiError
from emulators.salesforce.store import Store

TODAY = date(2026, 3, 14)  # a Saturday


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "org.db")
    acme = s.create(schema.ACCOUNT, {"Name": "Acme", "BillingCountry": "US"})
    maple = s.create(schema.ACCOUNT, {"Name": "Maple 100%", "BillingCountry": "CA"})
    s.create(schema.CONTACT, {"FirstName": "John", "LastName": "O'Brien", "AccountId": acme, "Email": "John@Acme.com",
                              "Phone": "(512) 555-1234", "Custom_Tier__c": "Premium",
                              "Last_Call_Date__c": "2026-03-13T10:00:00Z", "Last_Call_Duration__c": 30})
    s.create(schema.CONTACT, {"FirstName": "john", "LastName": "Smith_Jr", "AccountId": acme, "Email": "john@acme.com",
                              "MobilePhone": "512.555.1234", "Last_Call_Date__c": "2026-03-14T09:00:00.000+0000",
                              "Last_Call_Duration__c": 300})
    s.create(schema.CONTACT, {"FirstName": "Ana", "LastName": "Silva", "AccountId": maple, "Phone": "+55 11 91234-5678",
                              "Custom_Tier__c": "Enterprise", "Last_Call_Date__c": "2026-03-01T00:00:00+00:00"})
    s.create(schema.CONTACT, {"LastName": "Nophone"})
    yield s
    s.close()


def run(store: Store, text: str, *, include_deleted: bool = False) -> tuple[int, list[dict]]:
    c = soql.compile_query(text, include_deleted=include_deleted, version="62.0", today=TODAY)
    return soql.total_size(store.conn, c), soql.fetch(store.conn, c, 0, 2000)


def names(store: Store, where: str, order: str = "LastName") -> list[str]:
    return [r["LastName"] for r in run(store, f"SELECT LastName FROM Contact WHERE {where} ORDER BY {order}")[1]]


def error(store: Store, text: str) -> ApiError:
    with pytest.raises(ApiError) as exc:
        run(store, text)
    return exc.value


# -- tokenizer / parser ---------------------------------------------------------------------------


def test_string_escapes():
    q = soql.parse(r"SELECT Id FROM Contact WHERE LastName = 'O\'Brien \\ \n \"x\"'")
    assert q.where.value.value == "O'Brien \\ \n \"x\""


def test_keywords_and_names_are_case_insensitive(store):
    assert run(store, "select lastname from CONTACT where LASTNAME = 'silva'")[1][0]["LastName"] == "Silva"


def test_date_and_datetime_literals_parse():
    q = soql.parse("SELECT Id FROM Contact WHERE Last_Call_Date__c > 2026-03-14T10:00:00Z AND CreatedDate < "
                   "2026-03-14T10:00:00.000+0000 AND LastActivityDate = 2026-03-14", today=TODAY)
    values = [item.value.value for item in q.where.items]
    assert values[:2] == ["2026-03-14T10:00:00.000+0000"] * 2 and values[2] == date(2026, 3, 14)


# -- evaluation -------------------------------------------------------------------------------


def test_equality_is_case_insensitive(store):
    assert names(store, "FirstName = 'JOHN'") == ["O'Brien", "Smith_Jr"]
    assert names(store, "Email = 'john@acme.com'") == ["O'Brien", "Smith_Jr"]


def test_like_wildcards_and_escapes(store):
    assert names(store, "Phone LIKE '%5%1%2%5%5%5%1%2%3%4' OR MobilePhone LIKE '%5%1%2%5%5%5%1%2%3%4'") == [
        "O'Brien", "Smith_Jr"]
    assert names(store, "LastName LIKE 'o\\'b%'") == ["O'Brien"]
    assert names(store, "LastName LIKE 'Smith\\_%'") == ["Smith_Jr"]
    assert names(store, "LastName LIKE 'S_lva'") == ["Silva"]
    assert names(store, "LastName LIKE 'Smith\\_'") == []
    assert run(store, "SELECT Name FROM Account WHERE Name LIKE '%100\\%'")[1][0]["Name"] == "Maple 100%"


def test_not_equal_and_not_in_include_nulls(store):
    assert names(store, "Custom_Tier__c != 'Premium'") == ["Nophone", "Silva", "Smith_Jr"]
    assert names(store, "Custom_Tier__c NOT IN ('Premium', 'Enterprise')") == ["Nophone", "Smith_Jr"]
    assert names(store, "Custom_Tier__c IN ('premium', 'Enterprise')") == ["O'Brien", "Silva"]
    assert names(store, "Phone = null") == ["Nophone", "Smith_Jr"]
    assert names(store, "Phone != null") == ["O'Brien", "Silva"]


def test_boolean_logic_and_parentheses(store):
    assert names(store, "(FirstName = 'john' OR FirstName = 'Ana') AND Custom_Tier__c != null") == ["O'Brien", "Silva"]
    assert names(store, "NOT FirstName = 'john'") == ["Nophone", "Silva"]
    assert names(store, "NOT (Phone = null AND MobilePhone = null)") == ["O'Brien", "Silva", "Smith_Jr"]


def test_numbers_and_datetimes(store):
    assert names(store, "Last_Call_Duration__c > 30") == ["Smith_Jr"]
    assert names(store, "Last_Call_Duration__c >= 30.0") == ["O'Brien", "Smith_Jr"]
    assert names(store, "Last_Call_Date__c >= 2026-03-13T10:00:00Z") == ["O'Brien", "Smith_Jr"]
    assert names(store, "Last_Call_Date__c < 2026-03-13T10:00:00.000+0000") == ["Silva"]


def test_relative_date_literals(store):
    assert names(store, "Last_Call_Date__c = TODAY") == ["Smith_Jr"]
    assert names(store, "Last_Call_Date__c = YESTERDAY") == ["O'Brien"]
    assert names(store, "Last_Call_Date__c = LAST_N_DAYS:2") == ["O'Brien", "Smith_Jr"]
    assert names(store, "Last_Call_Date__c = N_DAYS_AGO:13") == ["Silva"]
    assert names(store, "Last_Call_Date__c = THIS_WEEK") == ["O'Brien", "Smith_Jr"]  # Sun 8th .. Sat 14th
    assert names(store, "Last_Call_Date__c = LAST_WEEK") == ["Silva"]
    assert names(store, "Last_Call_Date__c < LAST_N_DAYS:2") == ["Silva"]
    assert names(store, "Last_Call_Date__c = NEXT_N_DAYS:5") == []
    everyone = ["O'Brien", "Silva", "Smith_Jr"]
    assert names(store, "Last_Call_Date__c = THIS_QUARTER") == everyone  # Jan..Mar 2026
    assert names(store, "Last_Call_Date__c = LAST_QUARTER") == []
    assert names(store, "Last_Call_Date__c < NEXT_QUARTER") == everyone
    assert names(store, "Last_Call_Date__c = THIS_YEAR") == everyone
    assert names(store, "Last_Call_Date__c > LAST_YEAR AND Last_Call_Date__c < NEXT_YEAR") == everyone
    assert names(store, "Last_Call_Date__c = LAST_90_DAYS") == everyone
    assert names(store, "Last_Call_Date__c = NEXT_90_DAYS") == []


def test_order_by_nulls_and_limit_offset(store):
    order = "Last_Call_Date__c DESC NULLS LAST"
    assert names(store, "LastName != null", order) == ["Smith_Jr", "O'Brien", "Silva", "Nophone"]
    assert names(store, "LastName != null", "Last_Call_Date__c ASC") == ["Nophone", "Silva", "O'Brien", "Smith_Jr"]
    assert names(store, "LastName != null", "Custom_Tier__c DESC NULLS FIRST, LastName") == [
        "Nophone", "Smith_Jr", "O'Brien", "Silva"]
    total, recs = run(store, "SELECT LastName FROM Contact ORDER BY LastName LIMIT 2 OFFSET 1")
    assert total == 2 and [r["LastName"] for r in recs] == ["O'Brien", "Silva"]


def test_count(store):
    total, recs = run(store, "SELECT COUNT() FROM Contact WHERE AccountId != null")
    assert (total, recs) == (3, [])


def test_parent_fields_and_child_subquery(store):
    total, recs = run(store, "SELECT Name, Account.Name, Account.BillingCountry FROM Contact ORDER BY Name")
    by_name = {r["Name"]: r for r in recs}
    assert by_name["Ana Silva"]["Account"]["Name"] == "Maple 100%"
    assert by_name["Ana Silva"]["Account"]["attributes"]["type"] == "Account"
    assert by_name["Nophone"]["Account"] is None
    assert names(store, "Account.BillingCountry = 'ca'") == ["Silva"]
    total, accounts = run(store, "SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName DESC) FROM Account "
                                 "ORDER BY Name")
    assert [c["LastName"] for c in accounts[0]["Contacts"]["records"]] == ["Smith_Jr", "O'Brien"]
    assert accounts[0]["Contacts"]["totalSize"] == 2 and accounts[0]["Contacts"]["done"] is True


def test_deleted_records_only_in_query_all(store):
    cid = run(store, "SELECT Id FROM Contact WHERE LastName = 'Nophone'")[1][0]["Id"]
    store.delete(schema.CONTACT, cid)
    assert run(store, "SELECT COUNT() FROM Contact")[0] == 3
    assert run(store, "SELECT COUNT() FROM Contact", include_deleted=True)[0] == 4
    assert run(store, "SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)[1][0]["Id"] == cid


def test_id_filters_accept_15_chars(store):
    acc = run(store, "SELECT Id FROM Account WHERE Name = 'Acme'")[1][0]["Id"]
    assert names(store, f"AccountId = '{acc[:15]}'") == ["O'Brien", "Smith_Jr"]


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "SELECT Id FROM Contact WHERE CreatedDate > LAST_N_MINUTES:5",
    "SELECT LastName FROM Contact GROUP BY LastName",
    "SELECT COUNT(Id) FROM Contact",
    "SELECT Id FROM Contact WHERE FirstName = 'a' AND LastName = 'b' OR Email = 'c'",
    "SELECT Id FROM Contact WHERE LastName = \"double\"",
    "SELECT Id FROM Contact WHERE",
    "SELECT Id, FROM Contact",
    "SELECT Id FROM Contact LIMIT 'x'",
    "SELECT Id FROM Contact WHERE Id IN (SELECT WhoId FROM Task)",
    "SELECT Id FROM Contact c",
    "SELECT Id, Id FROM Contact",
    "SELECT FIELDS(ALL) FROM Contact",
    "SELECT Id FROM Contact WHERE LastName = 'unterminated",
    "SELECT Id FROM Contact WHERE LastName = 'bad \\q escape'",
    "SELECT Id FROM Contact FOR UPDATE",
    "SELECT Id FROM Contact WHERE CreatedDate = THIS_FISCAL_YEAR",  # needs the org's fiscal year settings
    "SELECT Id FROM Contact WHERE CreatedDate = N_WEEKS_AGO:2",
])
def test_unsupported_or_malformed_is_refused(store, text):
    err = error(store, text)
    assert err.status == 400 and err.error_code == "MALFORMED_QUERY", err.message
    assert "ERROR at Row:1:Column:" in err.message


def test_unknown_field_message_shape(store):
    err = error(store, "SELECT Id, Foo FROM Contact")
    assert err.error_code == "INVALID_FIELD"
    assert err.message == (
        "\nSELECT Id, Foo FROM Contact\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity "
        "'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom "
        "field name. Please reference your WSDL or the describe call for the appropriate names.")
    assert error(store, "SELECT Account.Foo FROM Contact").error_code == "INVALID_FIELD"
    assert error(store, "SELECT Nope.Name FROM Contact").error_code == "INVALID_FIELD"
    assert error(store, "SELECT Id FROM Contact ORDER BY Nope").error_code == "INVALID_FIELD"


def test_unknown_object_and_type_mismatches(store):
    err = error(store, "SELECT Id FROM Foo__c")
    assert err.error_code == "INVALID_TYPE" and "sObject type 'Foo__c' is not supported" in err.message
    err = error(store, "SELECT Id FROM Contact WHERE Last_Call_Duration__c = '3'")
    assert err.error_code == "INVALID_FIELD" and "must be of type double" in err.message
    err = error(store, "SELECT Id FROM Contact WHERE Last_Call_Date__c = 2026-03-14")
    assert err.error_code == "INVALID_FIELD" and "must be of type dateTime" in err.message
    err = error(store, "SELECT Id FROM Contact WHERE LastName = 5")
    assert "should be enclosed in quotes" in err.message
    assert error(store, "SELECT Id FROM Contact WHERE AccountId = 'nope'").error_code == \
        "INVALID_QUERY_FILTER_OPERATOR"
    assert error(store, "SELECT Id FROM Contact WHERE Description = 'x'").error_code == "INVALID_FIELD"
    assert error(store, "SELECT Id FROM Contact OFFSET 2001").error_code == "NUMBER_OUTSIDE_VALID_RANGE"
