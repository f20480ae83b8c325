"""Which Salesforce failures are worth retrying.

Transient (retried by Temporal with backoff): connection errors, 5xx, 429,
REQUEST_LIMIT_EXCEEDED, UNABLE_TO_LOCK_ROW, an expired session. Anything else that
Salesforce refuses (validation rules, bad fields) fails the workflow with Salesforce's own
message, readable in the Temporal UI.
"""

from __future__ import annotations

from typing import Any

from simple_salesforce.exceptions import SalesforceError
from temporalio.exceptions import ApplicationError

TRANSIENT_ERROR_CODES = {
    "UNABLE_TO_LOCK_ROW",
    "REQUEST_LIMIT_EXCEEDED",
    "SERVER_UNAVAILABLE",
    "INVALID_SESSION_ID",
    "QUERY_TIMEOUT",
    "API_CURRENTLY_DISABLED",
}


def error_entries(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return [e for e in content if isinstance(e, dict)]
    if isinstance(content, dict):
        return [content]
    return []


# Codes whose message repeats the refused value (an email address, a long text, a picklist
# value): described by code and field names only, so no personal data reaches logs, workflow
# histories or the review list.
VALUE_ECHOING_CODES = {
    "INVALID_EMAIL_ADDRESS",
    "STRING_TOO_LONG",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "INVALID_TYPE_ON_FIELD_IN_RECORD",
}


def describe(entries: list[dict[str, Any]]) -> str:
    return "; ".join(_describe_one(e) for e in entries) or "no error detail"


def _describe_one(entry: dict[str, Any]) -> str:
    code = entry.get("errorCode", entry.get("statusCode", "ERROR"))
    if code in VALUE_ECHOING_CODES:
        fields = ", ".join(str(f) for f in entry.get("fields") or []) or "a field"
        return f"{code}: Salesforce refused the value of {fields}"
    return f"{code}: {entry.get('message', '')}".strip()


def is_transient(status: int, entries: list[dict[str, Any]]) -> bool:
    if status >= 500 or status in (401, 429):
        return True
    codes = {e.get("errorCode") or e.get("statusCode") for e in entries}
    return bool(codes & TRANSIENT_ERROR_CODES)


def to_application_error(status: int, content: Any, what: str) -> ApplicationError:
    entries = error_entries(content)
    transient = is_transient(status, entries)
    return ApplicationError(
        f"Salesforce {what} failed ({status}): {describe(entries)}",
        type="SalesforceTransientError" if transient else "SalesforceRejected",
        non_retryable=not transient,
    )


def from_exception(exc: SalesforceError, what: str) -> ApplicationError:
    return to_application_error(exc.status or 0, exc.content, what)
