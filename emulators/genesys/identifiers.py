"""Identifier lookup of external contacts: POST /api/v2/externalcontacts/identifierlookup/contacts.

The body is a ContactIdentifier ({type, value, externalSource?}); the answer the one
ExternalContact that claims it, or 404. External ids (the `externalIds` of a contact, each of
an external source) are identifiers of type ExternalId — how Callbridge finds the Genesys
contact of a Salesforce id without knowing its Genesys id. Email and Phone are supported too;
the social and cookie types are refused with the API's 400.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from fastapi import APIRouter, Request

from .context import ctx
from .errors import bad_request, not_found
from .externalcontacts import CONTACTS, EMAIL_FIELDS, PHONE_FIELDS

router = APIRouter()
SUPPORTED = ("ExternalId", "Email", "Phone")


def _claims(doc: dict[str, Any], kind: str, value: str, source: str | None) -> bool:
    if kind == "ExternalId":
        return any(e.get("value") == value and (source is None or (e.get("externalSource") or {}).get("id") == source)
                   for e in doc.get("externalIds") or [])
    if kind == "Email":
        return any((doc.get(f) or "").lower() == value.lower() for f in EMAIL_FIELDS)
    return any((doc.get(f) or {}).get("e164") == value for f in PHONE_FIELDS)


@router.post("/api/v2/externalcontacts/identifierlookup/contacts")
async def identifier_lookup(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The request body could not be parsed", "bad.request") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not isinstance(body.get("value"), str):
        raise bad_request("identifier must have a type and a value", "invalid.value")
    kind, value = body["type"], body["value"].strip()
    if kind not in SUPPORTED:
        raise bad_request(f"Identifier type {kind} is not supported by this emulator", "invalid.value")
    if kind == "Phone":
        # "Phone number identifier values must be provided with the country code and a leading '+'."
        try:
            value = phonenumbers.format_number(phonenumbers.parse(value, None), phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            raise bad_request(f"Invalid phone number identifier {body['value']!r}", "invalid.value") from None
    source = (body.get("externalSource") or {}).get("id")
    for doc in ctx(request).store.all(CONTACTS.store_kind):
        if _claims(doc, kind, value, source):
            return doc
    raise not_found("No contact found for the identifier")
