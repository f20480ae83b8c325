"""The Avro schemas of ContactChangeEvent and AccountChangeEvent, as Salesforce builds them.

A change event's schema is a record named `<Object>ChangeEvent` (namespace com.sforce.eventbus):
the ChangeEventHeader first, then the object's fields, every one optional (`["null", T]`,
default null); compound fields (a Contact's Name, addresses) are nested records; datetimes are
longs (epoch milliseconds), dates ints (epoch days). Sources: the Change Data Capture Developer
Guide (ChangeEventHeader Fields; Event Deserialization Considerations) and forcedotcom/pub-sub-api.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from emulators.salesforce import schema

CHANGE_TYPES = ["CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE",
                "GAP_UNDELETE", "GAP_OVERFLOW", "SNAPSHOT"]

_STRINGS = {"type": "array", "items": "string"}
HEADER = {
    "type": "record", "name": "ChangeEventHeader", "namespace": "com.sforce.eventbus",
    "fields": [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": _STRINGS},
        {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "namespace": "com.sforce.eventbus",
                                        "symbols": CHANGE_TYPES}},
        {"name": "changeOrigin", "type": "string"},
        {"name": "transactionKey", "type": "string"},
        {"name": "sequenceNumber", "type": "int"},
        {"name": "commitTimestamp", "type": "long"},
        {"name": "commitNumber", "type": "long"},
        {"name": "commitUser", "type": "string"},
        {"name": "nulledFields", "type": _STRINGS},
        {"name": "diffFields", "type": _STRINGS},
        {"name": "changedFields", "type": _STRINGS},
    ],
}

# Compound fields: the record type, its sub-fields, and which emulator columns fill which.
PERSON_NAME = ["Salutation", "FirstName", "LastName", "MiddleName", "InformalName", "Suffix"]
ADDRESS = ["Street", "City", "State", "PostalCode", "Country", "StateCode", "CountryCode", "Latitude",
           "Longitude", "GeocodeAccuracy"]
COMPOUNDS: dict[str, dict[str, tuple[str, list[str], str]]] = {
    # object -> {compound field: (record name, sub-fields, column prefix)}
    "Contact": {"Name": ("Switchable_PersonName", PERSON_NAME, ""),
                "MailingAddress": ("Address", ADDRESS, "Mailing")},
    "Account": {"BillingAddress": ("Address", ADDRESS, "Billing")},
}
# Not in change events: the record's Id is in recordIds; IsDeleted is the changeType; the
# system timestamp isn't a field of change events.
_LEFT_OUT = {"Id", "IsDeleted", "SystemModstamp"}
_AVRO_TYPES = {"boolean": "boolean", "double": "double", "currency": "double", "percent": "double",
               "int": "int", "datetime": "long", "date": "int"}


@dataclass(frozen=True)
class Slot:
    """One top-level field of the event schema: a plain column, or a compound over columns."""

    name: str
    column: str | None = None  # plain field
    parts: tuple[tuple[str, str], ...] = ()  # compound: (sub-field, emulator column)
    avro_type: object = "string"


def slots(obj_name: str) -> list[Slot]:
    """The event's field order: the object's fields, a compound where its first column sits."""
    obj = schema.SOBJECTS[obj_name]
    compounds = COMPOUNDS.get(obj_name, {})
    column_of: dict[str, tuple[str, str]] = {}
    for name, (_, subs, prefix) in compounds.items():
        for sub in subs:
            column = (prefix + sub) if prefix else sub
            if obj.field(column) is not None:
                column_of[column] = (name, sub)
    out: list[Slot] = []
    placed: set[str] = set()
    for f in obj.fields:
        if f.name in _LEFT_OUT:
            continue
        compound = column_of.get(f.name) or ((f.name, "") if f.name in compounds else None)
        if compound:
            name = compound[0]
            if name in placed:
                continue
            placed.add(name)
            record, subs, prefix = compounds[name]
            parts = tuple((sub, (prefix + sub) if prefix else sub) for sub in subs)
            out.append(Slot(name, parts=parts, avro_type=record))
        else:
            out.append(Slot(f.name, column=f.name, avro_type=_AVRO_TYPES.get(f.type, "string")))
    return out


def _sub_type(sub: str) -> str:
    return "double" if sub in ("Latitude", "Longitude") else "string"


def schema_json(obj_name: str) -> dict:
    fields: list[dict] = [{"name": "ChangeEventHeader", "type": HEADER, "doc": "Data:ChangeEventHeader"}]
    declared: set[str] = set()
    for slot in slots(obj_name):
        if slot.parts:
            record_name = str(slot.avro_type)
            if record_name in declared:
                inner: object = f"com.sforce.eventbus.{record_name}"
            else:
                declared.add(record_name)
                inner = {"type": "record", "name": record_name, "namespace": "com.sforce.eventbus",
                         "fields": [{"name": sub, "type": ["null", _sub_type(sub)], "default": None}
                                    for sub, _ in slot.parts]}
            fields.append({"name": slot.name, "type": ["null", inner], "default": None, "doc": "Data:Compound"})
        else:
            fields.append({"name": slot.name, "type": ["null", slot.avro_type], "default": None})
    return {"type": "record", "name": f"{obj_name}ChangeEvent", "namespace": "com.sforce.eventbus",
            "fields": fields}


def schema_id(obj_name: str) -> str:
    """Schema ids are opaque; this one changes only when the schema does."""
    text = json.dumps(schema_json(obj_name), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:22]
