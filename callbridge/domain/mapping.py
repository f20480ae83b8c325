"""Call -> Salesforce Task and Contact fields (the seed's Data Mapping). Pure."""

from __future__ import annotations

from callbridge.domain.models import CallEndedEvent, ContactMatch

TASK_EXTERNAL_ID = "Genesys_Conversation_Id__c"


def _duration_text(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def task_subject(contact_name: str | None) -> str:
    return f"Call with {contact_name or 'unknown caller'}"[:255]


# The Task's recording line while Genesys still transcodes (workflows/recording_link.py
# replaces it with the link when the media is ready).
RECORDING_PENDING = "pending: Genesys is still processing it; the link is added here when it is ready"


def task_fields(
    event: CallEndedEvent,
    contact: ContactMatch | None,
    *,
    who_id: str | None,
    what_id: str | None,
    other_contacts: list[ContactMatch] = (),
    recording_link: str | None = None,
) -> dict[str, object]:
    """The Task body for an upsert by Genesys_Conversation_Id__c (the key is in the URL)."""
    call_type = "Inbound" if event.direction == "INBOUND" else "Outbound"
    lines = [
        f"{call_type} call {'from' if call_type == 'Inbound' else 'to'} {event.customer_number or 'unknown number'}",
        f"Agent: {event.agent_name or 'n/a'}",
        f"Queue: {event.queue_name or 'n/a'}",
        f"Start: {_iso(event.start_time)}",
        f"End: {_iso(event.end_time)}",
        f"Duration: {_duration_text(event.duration_seconds)}",
        f"Recording: {recording_link or 'not available'}",
        f"Genesys conversation: {event.conversation_id}",
    ]
    if other_contacts:
        lines.append(
            "Other contacts on this number: "
            + ", ".join(f"{c.name} ({c.id})" for c in other_contacts)
        )
    fields: dict[str, object] = {
        "Subject": task_subject(contact.name if contact else None),
        "ActivityDate": event.end_time.date().isoformat(),
        "CallDurationInSeconds": event.duration_seconds,
        "CallType": call_type,
        "CallObject": event.conversation_id,
        "Status": "Completed",
        "Type": "Call",
        "TaskSubtype": "Call",
        "Description": "\n".join(lines)[:32000],
    }
    if who_id:
        fields["WhoId"] = who_id
    if what_id:
        fields["WhatId"] = what_id
    return fields


def contact_last_call_fields(event: CallEndedEvent, contact: ContactMatch) -> dict[str, object] | None:
    """Last call date and duration, unless the contact already shows a later call.

    Redeliveries and late webhooks must not move Last_Call_Date__c backwards.
    """
    if contact.last_call_date and contact.last_call_date > event.end_time:
        return None
    return {
        "Last_Call_Date__c": _iso(event.end_time),
        "Last_Call_Duration__c": event.duration_seconds,
    }


def new_caller_contact(event: CallEndedEvent, e164: str) -> dict[str, object]:
    """A contact for an unknown caller (policy create_contact)."""
    return {
        "LastName": "Unknown caller",
        "Phone": e164,
        "Description": f"Created by Callbridge from Genesys conversation {event.conversation_id}",
        "Last_Call_Date__c": _iso(event.end_time),
        "Last_Call_Duration__c": event.duration_seconds,
    }
