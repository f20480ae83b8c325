"""changedFields / nulledFields / diffFields as the Pub/Sub API sends them: bitmaps over the schema.

"0x..." is a hex number whose bit i names top-level schema field i; "<i>-0x..." names sub-fields
of compound field i (e.g. Name.LastName). Salesforce's algorithm: "Event Deserialization
Considerations" (Pub/Sub API guide) and forcedotcom/pub-sub-api python/util/ChangeEventHeaderUtility.py.
"""

from __future__ import annotations


def _bits(hex_text: str) -> list[int]:
    value = int(hex_text, 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


def _record_of(field_type: object) -> dict | None:
    """The record inside an optional (["null", record]) field, if any."""
    options = field_type if isinstance(field_type, list) else [field_type]
    return next((t for t in options if isinstance(t, dict) and t.get("type") == "record"), None)


def field_names(schema: dict, bitmap_fields: list[str]) -> list[str]:
    fields = schema["fields"]
    names: list[str] = []
    for item in bitmap_fields:
        if item.startswith("0x"):
            names += [fields[i]["name"] for i in _bits(item) if i < len(fields)]
        elif "-" in item:
            parent_pos, nested = item.split("-", 1)
            parent = fields[int(parent_pos)]
            record = _record_of(parent["type"])
            if record is not None:
                names += [f"{parent['name']}.{record['fields'][i]['name']}" for i in _bits(nested)
                          if i < len(record["fields"])]
        else:
            names.append(item)  # already a name (CometD-style events)
    return names
