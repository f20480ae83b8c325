"""Pure privacy logic: keyed hashes, tombstones, masking, consent, retention, certificates."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from callbridge.domain import privacy

KEY = "unit-test-key"


def test_keyed_hash_is_not_a_bare_sha256_and_depends_on_the_key():
    h = privacy.keyed_hash(KEY, "email", "Jane.Doe@Example.com")
    assert h == privacy.keyed_hash(KEY, "email", " jane.doe@example.com ")
    assert h != hashlib.sha256(b"jane.doe@example.com").hexdigest()  # a dictionary can't reverse it
    assert h != privacy.keyed_hash("another-key", "email", "jane.doe@example.com")
    assert privacy.keyed_hash(KEY, "sf_id", "0038d00000000RMAAY") == privacy.keyed_hash(KEY, "sf_id", "0038d00000000RM")


@given(st.emails())
def test_a_tombstone_matches_its_person_and_nobody_else(email):
    tombstones = set(privacy.subject_hashes(KEY, emails=[email], phones=["+15125550101"]))
    assert privacy.is_erased(tombstones, KEY, email=email.upper())
    assert privacy.is_erased(tombstones, KEY, phones=["+1 512 555 0101"])
    assert not privacy.is_erased(tombstones, KEY, email="x" + email)
    assert not privacy.is_erased(tombstones, KEY, phones=["+15125550102"], sf_ids=[None])


def test_masked_contact_keeps_last_four_digits_and_a_join_hash():
    row = privacy.masked_contact({"Id": "003A", "FirstName": "Jane", "LastName": "Doe", "Email": "jane@x.com",
                                  "Phone": "(512) 555-0147", "MobilePhone": None}, KEY)
    assert (row["FirstName"], row["LastName"], row["Email"]) == ("MASKED", "MASKED", "MASKED@masked.com")
    assert row["Phone"] == "XXX-XXX-0147" and row["MobilePhone"] == ""
    assert row["EmailHash"] == privacy.keyed_hash(KEY, "email", "jane@x.com")
    assert "Jane" not in str(row) and "555" not in str(row)


def test_consent_decides_sync():
    given_ = {"Consent_Type__c": "Data Processing", "Consent_Date__c": "2026-01-01T00:00:00Z", "Withdrawn__c": False}
    withdrawn = {**given_, "Withdrawn__c": True}
    assert privacy.may_sync([given_], "Data Processing", True)
    assert not privacy.may_sync([withdrawn], "Data Processing", True)
    assert not privacy.may_sync([], "Data Processing", True)
    assert not privacy.may_sync([{**given_, "Consent_Type__c": "Marketing"}], "Data Processing", True)
    assert privacy.may_sync([withdrawn, {**given_, "Consent_Date__c": "2026-02-01T00:00:00Z"}], "Data Processing", True)
    assert privacy.may_sync([], "Data Processing", False)


def test_recording_retention_decisions():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    seven_years = timedelta(days=7 * 365 + 2)
    old, new = now - timedelta(days=8 * 365), now - timedelta(days=30)
    kw = dict(on_legal_hold=False, subject_erased=False)
    assert privacy.evaluate_recording(old, now, seven_years, **kw) == "deleted_retention"
    assert privacy.evaluate_recording(new, now, seven_years, **kw) == "kept"
    assert privacy.evaluate_recording(old, now, seven_years, on_legal_hold=True, subject_erased=True) == "kept_legal_hold"
    assert privacy.evaluate_recording(new, now, seven_years, on_legal_hold=False, subject_erased=True) == "deleted_gdpr"


def test_certificate_holds_hashes_and_counts_only():
    cert = privacy.build_certificate(
        request_id="r", workflow_id="gdpr-erasure-r", subject_hash="abc",
        requested_at=datetime(2026, 1, 1, tzinfo=timezone.utc), completed_at=datetime(2026, 1, 2, tzinfo=timezone.utc),
        deleted={"salesforce.contacts": ["0038d00000000RMAAY"]}, verification={"salesforce.contacts": 0}, key=KEY)
    assert cert["deleted"]["salesforce.contacts"]["count"] == 1
    assert "0038d00000000RM" not in str(cert) and cert["verification"]["remaining"] == 0


def test_breach_scope_counts_people_and_types():
    scope = privacy.breach_scope([{"subject_hash": "a", "data_types": "phone,name"},
                                  {"subject_hash": "a", "data_types": "email"}, {"subject_hash": "b", "data_types": ""}])
    assert scope == {"people": 2, "dataTypes": ["email", "name", "phone"], "entries": 3}


def test_certificate_lists_legal_hold_keeps_with_the_reason_and_local_counts():
    cert = privacy.build_certificate(
        request_id="r", workflow_id="gdpr-erasure-r", subject_hash="abc",
        requested_at=datetime(2026, 1, 1, tzinfo=timezone.utc), completed_at=datetime(2026, 1, 2, tzinfo=timezone.utc),
        deleted={"genesys.recordings": ["rec-1"]}, verification={"genesys.recordings": 0}, key=KEY,
        kept={"genesys.recordings": ["rec-2"]}, local={"sync_audit": 3, "sync_pairs": 1})
    kept = cert["kept"]["genesys.recordings"]
    assert kept["count"] == 1 and kept["idHashes"] == [privacy.keyed_hash(KEY, "record", "rec-2")]
    assert "17(3)(e)" in kept["reason"] and "rec-2" not in str(cert)
    assert cert["localStores"] == {"sync_audit": 3, "sync_pairs": 1}


def test_field_names_map_to_data_types():
    from callbridge.store.privacy_audit import data_types_of_fields

    assert data_types_of_fields(["Email", "MobilePhone", "FirstName", "LastName", "Title", None]) == {
        "email", "phone_number", "name", "job_title", "contact"}
    assert data_types_of_fields(["Custom_Tier__c"]) == {"contact_field"}
