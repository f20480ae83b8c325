"""getDeleted as Salesforce really answers it (REST API "Get Deleted Records"; SOAP API
"getDeleted()", "GetDeletedResult").

- `latestDateCovered` can be earlier than the window's end: the next read starts there,
  never later, or deletions still being committed are skipped for good.
- The delete log (and the recycle bin) is purged after 15 days or sooner by an admin; a
  window starting before the purge fails with INVALID_REPLICATION_DATE. Then only a full
  comparison of ids (Salesforce against the store) finds what was deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from simple_salesforce.exceptions import SalesforceError

from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.errors import error_entries, from_exception
from callbridge.clients.salesforce.query import query_pages
from callbridge.domain.matching import parse_sf_datetime


@dataclass
class DeletedContacts:
    ids: set[str]
    covered_until: datetime  # a watermark may move this far, no further
    log_purged: bool = False  # the delete log no longer reaches back to `start`: compare ids


def deleted_contacts(sf: SalesforceConnection, start: datetime, end: datetime) -> DeletedContacts:
    """Contacts deleted in [start, end] by getDeleted (which wants a window of a minute or more)."""
    start = min(start, end - timedelta(minutes=1))
    try:
        answer = sf.call(lambda client: client.Contact.deleted(start, end))
    except SalesforceError as exc:
        codes = {e.get("errorCode") for e in error_entries(exc.content)}
        if "INVALID_REPLICATION_DATE" in codes:
            return DeletedContacts(set(), end, log_purged=True)
        raise from_exception(exc, "deleted contacts read") from None
    covered = parse_sf_datetime(answer.get("latestDateCovered")) or end
    if covered >= end.replace(second=0, microsecond=0):
        # getDeleted ignores seconds: covering the end's minute is covering the window (the
        # next read's lookback starts before that minute). Only a real lag holds the watermark.
        covered = end
    return DeletedContacts({d["id"] for d in answer.get("deletedRecords") or []}, min(covered, end))


def live_contact_ids(sf: SalesforceConnection, on_page=lambda n: None) -> set[str]:
    """Every contact id Salesforce holds (not in the recycle bin): the full comparison's other side."""
    ids: set[str] = set()
    for page in query_pages(sf, "SELECT Id FROM Contact", what="contact id read"):
        ids.update(r["Id"] for r in page)
        on_page(len(ids))
    return ids
