"""Contact-sync run activities: what changed since the watermarks (and how the changed
Genesys contacts match Salesforce ones), the run's bookkeeping, the daily allowance.

Matching follows the seed's order: the link (a stored pair, or the Salesforce id in the
Genesys contact's externalIds) → email, case-insensitive → E.164 phone (through the screen
pop's caller-ID index) → first + last name within the same account. A match that is not
exactly one contact is never guessed: it goes to the review list (`callbridge sync review`).
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql
from temporalio import activity
from temporalio.exceptions import ApplicationError

from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.clients.metering import last_allowance, metering
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.query import query_records
from callbridge.clients.salesforce.errors import from_exception
from callbridge.clients.salesforce.soql_in import in_chunks
from activities.contact_sync_records import LINK_FIELD, SyncRecords, genesys_failure
from callbridge.domain.matching import parse_sf_datetime
from callbridge.core.settings import Settings
from callbridge.store import caller_index as state
from callbridge.store import sync as sync_store
from callbridge.store import sync_runs
from callbridge.store.db import get_engine
from callbridge.domain.sync.health import health_score, run_alerts
from callbridge.domain.sync.models import (
    AllowanceCheck,
    ChangeRequest,
    ChangeSet,
    PairKey,
    PairRange,
    SyncRunFinish,
    SyncRunStart,
)
from callbridge.domain.sync.records import from_genesys

SF_WATERMARK = "sync_salesforce_watermark"
GC_WATERMARK = "sync_genesys_watermark"
SCAN = "/api/v2/externalcontacts/scan/contacts"
_SF_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")


class ContactSyncActivities:
    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection, settings: Settings) -> None:
        self._sf = salesforce
        self._genesys = genesys
        self._settings = settings
        self.records = SyncRecords(salesforce, genesys, settings)

    @property
    def _engine(self):
        return get_engine(self._settings.database_url)

    # -- what changed ---------------------------------------------------------------------------

    def _salesforce_changes(self, since: datetime | None, until: datetime) -> tuple[list[str], datetime]:
        """Contacts changed since the watermark, and how far that read reaches (the next watermark)."""
        from callbridge.clients.salesforce.query import query_pages
        from callbridge.clients.salesforce.bulk import bulk_query
        from callbridge.clients.salesforce.replication import deleted_contacts, live_contact_ids

        if since is None:
            # Every contact (the initial load, --full): a Bulk API 2.0 job, 50k rows a request.
            return [r["Id"] for page in bulk_query(self._sf, "SELECT Id FROM Contact WHERE IsDeleted = false",
                                                   operation="query") for r in page], until
        # queryAll: a deletion is a change too (IsDeleted rows in the recycle bin).
        soql = format_soql("SELECT Id FROM Contact WHERE SystemModstamp >= {}", since)
        changed = [r["Id"] for page in query_pages(self._sf, soql, "queryAll") for r in page]
        # Records purged from the recycle bin are gone from queryAll: getDeleted still reports
        # them, until its own log is purged; then every paired id is checked against Salesforce.
        deleted = deleted_contacts(self._sf, since, until)
        gone = deleted.ids
        if deleted.log_purged:
            paired = sync_store.paired_salesforce_ids(self._engine)  # before the read: see caller_index
            gone = paired - live_contact_ids(self._sf, activity.heartbeat)
        seen = set(changed)
        return changed + sorted(gone - seen), min(until, deleted.covered_until)

    @activity.defn
    async def collect_sync_changes(self, request: ChangeRequest) -> ChangeSet:
        with metering() as meter:
            changes = await self._collect(request)
        changes.salesforce_requests, changes.genesys_requests = meter.salesforce, meter.genesys
        return changes

    def _check_mapping(self, request: ChangeRequest) -> None:
        """The mapping against this org's Contact describe, at the start of every run: a field
        that doesn't exist or can't be written stops the run with the reason, before any write."""
        from callbridge.domain.sync.config import check_against_salesforce

        if not request.rules:
            return
        try:
            describe = self._sf.restful("sobjects/Contact/describe")
        except SalesforceError as exc:
            raise from_exception(exc, "Contact describe") from None
        problems = check_against_salesforce([(r.name, r.direction) for r in request.rules], describe)
        if problems:
            raise ApplicationError("the sync mapping doesn't fit this org: " + "; ".join(problems),
                                   type="MappingMismatch", non_retryable=True)

    async def _collect(self, request: ChangeRequest) -> ChangeSet:
        await asyncio.to_thread(self._check_mapping, request)
        engine = self._engine
        now = datetime.now(timezone.utc).replace(microsecond=0)
        lookback = timedelta(seconds=request.lookback_seconds)
        saved_sf = state.get_text(engine, SF_WATERMARK)

        def since(name: str) -> datetime | None:
            saved = None if request.full else state.get_text(engine, name)
            return datetime.fromisoformat(saved) - lookback if saved else None

        sf_since, gc_since = since(SF_WATERMARK), since(GC_WATERMARK)
        try:
            sf_ids, sf_covered = await asyncio.to_thread(self._salesforce_changes, sf_since, now)
        except SalesforceError as exc:
            raise from_exception(exc, "changed contacts read") from None
        activity.heartbeat(len(sf_ids))
        keys: dict[str, PairKey] = {i: PairKey(salesforce_id=i) for i in sf_ids}
        changes = ChangeSet(salesforce_changes=len(sf_ids), salesforce_watermark=sf_covered.isoformat(),
                            genesys_watermark=now.isoformat(), initial=saved_sf is None)
        matcher = Matcher(self, request, changes)
        unverified: dict[str, str] = {}

        # Genesys: scan every contact, keep those modified since the watermark (ids only). One-way,
        # Genesys is a copy: an incremental run needs only the Genesys contacts of the changed
        # Salesforce records, which its pages read by id (the stored pair or the link), so it
        # skips the scan (N / 200 requests of the Genesys budget, whatever changed) and keeps the
        # Genesys watermark where it was. The scan stays for bidirectional runs, --full, and the
        # first run (it links contacts already in Genesys instead of creating them twice).
        scan = request.mode == "bidirectional" or gc_since is None
        if not scan:
            changes.genesys_watermark = state.get_text(engine, GC_WATERMARK) or changes.genesys_watermark
        params: dict[str, Any] = {"limit": 200}
        while scan:
            resp = await self._genesys.get(SCAN, **params)
            if resp.status_code >= 400:
                raise genesys_failure(resp, "contact scan")
            body = resp.json()
            entities = body.get("entities", [])
            stored_by_gc = sync_store.pairs_by_genesys_ids(engine, [c["id"] for c in entities])
            unlinked = []
            for contact in entities:
                modified = parse_sf_datetime(contact.get("modifyDate"))
                if gc_since is not None and modified is not None and modified < gc_since:
                    continue
                changes.genesys_changes += 1
                stored = stored_by_gc.get(contact["id"])
                linked = self.records.linked_salesforce_id(contact)
                if stored:
                    _add(keys, stored, contact["id"])
                elif linked:
                    unverified[contact["id"]] = linked  # a link we never made: check it exists
                else:
                    unlinked.append(contact)
            for contact, sf_id in zip(unlinked, await asyncio.to_thread(matcher.match, unlinked)):
                if sf_id:
                    _add(keys, sf_id, contact["id"])
                elif sf_id is None and request.mode == "bidirectional":
                    keys.setdefault(contact["id"], PairKey(genesys_id=contact["id"]))
            activity.heartbeat(changes.genesys_changes)
            after = (body.get("cursors") or {}).get("after")
            if not after:
                break
            params = {"limit": 200, "cursor": after}
        existing = await asyncio.to_thread(self._existing_contacts, set(unverified.values()))
        for gc_id, sf_id in unverified.items():
            if sf_id in existing:
                _add(keys, sf_id, gc_id)
            else:
                changes.ambiguous += 1
                sync_runs.add_review(engine, "dangling_link", gc_id, [sf_id],
                                     "the Genesys contact links a Salesforce id that does not exist",
                                     request.workflow_id)
        changes.run_id = request.run_id
        changes.pair_count = sync_runs.store_run_pairs(
            engine, request.run_id, [(k.salesforce_id, k.genesys_id) for k in keys.values()])
        return changes

    def _existing_contacts(self, ids: set[str]) -> set[str]:
        valid = sorted(i for i in ids if _SF_ID.match(i))  # a malformed id would fail the whole query
        found: set[str] = set()
        for start in range(0, len(valid), 200):
            soql = format_soql("SELECT Id FROM Contact WHERE Id IN {}", valid[start:start + 200])
            found |= {r["Id"] for r in query_records(self._sf, soql)}
        return found

    # -- the run's bookkeeping --------------------------------------------------------------------

    @activity.defn
    def load_run_pairs(self, pairs: PairRange) -> list[PairKey]:
        return [PairKey(salesforce_id=sf, genesys_id=gc)
                for sf, gc in sync_runs.run_pairs(self._engine, pairs.run_id, pairs.offset, pairs.limit)]

    @activity.defn
    async def pair_waits_for_decision(self, workflow_id: str) -> bool:
        """Whether an open SyncPairWorkflow is waiting for an operator (a `manual` conflict):
        a run leaves it be — it reads both sides afresh once decided — instead of waiting days."""
        from temporalio.service import RPCError

        try:
            return bool(await activity.client().get_workflow_handle(workflow_id).query("conflicts"))
        except RPCError:
            return False  # closed meanwhile: the caller starts it again

    @activity.defn
    def start_sync_run(self, start: SyncRunStart) -> None:
        sync_runs.start_run(self._engine, start.run_id, start.workflow_id, start.mode, start.path)

    @activity.defn
    async def finish_sync_run(self, finish: SyncRunFinish) -> int:
        """Watermarks (only when every pair is done), stats, the health score, the alerts."""
        from callbridge.core import metrics
        from callbridge.core.alerts import get_alert_channel

        engine, result = self._engine, finish.result
        if finish.changes is not None:
            # Only after every pair of the run is settled: a crash never skips a change.
            state.set_text(engine, SF_WATERMARK, finish.changes.salesforce_watermark)
            state.set_text(engine, GC_WATERMARK, finish.changes.genesys_watermark)
        history = [(r["stats"].get("errors", 0), r["duration_seconds"])
                   for r in reversed(sync_runs.list_runs(engine, limit=10)) if r["run_id"] != finish.run_id
                   and r["status"] != "running"]
        score = health_score([*history, (result.errors, result.duration_seconds)])
        result.health_score = score
        status = "stopped" if result.stopped else ("completed" if result.errors == 0 else "completed_with_errors")
        sync_runs.forget_run_pairs(engine, finish.run_id)
        sync_runs.finish_run(engine, finish.run_id, status, result.model_dump(exclude={"dry_run"}),
                             result.duration_seconds, score, note=result.stopped)
        metrics.record_sync_run("contact", result.errors == 0, result.duration_seconds,
                                {"created": result.created, "updated": result.updated, "deleted": result.deleted},
                                result.conflicts)
        channel = get_alert_channel(self._settings)
        a = finish.alerts
        for alert in run_alerts(result.errors, result.duration_seconds, result.conflicts, max_errors=a.errors,
                                max_seconds=a.duration_seconds, max_conflicts=a.conflicts):
            await channel.fire(alert.rule, alert.text, alert.level)
        return score

    @activity.defn
    def check_salesforce_allowance(self) -> AllowanceCheck:
        """The share of the daily API allowance used, as the last response said (Sforce-Limit-Info);
        asks /limits when this worker hasn't seen one yet."""
        if last_allowance.salesforce_share is None:
            try:
                limits = self._sf.restful("limits")
            except SalesforceError as exc:
                raise from_exception(exc, "limits read") from None
            daily = limits.get("DailyApiRequests") or {}
            if daily.get("Max"):
                used = daily["Max"] - daily.get("Remaining", daily["Max"])
                return AllowanceCheck(share=used / daily["Max"])
        return AllowanceCheck(share=last_allowance.salesforce_share)


