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


def describe(entries: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{e.get('errorCode', e.get('statusCode', 'ERROR'))}: {e.get('message', '')}".strip()
        for e in entries
    ) or "no error detail"


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
