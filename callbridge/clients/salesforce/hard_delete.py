"""Hard delete through a Bulk API 2.0 ingest job (`hardDelete`): the records skip the recycle
bin, where a plain delete leaves them 15 days for anyone with queryAll or the Recycle Bin
page (Bulk API 2.0 Developer Guide, "Create a Job": operation hardDelete).

The integration user needs the "Bulk API Hard Delete" system permission; without it
Salesforce refuses the job (FEATURENOTENABLED) and this says so, for good: retrying won't
grant a permission. Why this and not SOAP `emptyRecycleBin`: docs/privacy.md.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Callable

from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from temporalio.exceptions import ApplicationError

from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.errors import error_entries, from_exception, is_transient

PERMISSION = "Bulk API Hard Delete"
_GONE = ("ENTITY_IS_DELETED",)  # already hard-deleted (a retried step): the goal is reached
_DONE_STATES = ("JobComplete", "Failed", "Aborted")


def _raw(sf: SalesforceConnection, method: str, path: str, **kwargs) -> str:
    """A Bulk API call whose body is CSV, not JSON (the job's data and its results)."""
    timeout = sf._settings.salesforce_timeout_seconds

    def go(client) -> str:
        headers = {**client.headers, **kwargs.pop("headers", {})}
        resp = client.session.request(method, client.base_url + path, headers=headers, timeout=timeout, **kwargs)
        if resp.status_code == 401:
            raise SalesforceExpiredSession(resp.url, 401, path, resp.text)
        if resp.status_code >= 400:
            raise ApplicationError(f"Salesforce {path} failed ({resp.status_code})", type="SalesforceTransientError"
                                   if resp.status_code >= 500 else "SalesforceRejected",
                                   non_retryable=resp.status_code < 500)
        return resp.text

    return sf.call(go)


def hard_delete(sf: SalesforceConnection, sobject: str, ids: list[str],
                heartbeat: Callable[[object], None] = lambda _: None, poll_seconds: float = 0.5) -> list[str]:
    """Hard-delete these records (one job); returns them all once each is gone, now or before."""
    if not ids:
        return []
    try:
        job = sf.restful("jobs/ingest", method="POST", json={
            "object": sobject, "operation": "hardDelete", "contentType": "CSV", "lineEnding": "LF"})
    except SalesforceError as exc:
        codes = {e.get("errorCode") for e in error_entries(exc.content)}
        if "FEATURENOTENABLED" in codes:
            raise ApplicationError(
                f"Salesforce refused to hard-delete {sobject} records: the integration user lacks the "
                f"\"{PERMISSION}\" permission (FEATURENOTENABLED); grant it (Setup > Permission Sets) and retry "
                "the erasure", type="HardDeleteNotPermitted", non_retryable=True) from None
        raise from_exception(exc, f"{sobject} hard delete") from None
    job_id = job["id"]
    _raw(sf, "PUT", f"jobs/ingest/{job_id}/batches", data=("Id\n" + "\n".join(ids) + "\n").encode(),
         headers={"Content-Type": "text/csv"})
    try:
        state = sf.restful(f"jobs/ingest/{job_id}", method="PATCH", json={"state": "UploadComplete"})["state"]
        while state not in _DONE_STATES:
            heartbeat(state)
            time.sleep(poll_seconds)
            info = sf.restful(f"jobs/ingest/{job_id}")
            state = info["state"]
    except SalesforceError as exc:
        raise from_exception(exc, f"{sobject} hard delete") from None
    if state != "JobComplete":
        raise ApplicationError(f"Salesforce {sobject} hard delete job ended {state}", type="SalesforceTransientError")
    failed = list(csv.DictReader(io.StringIO(_raw(sf, "GET", f"jobs/ingest/{job_id}/failedResults"))))
    errors = [r.get("sf__Error", "") for r in failed if not r.get("sf__Error", "").startswith(_GONE)]
    if errors:
        entries = [{"errorCode": e.split(":", 1)[0], "message": e} for e in errors]
        transient = is_transient(200, entries)
        raise ApplicationError(f"Salesforce {sobject} hard delete failed for {len(errors)} of {len(ids)} records: "
                               + "; ".join(sorted({e.split(':', 1)[0] for e in errors})),
                               type="SalesforceTransientError" if transient else "SalesforceRejected",
                               non_retryable=not transient)
    return ids