class Matcher:
    """Matches one scan page's unlinked Genesys contacts to Salesforce contacts: batched, one
    query per key kind for the page, every non-unique answer to the review list."""

    def __init__(self, run: ContactSyncActivities, request: ChangeRequest, changes: ChangeSet) -> None:
        self.run, self.request, self.changes = run, request, changes
        self.claimed: set[str] = set()  # Salesforce ids matched earlier in this run
        self.shared: set[str] = set()   # Genesys contacts sharing their key with another one
        config = run.records.mapping
        self.email_field = next((m.genesys for m in config.fields if m.salesforce == "Email"), None)

    def match(self, contacts: list[dict[str, Any]]) -> list[str | None | bool]:
        """Per contact: its Salesforce id, None (no match), or False (ambiguous: under review)."""
        answers: dict[str, str | None | bool] = {c["id"]: None for c in contacts}
        open_ = {c["id"]: c for c in contacts}
        for kind in self.request.matching:
            if not open_:
                break
            if kind == "email" and self.email_field:
                found = self._by_email(list(open_.values()))
            elif kind == "phone":
                found = self._by_phone(list(open_.values()))
            elif kind == "name_account":
                found = self._by_name(list(open_.values()))
            else:
                continue
            for gc_id, candidates in found.items():
                answers[gc_id] = self._decide(kind, gc_id, candidates)
                open_.pop(gc_id, None)
        return [answers[c["id"]] for c in contacts]

    def _decide(self, kind: str, gc_id: str, candidates: list[dict[str, Any]]) -> str | bool:
        engine = self.run._engine
        ids = sorted({c["Id"] for c in candidates})
        linked_elsewhere = [c["Id"] for c in candidates if c.get(LINK_FIELD) and c.get(LINK_FIELD) != gc_id]
        if len(ids) == 1 and not linked_elsewhere and ids[0] not in self.claimed and gc_id not in self.shared \
                and sync_store.get_pair(engine, ids[0], None) is None:
            self.claimed.add(ids[0])
            setattr(self.changes, f"matched_by_{'name' if kind == 'name_account' else kind}",
                    getattr(self.changes, f"matched_by_{'name' if kind == 'name_account' else kind}") + 1)
            return ids[0]
        self.changes.ambiguous += 1
        if gc_id in self.shared:
            detail = f"several Genesys contacts match one Salesforce contact by {kind}"
        elif len(ids) > 1:
            detail = f"{len(ids)} Salesforce contacts match by {kind.replace('_', ' + ')}"
        else:
            detail = f"the Salesforce contact matching by {kind.replace('_', ' + ')} is linked to another Genesys contact"
        sync_runs.add_review(engine, f"ambiguous_{kind}", gc_id, ids, detail, self.request.workflow_id)
        return False

    def _by_email(self, contacts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        by_email: dict[str, list[str]] = defaultdict(list)
        for c in contacts:
            email = (c.get(self.email_field) or "").strip().lower()
            if email:
                by_email[email].append(c["id"])
        found: dict[str, list[dict[str, Any]]] = {}
        emails = sorted(by_email)
        for soql, chunk in in_chunks(f"SELECT Id, Email, {LINK_FIELD} FROM Contact WHERE Email IN {{}}", emails,
                                     max_count=100):
            rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in query_records(self.run._sf, soql):
                rows[(r.get("Email") or "").lower()].append(r)
            for email in chunk:
                if rows.get(email):
                    for gc_id in by_email[email]:
                        found[gc_id] = rows[email]
                        if len(by_email[email]) > 1:
                            self.shared.add(gc_id)  # two Genesys contacts, one address: not guessed
        return found

    def _by_phone(self, contacts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        config, region = self.run.records.mapping, self.run._settings.default_region
        phone_names = [m.salesforce for m in config.fields if m.genesys.endswith("Phone")]
        found: dict[str, list[dict[str, Any]]] = {}
        for c in contacts:
            canonical = from_genesys(c, config, region)
            hits: dict[str, dict[str, Any]] = {}
            for name in phone_names:
                number = canonical.get(name)
                if number and number.startswith("+"):
                    for row in state.lookup(self.run._engine, number):
                        hits[row["contact_id"]] = {"Id": row["contact_id"]}
            if hits:
                found[c["id"]] = list(hits.values())
        if found:  # the index doesn't hold the link: read it for the candidates
            ids = sorted({h["Id"] for hs in found.values() for h in hs})
            links = {}
            for start in range(0, len(ids), 200):
                soql = format_soql(f"SELECT Id, {LINK_FIELD} FROM Contact WHERE Id IN {{}}", ids[start:start + 200])
                links.update({r["Id"]: r for r in query_records(self.run._sf, soql)})
            found = {g: [links[h["Id"]] for h in hs if h["Id"] in links] for g, hs in found.items()}
            found = {g: hs for g, hs in found.items() if hs}
        return found

    def _by_name(self, contacts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """First + last name within the same account: one query for the page's last names, the
        rest compared here (case-insensitively, as SOQL would)."""
        wanted = {}
        for c in contacts:
            org = (c.get("externalOrganization") or {}).get("name")
            first, last = c.get("firstName"), c.get("lastName")
            if org and first and last:  # without an account there is no "same account" to match within
                wanted[c["id"]] = (first.strip().lower(), last.strip().lower(), org.strip().lower())
        found: dict[str, list[dict[str, Any]]] = {}
        last_names = sorted({w[1] for w in wanted.values()})
        rows: list[dict[str, Any]] = []
        # By bytes, not count: long names in other scripts would pass the URI limit (soql_in.py).
        for soql, _ in in_chunks(f"SELECT Id, FirstName, LastName, Account.Name, {LINK_FIELD} FROM Contact "
                                 "WHERE LastName IN {}", last_names, max_count=100):
            rows += [r for page in _pages(self.run._sf, soql) for r in page]
        by_key: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            key = ((r.get("FirstName") or "").lower(), (r.get("LastName") or "").lower(),
                   ((r.get("Account") or {}).get("Name") or "").lower())
            by_key[key].append(r)
        for gc_id, key in wanted.items():
            if by_key.get(key):
                found[gc_id] = by_key[key]
        return found


def _pages(sf, soql: str):
    from callbridge.clients.salesforce.query import query_pages

    return query_pages(sf, soql)


def _add(keys: dict[str, PairKey], sf_id: str, gc_id: str) -> None:
    keys[sf_id] = PairKey(salesforce_id=sf_id, genesys_id=gc_id)
