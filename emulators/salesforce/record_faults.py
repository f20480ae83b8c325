"""Per-record fault rules: one record of a write fails, the others don't.

Salesforce reports these inside a 200 answer for sObject Collections (a SaveResult per
record: `{"success": false, "errors": [{"statusCode", "message", "fields"}]}`), as the
subrequest's own 400 inside a composite, and as a 400 error list for a single-record call
(REST API Developer Guide, "sObject Collections", "Composite", "Status Codes and Error
Responses"). The codes a rule may answer with are the ones the API uses for one record:

- UNABLE_TO_LOCK_ROW — another transaction holds the row (transient: retry later);
- DUPLICATE_VALUE — a unique field's value is taken (permanent);
- INVALID_EMAIL_ADDRESS — an email field Salesforce refuses (permanent);
- ENTITY_IS_DELETED — the record is in the recycle bin (permanent).

A rule is `{sobject?, operation?: insert|update|delete, id?, field?, value?, errorCode,
message?, count?}`: it matches a write to that sObject, of that kind, on that record id, or
whose `field` holds `value` (case-insensitive substring), and fails `count` such writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ApiError

CODES = ("UNABLE_TO_LOCK_ROW", "DUPLICATE_VALUE", "INVALID_EMAIL_ADDRESS", "ENTITY_IS_DELETED")
OPERATIONS = ("insert", "update", "delete")


@dataclass
class RecordRule:
    error_code: str
    count: int = 1
    sobject: str | None = None
    operation: str | None = None
    record_id: str | None = None
    field: str | None = None
    value: str | None = None
    message: str | None = None

    @classmethod
    def parse(cls, item: object) -> "RecordRule":
        if not isinstance(item, dict):
            raise ValueError("each fail_records rule is a JSON object")
        code = item.get("errorCode")
        if code not in CODES:
            raise ValueError(f"fail_records errorCode must be one of {', '.join(CODES)}")
        op = item.get("operation")
        if op is not None and op not in OPERATIONS:
            raise ValueError(f"fail_records operation must be one of {', '.join(OPERATIONS)}")
        if ("field" in item) != ("value" in item):
            raise ValueError("fail_records: field and value go together")
        return cls(code, int(item.get("count", 1)), item.get("sobject"), op, item.get("id"), item.get("field"),
                   None if item.get("value") is None else str(item["value"]), item.get("message"))

    def matches(self, operation: str, sobject: str, record_id: str | None, row: dict) -> bool:
        if self.sobject and self.sobject.lower() != sobject.lower():
            return False
        if self.operation and self.operation != operation:
            return False
        if self.record_id and (record_id is None or record_id[:15] != self.record_id[:15]):
            return False
        if self.field is not None:
            held = next((v for k, v in row.items() if k.lower() == self.field.lower()), None)
            if not isinstance(held, str) or (self.value or "").lower() not in held.lower():
                return False
        return True

    def error(self, sobject: str, record_id: str | None, row: dict) -> ApiError:
        """The error as Salesforce words it for this record."""
        rid = record_id or ""
        code = self.error_code
        if code == "UNABLE_TO_LOCK_ROW":
            return ApiError(400, code, self.message or f"unable to obtain exclusive access to this record or "
                                                       f"1 records: {rid}", [])
        if code == "DUPLICATE_VALUE":
            name = self.field or "Id"
            return ApiError(400, code, self.message or f"duplicate value found: {name} duplicates value on "
                                                       f"record with id: {rid}", [])
        if code == "INVALID_EMAIL_ADDRESS":
            name = self.field or "Email"
            held = next((v for k, v in row.items() if k.lower() == name.lower()), "")
            return ApiError(400, code, self.message or f"{name}: invalid email address: {held}", [name])
        return ApiError(400, code, self.message or "entity is deleted", [])

    def describe(self) -> dict:
        return {"sobject": self.sobject, "operation": self.operation, "id": self.record_id, "field": self.field,
                "value": self.value, "errorCode": self.error_code, "message": self.message, "count": self.count}
