"""Accuracy corpus: phone numbers as people really type them into Salesforce.

Each row of tests/data/phone_formats.csv is one phone field of one Contact: the stored value,
the contact's MailingCountry (or its Account's BillingCountry), and the ANI Genesys would send
(E.164) when that contact calls. The test builds Salesforce-shaped Contact records from the
rows, indexes them the way the caller-ID index does (`callbridge.domain.caller_id.index_rows` with
default region "US"), looks every ANI up across *all* index rows, ranks the hits with
`rank_index_hits`, and checks that:

* every contact expected for an ANI is found (100 %, no row is allowed to miss),
* nothing else is found for that ANI (no false screen pop),
* where several contacts share a number, every one of them comes back, and the expected
  contact (own line first, then most recent) is ranked first.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from callbridge.domain.caller_id import index_rows, rank_index_hits
from callbridge.domain.matching import PHONE_FIELDS

CORPUS = Path(__file__).resolve().parents[1] / "data" / "phone_formats.csv"
COLUMNS = ["contact", "field", "stored", "mailing_country", "account_country", "ani", "last_call",
           "expect_first", "note"]


def _rows() -> list[dict[str, str]]:
    with CORPUS.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS, reader.fieldnames
        return list(reader)


ROWS = _rows()


def _records(rows: list[dict[str, str]]) -> list[dict]:
    """One Salesforce REST-shaped Contact per corpus contact key."""
    records: dict[str, dict] = {}
    for row in rows:
        key = row["contact"]
        record = records.setdefault(key, {
            "attributes": {"type": "Contact"},
            "Id": key,
            "FirstName": "First " + key, "LastName": "Last " + key,
            "AccountId": "acct-" + key,
            "Account": {"Name": "Account " + key, "AccountNumber": None,
                        "BillingCountry": row["account_country"] or None},
            "Phone": None, "MobilePhone": None, "HomePhone": None, "OtherPhone": None,
            "MailingCountry": row["mailing_country"] or None,
            "Custom_Tier__c": None, "Last_Call_Date__c": row["last_call"] or None,
            "LastActivityDate": None, "SystemModstamp": "2026-01-01T00:00:00.000+0000",
        })
        assert row["field"] in PHONE_FIELDS, row
        record[row["field"]] = row["stored"]
    return list(records.values())


def _index() -> dict[str, list[dict]]:
    by_e164: dict[str, list[dict]] = defaultdict(list)
    for record in _records(ROWS):
        for r in index_rows(record, "US"):
            by_e164[r["e164"]].append(r)
    return by_e164


INDEX = _index()
ANIS = sorted({row["ani"] for row in ROWS})


def test_corpus_is_big_and_varied_enough():
    assert len(ROWS) >= 40
    assert len({row["contact"] for row in ROWS}) >= 40
    for prefix in ("+1", "+44", "+49", "+55"):
        assert any(row["ani"].startswith(prefix) for row in ROWS), prefix
    # at least one ANI shared by several contacts, with an explicit expected winner
    shared = defaultdict(set)
    for row in ROWS:
        shared[row["ani"]].add(row["contact"])
    assert any(len(v) >= 3 for v in shared.values())
    assert all(row["ani"].startswith("+") and row["ani"][1:].isdigit() for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['contact']}-{r['field']}-{r['stored']}")
def test_each_stored_format_is_found_by_its_ani(row):
    hits = rank_index_hits(INDEX.get(row["ani"], []))
    found = [h["contact_id"] for h in hits]
    assert row["contact"] in found, (
        f"{row['stored']!r} ({row['field']}, country {row['mailing_country'] or row['account_country'] or '-'}) "
        f"not found for ANI {row['ani']}; index has "
        f"{[r['e164'] for r in INDEX_BY_CONTACT.get(row['contact'], [])]}"
    )


INDEX_BY_CONTACT: dict[str, list[dict]] = defaultdict(list)
for _rows_for_e164 in INDEX.values():
    for _r in _rows_for_e164:
        INDEX_BY_CONTACT[_r["contact_id"]].append(_r)


@pytest.mark.parametrize("ani", ANIS)
def test_every_candidate_and_only_them(ani):
    expected = {row["contact"] for row in ROWS if row["ani"] == ani}
    hits = rank_index_hits(INDEX.get(ani, []))
    found = [h["contact_id"] for h in hits]
    assert len(found) == len(set(found)), f"a contact listed twice for {ani}: {found}"
    assert set(found) == expected, f"{ani}: expected {sorted(expected)}, got {found}"


AMBIGUOUS = sorted({row["ani"] for row in ROWS if row["expect_first"]})


@pytest.mark.parametrize("ani", AMBIGUOUS)
def test_ambiguous_numbers_rank_own_line_then_most_recent(ani):
    want = {row["expect_first"] for row in ROWS if row["ani"] == ani and row["expect_first"]}
    assert len(want) == 1, f"corpus rows for {ani} disagree on the expected winner: {want}"
    hits = rank_index_hits(INDEX.get(ani, []))
    assert hits, f"nothing found for {ani}"
    assert hits[0]["contact_id"] == want.pop()
    # own lines always above shared company lines
    own = [h["own_line"] for h in hits]
    assert own == sorted(own, reverse=True), own


def test_shared_switchboard_is_not_an_own_line():
    hits = {h["contact_id"]: h for h in rank_index_hits(INDEX["+15125550200"])}
    assert hits["c45"]["own_line"] is True
    assert hits["c43"]["own_line"] is False and hits["c44"]["own_line"] is False
    # the two switchboard holders among themselves: most recent call first
    order = [h["contact_id"] for h in rank_index_hits(INDEX["+15125550200"])]
    assert order == ["c45", "c43", "c44"]


def test_no_false_positive_between_neighbouring_numbers():
    # +15125550300 (c47 office) and +15125550301 (c47 mobile) are distinct index keys
    assert {r["phone_field"] for r in INDEX["+15125550300"]} == {"Phone"}
    assert {r["phone_field"] for r in INDEX["+15125550301"]} == {"MobilePhone"}
