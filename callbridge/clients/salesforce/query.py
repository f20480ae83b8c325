"""Reading a SOQL answer whole: every page, and every page of each record's child results.

Salesforce may cut any page short (REST API "Query Options Header": child rows count toward
the batch size, and the batch size is no guarantee), so a caller that reads only the first
page silently loses records. Every Salesforce read in Callbridge goes through here.
"""

from __future__ import annotations

from typing import Any, Iterator

from simple_salesforce.exceptions import SalesforceError

from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.errors import from_exception


def _next(sf: SalesforceConnection, url: str) -> dict[str, Any]:
    # nextRecordsUrl is "/services/data/vXX.X/query/01g...-2000"; restful() wants the part after the version.
    return sf.restful(url.split(f"/v{sf.api_version}/", 1)[1])


def _complete_children(sf: SalesforceConnection, record: dict[str, Any]) -> None:
    """A subquery result with more rows than one page carries its own nextRecordsUrl."""
    for value in record.values():
        if isinstance(value, dict) and "records" in value and value.get("done") is False:
            page = value
            while page.get("done") is False:
                page = _next(sf, page["nextRecordsUrl"])
                value["records"].extend(page["records"])
            value["done"] = True
            value.pop("nextRecordsUrl", None)


def query_pages(sf: SalesforceConnection, soql: str, resource: str = "query",
                what: str = "contact read") -> Iterator[list[dict[str, Any]]]:
    """Every record of a query (or queryAll), a page at a time, following nextRecordsUrl until done."""
    try:
        page = sf.restful(resource, params={"q": soql})
        while True:
            records = page["records"]
            for record in records:
                _complete_children(sf, record)
            yield records
            if page.get("done", True):
                return
            page = _next(sf, page["nextRecordsUrl"])
    except SalesforceError as exc:
        raise from_exception(exc, what) from None


def query_records(sf: SalesforceConnection, soql: str, resource: str = "query",
                  what: str = "contact read") -> list[dict[str, Any]]:
    """All records of a query (or queryAll) in one list: for answers known to be small."""
    return [r for page in query_pages(sf, soql, resource, what) for r in page]
