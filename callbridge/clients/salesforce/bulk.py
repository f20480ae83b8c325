"""Bulk API 2.0 query jobs, for reads too large for REST query pages (the initial load).

Create the job, poll it to JobComplete, then read the CSV results page by page
(`Sforce-Locator` names the next page; "null" ends it). A query page holds 2,000 rows; a
results page up to 50,000, so a million-contact read is 20 requests instead of 500.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Iterator

import requests

from simple_salesforce.exceptions import SalesforceError
from temporalio.exceptions import ApplicationError

from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.errors import from_exception

RESULTS_PAGE = 50_000


def bulk_query(conn: SalesforceConnection, soql: str, operation: str = "queryAll",
               poll_seconds: float = 1.0, timeout_seconds: float = 1800.0) -> Iterator[list[dict[str, str]]]:
    """Rows of a Bulk API 2.0 query job (CSV cells as strings), a results page at a time."""
    try:
        job = conn.restful("jobs/query", method="POST", json={"operation": operation, "query": soql})
        deadline = time.monotonic() + timeout_seconds
        while True:
            state = conn.restful(f"jobs/query/{job['id']}")["state"]
            if state == "JobComplete":
                break
            if state in ("Failed", "Aborted"):
                raise ApplicationError(f"Bulk API query job {job['id']} ended {state}", type="BulkQueryFailed")
            if time.monotonic() > deadline:
                raise ApplicationError(f"Bulk API query job {job['id']} still {state}", type="BulkQueryTimeout")
            time.sleep(poll_seconds)
        locator = None
        while True:
            params = {"maxRecords": RESULTS_PAGE, **({"locator": locator} if locator else {})}
            resp = _read_results(conn, job["id"], params)
            if resp.status_code >= 400:
                raise ApplicationError(f"Bulk API results read failed ({resp.status_code}): {resp.text[:200]}",
                                       type="BulkQueryFailed", non_retryable=resp.status_code < 500)
            yield list(csv.DictReader(io.StringIO(resp.text)))
            locator = resp.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                return
    except SalesforceError as exc:
        raise from_exception(exc, "bulk query") from None


def _read_results(conn: SalesforceConnection, job_id: str, params: dict) -> requests.Response:
    """One CSV results page. A plain GET (not simple-salesforce's JSON call), so an expired
    session comes back as a 401 response, not an exception: log in again and read it again."""

    def read(sf) -> requests.Response:
        return sf.session.get(f"{sf.base_url}jobs/query/{job_id}/results", params=params, headers=sf.headers,
                              timeout=conn._settings.salesforce_timeout_seconds)

    sf = conn.client()
    resp = read(sf)
    if resp.status_code == 401:
        resp = read(conn.client(stale=sf))
    return resp
