"""The pure parts of call logging: payload validation, ranking, Task fields."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from callbridge.domain.mapping import contact_last_call_fields, task_fields
from callbridge.domain.matching import rank_contacts
from callbridge.domain.models import CallEndedEvent, ContactMatch
from starter.webhooks import PayloadError, parse_event
from tests.helpers import call_event

SKEW = timedelta(minutes=5)


def event(**overrides) -> CallEndedEvent:
    return CallEndedEvent.model_validate(call_event("conv-1", "+15125551234", **overrides))


def test_task_fields_follow_the_seed_mapping():
    e = event(recordingId="rec-1", direction="outbound", calleeId="+15125550000")
    contact = ContactMatch(id="003000000000001AAA", name="John Doe", account_id="001000000000001AAA")
    other = ContactMatch(id="003000000000002AAA", name="Jane Doe")
    fields = task_fields(e, contact, who_id=contact.id, what_id=contact.account_id,
                         other_contacts=[other], recording_link="https://media/rec-1")
    assert fields["Subject"] == "Call with John Doe"
    assert fields["CallType"] == "Outbound" and "Outbound call to +15125550000" in fields["Description"]
    assert fields["WhoId"] == contact.id and fields["WhatId"] == contact.account_id
    assert fields["ActivityDate"] == e.end_time.date().isoformat()
    assert (fields["Status"], fields["Type"], fields["TaskSubtype"], fields["CallObject"]) == (
        "Completed", "Call", "Call", "conv-1")
    assert "Recording: https://media/rec-1" in fields["Description"]
    assert "Jane Doe (003000000000002AAA)" in fields["Description"]


def test_last_call_never_moves_backwards():
    e = event()
    later = ContactMatch(id="003000000000001AAA", name="x", last_call_date=e.end_time + timedelta(hours=1))
    assert contact_last_call_fields(e, later) is None
    earlier = ContactMatch(id="003000000000001AAA", name="x", last_call_date=e.end_time - timedelta(hours=1))
    assert contact_last_call_fields(e, earlier)["Last_Call_Duration__c"] == 630


def record(id_, typed, field="Phone", last_call=None, country="United States"):
    return {"Id": id_, "Name": id_, field: typed, "MailingCountry": country, "Last_Call_Date__c": last_call,
            "LastModifiedDate": "2026-01-01T00:00:00.000+0000"}


def test_rank_prefers_own_line_then_recent_activity_and_drops_false_hits():
    records = [
        record("003000000000001AAA", "(512) 555-1234", last_call="2026-03-01T00:00:00.000+0000"),
        record("003000000000002AAA", "512.555.1234", field="MobilePhone"),
        record("003000000000003AAA", "+1 512 555 1234", last_call="2026-03-02T00:00:00.000+0000"),
        record("003000000000004AAA", "512-555-12345"),  # a LIKE hit that is another number
    ]
    ranked = rank_contacts(records, "+15125551234", "US")
    assert [m.id for m in ranked] == ["003000000000002AAA", "003000000000003AAA", "003000000000001AAA"]


def test_rank_uses_the_contacts_country():
    records = [record("003000000000001AAA", "(11) 91234-5678", country="Brasil")]
    assert [m.id for m in rank_contacts(records, "+5511912345678", "US")] == ["003000000000001AAA"]


def test_parse_event_accepts_the_seed_payload():
    import json
    body = json.dumps(call_event("conversation-111", "+15551234567", attributes={"contact_id": "003xx000003SG"}))
    parsed = parse_event(body.encode(), datetime.now(timezone.utc), SKEW)
    assert parsed.conversation_id == "conversation-111" and parsed.attributes["contact_id"] == "003xx000003SG"


@pytest.mark.parametrize(
    "body, field",
    [
        (b"{not json", "body"),
        (b"[1,2]", "body"),
        (b"\xff\xfe{}", "body"),
        (b'{"conversationId": "a", "conversationId": "b"}', "conversationId"),
        (b"[" * 5000 + b"]" * 5000, "body"),
    ],
)
def test_parse_event_refuses_bad_bodies(body, field):
    with pytest.raises(PayloadError) as err:
        parse_event(body, datetime.now(timezone.utc), SKEW)
    assert err.value.fields[0]["field"] == field


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"conversationId": "../../etc"}, "conversationId"),
        ({"conversationId": "a b"}, "conversationId"),
        ({"durationSeconds": "630"}, "durationSeconds"),
        ({"durationSeconds": -1}, "durationSeconds"),
        ({"direction": "SIDEWAYS"}, "direction"),
        ({"startTime": "yesterday"}, "startTime"),
        ({"endTime": "2026-03-14T10:00:00"}, "endTime"),  # no timezone
        ({"attributes": {"contact_id": 3}}, "attributes.contact_id"),
    ],
)
def test_parse_event_names_the_bad_field(overrides, field):
    import json
    with pytest.raises(PayloadError) as err:
        parse_event(json.dumps(call_event("c-1", "+15125551234", **overrides)).encode(), datetime.now(timezone.utc), SKEW)
    assert err.value.fields[0]["field"] == field


def test_parse_event_refuses_calls_ending_in_the_future():
    import json
    now = datetime.now(timezone.utc)  # at the test, not at collection: the suite runs for minutes
    future = (now + timedelta(days=1)).isoformat()
    with pytest.raises(PayloadError) as err:
        parse_event(json.dumps(call_event("c-1", "+1", endTime=future)).encode(), now, SKEW)
    assert err.value.fields[0]["field"] == "endTime"
