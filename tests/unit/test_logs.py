"""PII masking in log lines."""

from __future__ import annotations

import pytest

from callbridge.core.logs import mask_pii, mask_text


@pytest.mark.parametrize(
    "text",
    ["call from +15125551234", "call from (512) 555-1234 today", "512.555.1234", "tel 512-555-1234",
     "+55 11 91234-5678", "mail john.doe@acme.com now", "/contacts/5125551234/"],
)
def test_phones_and_emails_are_masked(text):
    masked = mask_text(text)
    assert "555" not in masked.replace("[phone …34]", "") and "acme.com" not in masked and "91234" not in masked


@pytest.mark.parametrize(
    "text",
    ["call-log-e1629cbc-ed76-4a9f-90a4-d96c12345616d", "workflow 7f844a4e-1234567-a8ee-b4a74ca5fa35",
     "Task 00T8d000000000uEAA", "Contact 0038d00000000RMAAY", "took 1234 ms", "2026-11-24T06:37:45.875411Z"],
)
def test_identifiers_and_times_are_left_alone(text):
    assert mask_text(text) == text


def test_personal_keys_are_masked_whatever_their_value():
    event = mask_pii(None, "info", {"event": "x", "name": "Maria Silva", "agent_name": "Sam", "count": 3})
    assert event == {"event": "x", "name": "[masked]", "agent_name": "[masked]", "count": 3}


@pytest.mark.parametrize("text, gone", [
    # A library's error naming the URL it fetched: the query string goes whole.
    ("HTTPSConnectionPool(host='x', port=443): Max retries exceeded with url: /services/data/v62.0/query"
     "?q=SELECT+Id+FROM+Contact+WHERE+Phone+LIKE+%27%25415%25555%250123%25%27", ("q=", "LIKE", "%25")),
    ("number %2B14155550123 rang", ("4155550123", "%2B")),
    ("search %7B4155550123%7D", ("4155550123",)),
    ("mail jane.doe%40example.com", ("jane.doe",)),
    ("call 4155550123x42", ("4155550123",)),
    ("call 415-555-0123 ext. 42", ("555-0123",)),
    ("tel:+1-415-555-0123;ext=42", ("555-0123",)),
])
def test_encoded_forms_query_strings_and_extensions_are_masked(text, gone):
    masked = mask_text(text)
    for fragment in gone:
        assert fragment not in masked, (fragment, masked)
