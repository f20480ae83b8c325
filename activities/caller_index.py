"""Caller-ID index activities: pull Salesforce contact changes into the state store.

Records go straight from Salesforce to the store inside the activity, never through workflow
history: history stays small and free of phone numbers and names.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from simple_salesforce.format import format_soql
from temporalio import activity

from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.query import query_pages, query_records
from callbridge.clients.salesforce.replication import deleted_contacts, live_contact_ids
from callbridge.domain.caller_id import INDEX_SOQL_FIELDS
from callbridge.domain.models import ContactMatch, IndexRefreshRequest, IndexRefreshResult, KnownCallerRequest
from callbridge.core.settings import Settings
from callbridge.store import caller_index
from callbridge.store.db import get_engine

WATERMARK = "caller_index_watermark"
_CONTACT_ID = re.compile(r"^003[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$")  # 003: the Contact key prefix
MAX_KNOWN = 50  # as many as the Salesforce phone lookup returns
APPLY_BATCH = 2000


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
        removed, watermark = 0, until
        if since is not None:
            removed, covered = self._remove_deleted(engine, since, until)
            watermark = min(until, covered)  # never past what getDeleted covered
        caller_index.set_text(engine, WATERMARK, watermark.isoformat())
        return IndexRefreshResult(applied=applied, removed=removed, full=since is None,
                                  watermark=watermark.isoformat())

    def _remove_deleted(self, engine, since: datetime, until: datetime) -> tuple[int, datetime]:
        """Contacts deleted since the watermark, and how far that read reaches (the next
        watermark). The recycle bin (queryAll, IsDeleted) sees them at once; getDeleted also
        reports those already purged from it, though only to the minute (it ignores seconds),
        so the lookback window covers the rest. Once the delete log itself is purged past the
        watermark, every indexed id is checked against Salesforce instead."""
        soql = format_soql("SELECT Id FROM Contact WHERE IsDeleted = true AND SystemModstamp >= {}", since)
        binned = query_records(self._sf, soql, "queryAll", "deleted contacts read")
        deleted = deleted_contacts(self._sf, since, until)
        ids = {r["Id"] for r in binned} | deleted.ids
        if deleted.log_purged:
            # Indexed ids first: one indexed before the read and missing from it is really gone.
            indexed = caller_index.indexed_contact_ids(engine)
            ids |= indexed - live_contact_ids(self._sf, activity.heartbeat)
        caller_index.remove_contacts(engine, ids)
        return len(ids), deleted.covered_until

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
