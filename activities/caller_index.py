"""Caller-ID index activities: pull Salesforce contact changes into the state store.

Records go straight from Salesforce to the store inside the activity, never through workflow
history: history stays small and free of phone numbers and names.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql
from temporalio import activity

from activities.salesforce_connection import SalesforceConnection
from activities.salesforce_errors import from_exception
from callbridge.caller_id import INDEX_SOQL_FIELDS
from callbridge.models import ContactMatch, IndexRefreshRequest, IndexRefreshResult, KnownCallerRequest
from callbridge.settings import Settings
from callbridge.store import caller_index
from callbridge.store.db import get_engine

WATERMARK = "caller_index_watermark"
_CONTACT_ID = re.compile(r"^003[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$")  # 003: the Contact key prefix
MAX_KNOWN = 50  # as many as the Salesforce phone lookup returns
APPLY_BATCH = 2000


def query_pages(sf: SalesforceConnection, soql: str, resource: str = "query") -> Iterator[list[dict[str, Any]]]:
    """Every record of a query (or queryAll), a page (up to 2,000) at a time, following nextRecordsUrl."""
    try:
        page = sf.restful(resource, params={"q": soql})
        while True:
            yield page["records"]
            if page.get("done", True):
                return
            page = sf.restful(page["nextRecordsUrl"].split(f"/v{sf.api_version}/", 1)[1])
    except SalesforceError as exc:
        raise from_exception(exc, "contact read") from None


def match_from_index(row: dict[str, Any]) -> ContactMatch:
    name = " ".join(part for part in (row.get("first_name"), row.get("last_name")) if part)
    last = row.get("last_activity")
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=timezone.utc)  # SQLite hands back what it stored as UTC, naive
    return ContactMatch(id=row["contact_id"], name=name or "unnamed contact", account_id=row.get("account_id"),
                        account_name=row.get("account_name"), last_call_date=last,
                        matched_field=row.get("phone_field"))


def rebuild_index(sf: SalesforceConnection, settings: Settings, on_page=lambda n: None) -> int:
    """Rebuild the whole index from Salesforce (`callbridge index rebuild`)."""
    engine = get_engine(settings.database_url)
    started = datetime.now(timezone.utc).replace(microsecond=0)
    caller_index.clear(engine)
    total = 0
    for records in query_pages(sf, f"SELECT {INDEX_SOQL_FIELDS} FROM Contact ORDER BY Id"):
        total += caller_index.apply_contacts(engine, records, settings.default_region)
        on_page(len(records))
    caller_index.set_text(engine, WATERMARK, started.isoformat())
    return total


class CallerIndexActivities:
    def __init__(self, connection: SalesforceConnection, settings: Settings) -> None:
        self._sf = connection
        self._settings = settings

    @property
    def _engine(self):
        return get_engine(self._settings.database_url)

    def _pages(self, soql: str):
        for records in query_pages(self._sf, soql):
            yield records
            activity.heartbeat(len(records))

    @activity.defn
    def refresh_caller_index(self, request: IndexRefreshRequest) -> IndexRefreshResult:
        """Apply contacts changed since the watermark (minus a lookback) and drop deleted ones.

        The watermark only moves to the start of this read once everything up to it is applied,
        so a crash re-reads rather than skips.
        """
        engine = self._engine
        until = datetime.now(timezone.utc).replace(microsecond=0)
        saved = None if request.full else caller_index.get_text(engine, WATERMARK)
        since = datetime.fromisoformat(saved) - timedelta(seconds=request.lookback_seconds) if saved else None
        if since is None:
            soql = f"SELECT {INDEX_SOQL_FIELDS} FROM Contact ORDER BY Id"
        else:
            soql = format_soql(
                f"SELECT {INDEX_SOQL_FIELDS} FROM Contact WHERE SystemModstamp >= {{}} ORDER BY SystemModstamp",
                since,
            )
        applied = 0
        for records in self._pages(soql):
            applied += caller_index.apply_contacts(engine, records, self._settings.default_region)
        removed = 0
        if since is not None:
            removed = self._remove_deleted(engine, since, until)
        caller_index.set_text(engine, WATERMARK, until.isoformat())
        return IndexRefreshResult(applied=applied, removed=removed, full=since is None, watermark=until.isoformat())

    def _remove_deleted(self, engine, since: datetime, until: datetime) -> int:
        """Contacts deleted since the watermark: the recycle bin (queryAll, IsDeleted) sees them
        at once; getDeleted also reports those already purged from it, though only to the
        minute (it ignores seconds), so the lookback window covers the rest."""
        soql = format_soql("SELECT Id FROM Contact WHERE IsDeleted = true AND SystemModstamp >= {}", since)
        try:
            binned = self._sf.restful("queryAll", params={"q": soql})["records"]
            start = min(since, until - timedelta(minutes=1))  # getDeleted wants at least a minute
            purged = self._sf.call(lambda sf: sf.Contact.deleted(start, until)).get("deletedRecords", [])
        except SalesforceError as exc:
            raise from_exception(exc, "deleted contacts read") from None
        ids = {r["Id"] for r in binned} | {d["id"] for d in purged}
        caller_index.remove_contacts(engine, ids)
        return len(ids)

    def find_known_caller(self, request: KnownCallerRequest) -> list[ContactMatch]:
        """The caller's contacts, best first, from what Callbridge already knows (no Salesforce
        request): the IVR's contact_id (described by the index, else by the IVR's own participant
        data), else the caller-ID index's contacts for the number. Empty when neither knows."""
        engine = self._engine
        if request.contact_id and _CONTACT_ID.match(request.contact_id):
            row = caller_index.lookup_contact(engine, request.contact_id)
            if row is not None:
                return [match_from_index(row)]
            if request.contact_name and request.contact_name.strip():
                return [ContactMatch(id=request.contact_id, name=request.contact_name.strip()[:255],
                                     account_id=request.account_id or None,
                                     account_name=request.account_name or None)]
            return []  # an id alone doesn't name the contact: the Salesforce lookup does
        if request.e164:
            return [match_from_index(r) for r in caller_index.lookup(engine, request.e164)][:MAX_KNOWN]
        return []

    def index_records(self, records: list[dict[str, Any]]) -> int:
        """For callers outside a workflow (contact sync feeds the index through this)."""
        return caller_index.apply_contacts(self._engine, records, self._settings.default_region)
