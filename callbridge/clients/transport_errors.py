"""Transport errors from requests/simple-salesforce/httpx, without their URL.

A library's connection error names the URL it was fetching, and a SOQL query's URL carries
the query: a caller's phone number or email. Re-raised `from None` as type and status only,
so neither the message, the traceback's chained cause nor Temporal's failure carries it.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


def scrubbed(exc: BaseException, system: str) -> ApplicationError:
    """`raise scrubbed(exc, "Salesforce") from None`: retryable, named by type and status only."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) if response is not None else None
    detail = type(exc).__name__ + (f" ({status})" if status else "")
    return ApplicationError(f"{system} request failed: {detail}", type=f"{system}TransportError")
