"""The call-ended event's model against the official SDK, and a conversation read into the call
the workflow logs (issue #14, items 1 and 2). Pure: no stack."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from PureCloudPlatformClientV2.models import Conversation, CustomerEndDetailEventTopicCustomerEndEvent
from pydantic import ValidationError

from callbridge.domain.conversation import NotEnded, event_from_conversation
from callbridge.domain.genesys_events import CustomerEndEvent, EventError, is_envelope, parse_envelope, parse_event
from tests.call_ended import customer_end_event, eventbridge_envelope

SDK_EVENT = CustomerEndDetailEventTopicCustomerEndEvent()


def test_every_event_field_is_the_sdk_models_with_its_type():
    sdk_types = {SDK_EVENT.attribute_map[name]: kind for name, kind in SDK_EVENT.swagger_types.items()}
    for name, field in CustomerEndEvent.model_fields.items():
        assert field.alias in sdk_types, field.alias
        expected = {"int": int, "str": str}[sdk_types[field.alias]]
        assert expected.__name__ in str(field.annotation), (field.alias, field.annotation)


def test_the_test_bodies_are_sdk_events():
    event = customer_end_event("c-1")
    assert set(event) <= set(SDK_EVENT.attribute_map.values())
    envelope = eventbridge_envelope(event)
    assert is_envelope(envelope) and not is_envelope(event)
    assert parse_envelope(envelope)[1] == event


def test_an_unset_architect_input_is_an_absent_field():
    event = parse_event({**customer_end_event("c-1"), "externalContactId": "", "direction": ""})
    assert event.external_contact_id is None and event.direction is None
    with pytest.raises(EventError) as err:
        parse_event({**customer_end_event("c-1"), "mediaType": ""})
    assert [f["field"] for f in err.value.fields] == ["mediaType"]


def test_event_time_is_epoch_ms():
    event = parse_event({**customer_end_event("c-1"), "eventTime": 1765137600123})
    assert event.ended_at == datetime(2025, 12, 7, 20, 0, 0, 123000, tzinfo=timezone.utc)


def participant(purpose: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"p-{purpose}-{fields.get('userId', '')}", "purpose": purpose, "startTime": "2026-12-07T20:00:00.000Z",
            "attributes": {}, "calls": [{"id": "call", "direction": "inbound", "state": "terminated"}], **fields}


def conversation(**overrides: Any) -> dict[str, Any]:
    conv = {
        "id": "conv-1", "startTime": "2026-12-07T20:00:00.000Z", "endTime": "2026-12-07T20:02:05.000Z",
        "participants": [
            participant("customer", ani="tel:+15125550123", dnis="tel:+18005550100",
                        attributes={"contact_id": "003000000000001AAA", "contact_name": "Eve Example"},
                        calls=[{"id": "c", "direction": "inbound", "recordingId": "rec-1"}]),
            participant("acd", queueId="q-1", queueName="Support Queue"),
            participant("agent", userId="u-1", name="First Agent", queueId="q-1", queueName="Support Queue"),
            participant("agent", userId="u-2", name="Second Agent", queueId="q-2", queueName="Billing"),
        ],
    }
    conv.update(overrides)
    return conv


def test_the_conversation_is_an_sdk_conversation():
    # Only SDK model fields are read: each key above is one the Conversation/Participant/Call models have.
    from tests.emulators.test_genesys_emulator import assert_model

    assert_model(conversation(), "Conversation")
    assert "participants" in Conversation().attribute_map.values()


def test_a_conversation_becomes_the_call_the_workflow_logs():
    event = event_from_conversation(conversation())
    assert (event.conversation_id, event.direction, event.caller_id, event.callee_id) == (
        "conv-1", "INBOUND", "+15125550123", "+18005550100")
    assert (event.agent_id, event.agent_name) == ("u-2", "Second Agent")  # the last agent after a transfer
    assert (event.queue_id, event.queue_name) == ("q-1", "Support Queue")  # the queue the call came in on
    assert (event.duration_seconds, event.recording_id) == (125, "rec-1")
    assert event.attributes["contact_id"] == "003000000000001AAA"
    assert event.customer_number == "+15125550123"


def test_an_outbound_call_is_to_the_external_participant():
    conv = conversation()
    conv["participants"][0].update(purpose="external", calls=[{"id": "c", "direction": "outbound"}])
    event = event_from_conversation(conv)
    assert event.direction == "OUTBOUND" and event.customer_number == "+18005550100"


def test_no_end_yet_uses_the_events_time_or_waits():
    conv = conversation()
    del conv["endTime"]
    with pytest.raises(NotEnded):
        event_from_conversation(conv)
    ended = datetime(2026, 12, 7, 20, 1, 0, tzinfo=timezone.utc)
    assert event_from_conversation(conv, ended).end_time == ended
    conv["participants"][0]["endTime"] = "2026-12-07T20:01:30.000Z"  # the customer's leg ended: that's the end
    assert event_from_conversation(conv, ended).duration_seconds == 90


def test_participant_data_that_does_not_fit_is_left_out_but_contact_id_stays():
    conv = conversation()
    conv["participants"][0]["attributes"] = {
        **{f"k{i:03d}": "v" for i in range(150)}, "long": "x" * 5000, "contact_id": "003000000000001AAA"}
    event = event_from_conversation(conv)
    assert len(event.attributes) == 100 and "long" not in event.attributes
    assert event.attributes["contact_id"] == "003000000000001AAA"


def test_no_agent_or_queue_is_still_a_call():
    conv = conversation(participants=[conversation()["participants"][0]])
    event = event_from_conversation(conv)
    assert event.agent_id is None and event.queue_name is None


def test_a_conversation_without_a_customer_is_refused():
    with pytest.raises((ValueError, ValidationError)):
        event_from_conversation(conversation(participants=[participant("agent", userId="u-1")]))
