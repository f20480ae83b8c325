"""Calls as the benches make them: callers whose contact is known without asking Callbridge,
and the conversation-ended event the relay webhook carries for each."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from simple_salesforce import Salesforce

from callbridge.domain.matching import contact_region
from callbridge.domain.phone import all_e164


@dataclass
class Caller:
    e164: str
    contact_id: str
    by_id: bool  # the IVR identified the contact (attributes.contact_id)


def callers_with_one_owner(sf: Salesforce, default_region: str) -> list[tuple[str, str]]:
    """(E.164, contact id) for every number exactly one contact holds in any phone field, so the
    right contact is known without asking Callbridge."""
    owners: dict[str, set[str]] = defaultdict(set)
    soql = ("SELECT Id, Phone, MobilePhone, HomePhone, OtherPhone, MailingCountry, Account.BillingCountry "
            "FROM Contact")
    for r in sf.query_all_iter(soql):
        region, guessed = contact_region(r, default_region)
        for fld in ("Phone", "MobilePhone", "HomePhone", "OtherPhone"):
            for e164 in all_e164(r.get(fld), region, guessed):
                owners[e164].add(r["Id"])
    return sorted((e164, next(iter(ids))) for e164, ids in owners.items() if len(ids) == 1)


def call_event(conversation: str, caller: Caller) -> dict[str, Any]:
    end = datetime.now(timezone.utc) - timedelta(seconds=1)
    return {
        "conversationId": conversation, "participantId": "chaos", "conversationType": "phone",
        "callerId": caller.e164, "calleeId": "+18005550100", "direction": "INBOUND",
        "startTime": (end - timedelta(seconds=240)).isoformat(), "endTime": end.isoformat(),
        "durationSeconds": 240, "recordingId": None, "agentId": "agent-1", "agentName": "Chaos Agent",
        "queueId": "q-1", "queueName": "Support Queue", "interactionId": str(uuid.uuid4()),
        "attributes": {"contact_id": caller.contact_id} if caller.by_id else {},
    }
