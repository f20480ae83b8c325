"""GDPR erasure activities: find a person in every system, delete, and search again.

Each activity talks to one system and is idempotent (a record already gone counts as
deleted), so Temporal retries and a worker crash only ever repeat work. The person's email
and phones are read from the sealed erasure request in the state store, never passed through
workflow history.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import quote

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from callbridge.clients.salesforce.query import query_pages
from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.errors import from_exception
from callbridge.clients.salesforce.hard_delete import hard_delete
from callbridge.domain import privacy
from callbridge.domain.phone import all_e164, region_for_country
from callbridge.domain.privacy_models import (
    AlertRequest,
    CertificateRequest,
    DeleteRecordings,
    DeleteRecords,
    DiscoverRequest,
    FailureRequest,
    GenesysFindings,
    RecordingRef,
    SalesforceFindings,
    VerifyRequest,
)
from callbridge.core.settings import Settings
from callbridge.store import caller_index
from callbridge.store import privacy as store
from callbridge.store import sync as sync_store
from callbridge.store.sync_runs import forget_pair_audit, forget_review
from callbridge.store.db import get_engine

PHONE_FIELDS = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")
_CONTACT_FIELDS = "Id, Email, Phone, MobilePhone, HomePhone, OtherPhone, MailingCountry, Account.BillingCountry"
_DELETABLE = {"Contact", "Task", "Event", "Contact_Consent__c"}
_IN_CHUNK = 200  # ids per IN (...) clause


def _chunks(ids: list[str], n: int = _IN_CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(ids), n):
        yield ids[i:i + n]


class GdprErasureActivities:
    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection, settings: Settings,
                 client: Client | None = None) -> None:
        self._sf = salesforce
        self._genesys = genesys
        self._settings = settings
        self._client = client

    @property
    def _engine(self):
        return get_engine(self._settings.database_url)

    @property
    def _key(self) -> str:
        return self._settings.privacy_hash_key.get_secret_value()

    def _identifiers(self, request_id: str) -> dict[str, list[str]]:
        row = store.get_request(self._engine, request_id)
        if row is None:
            raise ApplicationError("unknown erasure request", type="ErasureUnknown", non_retryable=True)
        if not row["sealed_identifiers"]:
            return {"emails": [], "phones": [], "contact_ids": [], "genesys_ids": []}
        ids = store.unseal(self._settings.payload_keys.get_secret_value(), row["sealed_identifiers"])
        ids.setdefault("genesys_ids", [])  # requests sealed before Genesys ids were kept
        return ids

    def _seal(self, request_id: str, ids: dict[str, list[str]]) -> None:
        store.update_identifiers(self._engine, request_id,
                                 store.seal(self._settings.payload_keys.get_secret_value(), ids))

    async def _temporal(self) -> Client:
        """The worker's own client (as reconciliation and sync use), unless one was given."""
        return self._client or activity.client()

    def _records(self, soql: str) -> list[dict[str, Any]]:
        """queryAll, never query: `query` leaves out Tasks and Events Salesforce has archived
        (closed and over a year old) and records in the recycle bin, and those are the
        person's data too: all of it is hard-deleted, and verified gone."""
        return [r for page in query_pages(self._sf, soql, "queryAll", "erasure read") for r in page]

    # --- Salesforce ------------------------------------------------------------------------------

    def _find_contacts(self, ids: dict[str, list[str]]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for email in ids["emails"]:
            soql = format_soql(f"SELECT {_CONTACT_FIELDS} FROM Contact WHERE Email = {{}}", email)
            for r in self._records(soql):
                found[r["Id"]] = r
        for e164 in ids["phones"]:
            # In any digit script it was typed in (full-width, Arabic-Indic, …).
            where, patterns = phone_like_clause(e164)
            soql = format_soql(f"SELECT {_CONTACT_FIELDS} FROM Contact WHERE {where}", **patterns)
            for r in self._records(soql):
                if e164 in self._phones_of(r):  # LIKE over-matches: keep those really holding it
                    found[r["Id"]] = r
        if ids["contact_ids"]:
            for chunk in _chunks(ids["contact_ids"]):
                soql = format_soql(f"SELECT {_CONTACT_FIELDS} FROM Contact WHERE Id IN {{}}",
                                   chunk)
                for r in self._records(soql):
                    found[r["Id"]] = r
        return list(found.values())

    def _phones_of(self, record: dict[str, Any]) -> set[str]:
        country = record.get("MailingCountry") or (record.get("Account") or {}).get("BillingCountry")
        region = region_for_country(country, self._settings.default_region)
        return {n for f in PHONE_FIELDS for n in all_e164(record.get(f), region)}

    def _children(self, sobject: str, field: str, parent_ids: list[str], extra: str = "") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chunk in _chunks(parent_ids):
            out += self._records(format_soql(f"SELECT Id{extra} FROM {sobject} WHERE "
                                             f"{field} IN {{}}", chunk))
        return out

    @activity.defn
    def erasure_discover_salesforce(self, request_id: str) -> SalesforceFindings:
        """The person's contacts (by email, any phone field, id), their Tasks, Events and consents.

        Emails and phones found on the contacts join the sealed identifiers, so Genesys and the
        tombstone cover them too.
        """
        try:
            ids = self._identifiers(request_id)
            contacts = self._find_contacts(ids)
            contact_ids = sorted(r["Id"] for r in contacts)
            emails = set(ids["emails"]) | {r["Email"].lower() for r in contacts if r.get("Email")}
            phones = set(ids["phones"]) | {p for r in contacts for p in self._phones_of(r)}
            self._seal(request_id, {**ids, "emails": sorted(emails), "phones": sorted(phones),
                                    "contact_ids": sorted(set(ids["contact_ids"]) | set(contact_ids))})
            tasks = self._children("Task", "WhoId", contact_ids, ", Genesys_Conversation_Id__c")
            events = self._children("Event", "WhoId", contact_ids, ", Genesys_Conversation_Id__c")
            consents = self._children("Contact_Consent__c", "Contact__c", contact_ids)
        except SalesforceError as exc:
            raise from_exception(exc, "erasure discovery") from None
        conversations = {r["Genesys_Conversation_Id__c"] for r in tasks + events if r.get("Genesys_Conversation_Id__c")}
        return SalesforceFindings(
            contact_ids=contact_ids, task_ids=sorted(r["Id"] for r in tasks),
            event_ids=sorted(r["Id"] for r in events), consent_ids=sorted(r["Id"] for r in consents),
            conversation_ids=sorted(conversations),
        )

    @activity.defn
    def erasure_delete_salesforce(self, request: DeleteRecords) -> list[str]:
        """Hard-delete the records (Bulk API 2.0): nothing is left in the recycle bin. One
        already gone counts as deleted."""
        if request.sobject not in _DELETABLE:
            raise ApplicationError(f"not an erasable sObject: {request.sobject}", non_retryable=True)
        return hard_delete(self._sf, request.sobject, request.ids, activity.heartbeat)

    def _verify_salesforce(self, request: VerifyRequest) -> dict[str, int]:
        ids = self._identifiers(request.request_id)
        sf = request.findings.salesforce
        contact_ids = sorted(set(sf.contact_ids) | set(ids["contact_ids"]))
        remaining = {"salesforce.contacts": len(self._find_contacts({**ids, "contact_ids": contact_ids}))}
        remaining["salesforce.tasks"] = len(self._children("Task", "WhoId", contact_ids))
        remaining["salesforce.events"] = len(self._children("Event", "WhoId", contact_ids))
        consents = {r["Id"] for r in self._children("Contact_Consent__c", "Contact__c", contact_ids)}
        consents |= {r["Id"] for r in self._children("Contact_Consent__c", "Id", sf.consent_ids)}
        remaining["salesforce.consents"] = len(consents)
        calls = {r["Id"] for r in self._children("Task", "Genesys_Conversation_Id__c", sf.conversation_ids)}
        calls |= {r["Id"] for r in self._children("Event", "Genesys_Conversation_Id__c", sf.conversation_ids)}
        remaining["salesforce.call_activities"] = len(calls)
        return remaining

    @activity.defn
    def erasure_verify_salesforce(self, request: VerifyRequest) -> dict[str, int]:
        try:
            return self._verify_salesforce(request)
        except SalesforceError as exc:
            raise from_exception(exc, "erasure verification") from None

    # --- Genesys ---------------------------------------------------------------------------------

    async def _genesys_json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        resp = await self._genesys.request(method, path, **kwargs)
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise ApplicationError(f"Genesys {what} failed ({resp.status_code})", type="GenesysError",
                                   non_retryable=resp.status_code < 500 and resp.status_code != 429)
        return resp.json() if resp.content else {}

    async def _external_contacts(self, ids: dict[str, list[str]]) -> set[str]:
        found: set[str] = set()
        for value in [*ids["emails"], *ids["phones"]]:
            body = await self._genesys_json("GET", "/api/v2/externalcontacts/reversewhitepageslookup",
                                            "external contact lookup", params={"lookupVal": value})
            found |= {c["id"] for c in (body or {}).get("contacts", [])}
        return found

    async def _recordings(self, conversation_ids: list[str]) -> list[RecordingRef]:
        out: list[RecordingRef] = []
        for conv in conversation_ids:
            body = await self._genesys_json(
                "GET", f"/api/v2/conversations/{quote(conv, safe='')}/recordings", "recording list",
                params={"maxWaitMs": 0, "formatId": "NONE"})
            out += [RecordingRef(conversation_id=conv, recording_id=r["id"]) for r in body or []]
        return out

    @activity.defn
    async def erasure_discover_genesys(self, request: DiscoverRequest) -> GenesysFindings:
        """External contacts by the person's emails and phones (and those sync paired with their
        contacts); recordings of their calls, apart from those of conversations on legal hold.

        A legal hold wins over erasure (GDPR art. 17(3)(e): data needed for legal claims is
        exempt): those recordings are kept and named in the certificate.
        """
        ids = self._identifiers(request.request_id)
        contacts = await self._external_contacts(ids)
        contacts |= {p["genesys_id"] for p in sync_store.pairs_for(self._engine, ids["contact_ids"], [])}
        # Kept sealed: the tombstone and the sync-state cleanup need them after the contacts are gone.
        self._seal(request.request_id, {**ids, "genesys_ids": sorted(set(ids["genesys_ids"]) | contacts)})
        held = store.held_conversations(self._engine, request.conversation_ids)
        recordings = await self._recordings(request.conversation_ids)
        return GenesysFindings(external_contact_ids=sorted(contacts),
                               recordings=[r for r in recordings if r.conversation_id not in held],
                               held_recordings=[r for r in recordings if r.conversation_id in held])

    @activity.defn
    async def erasure_delete_genesys_contacts(self, request: DeleteRecords) -> list[str]:
        for contact_id in request.ids:
            await self._genesys_json("DELETE", f"/api/v2/externalcontacts/contacts/{quote(contact_id, safe='')}",
                                     "external contact delete")
        return request.ids

    @activity.defn
    async def erasure_delete_recordings(self, request: DeleteRecordings) -> list[str]:
        """A recording is deleted by setting its deleteDate to now (Genesys purges it)."""
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        for ref in request.recordings:
            await self._genesys_json(
                "PUT", f"/api/v2/conversations/{quote(ref.conversation_id, safe='')}/recordings/"
                       f"{quote(ref.recording_id, safe='')}",
                "recording delete", json={"deleteDate": now})
        return [r.recording_id for r in request.recordings]

    @activity.defn
    async def erasure_verify_genesys(self, request: VerifyRequest) -> dict[str, int]:
        ids = self._identifiers(request.request_id)
        gz = request.findings.genesys
        contacts = await self._external_contacts(ids)
        for contact_id in gz.external_contact_ids:
            if await self._genesys_json("GET", f"/api/v2/externalcontacts/contacts/{quote(contact_id, safe='')}",
                                        "external contact read") is not None:
                contacts.add(contact_id)
        conversations = request.findings.salesforce.conversation_ids
        held = store.held_conversations(self._engine, conversations)
        recordings = await self._recordings([c for c in conversations if c not in held])
        return {"genesys.external_contacts": len(contacts), "genesys.recordings": len(recordings)}

    # --- Callbridge's own stores -----------------------------------------------------------------

    def _hashes(self, request_id: str, ids: dict[str, list[str]]) -> dict[str, str]:
        return privacy.subject_hashes(self._key, emails=ids["emails"], phones=ids["phones"], sf_ids=ids["contact_ids"],
                                      genesys_ids=ids.get("genesys_ids", []))

    def _sync_ids(self, ids: dict[str, list[str]]) -> tuple[list[str], list[str]]:
        """The person's Salesforce and Genesys ids, with both ends of every sync pair they're in."""
        sf, gc = set(ids["contact_ids"]), set(ids.get("genesys_ids", []))
        for pair in sync_store.pairs_for(self._engine, sorted(sf), sorted(gc)):
            sf.add(pair["salesforce_id"])
            gc.add(pair["genesys_id"])
        return sorted(sf), sorted(gc)

    @activity.defn
    def erasure_write_tombstone(self, request_id: str) -> int:
        """Keyed hashes of every identifier: from now on sync and call logging skip the person."""
        ids = self._identifiers(request_id)
        store.add_tombstones(self._engine, request_id, self._hashes(request_id, ids))
        return store.tombstone_count(self._engine, request_id)

    @activity.defn
    def erasure_delete_local(self, request_id: str) -> dict[str, int]:
        """The caller-ID index rows (bumping its version drops the lookup's caches), contact
        sync's state (pairs with their bases, the field audit with old → new values, review
        cases) and privacy audit entries about the person, except this erasure's own."""
        ids = self._identifiers(request_id)
        engine = self._engine
        sf_ids, gc_ids = self._sync_ids(ids)
        pairs = sync_store.pairs_for(engine, sf_ids, gc_ids)
        for pair in pairs:
            sync_store.forget_pair(engine, pair["salesforce_id"])
        sync_audit = forget_pair_audit(engine, sf_ids, gc_ids)
        review = forget_review(engine, sf_ids, gc_ids)
        removed = caller_index.remove_contacts(engine, ids["contact_ids"])
        for e164 in ids["phones"]:
            # Rows of the person's numbers on contacts the erasure found under another id.
            hits = [h["contact_id"] for h in caller_index.lookup(engine, e164) if h["contact_id"] in ids["contact_ids"]]
            removed += caller_index.remove_contacts(engine, hits)
        audit = store.delete_audit_for(engine, self._hashes(request_id, ids), keep_request_id=request_id)
        store.audit(engine, "erasure", "deleted_local", (), subject_hash=None, request_id=request_id)
        return {"caller_index": removed, "audit": audit, "sync_pairs": len(pairs), "sync_audit": sync_audit,
                "sync_review": review}

    @activity.defn
    def erasure_verify_local(self, request_id: str) -> dict[str, int]:
        ids = self._identifiers(request_id)
        engine = self._engine
        index_rows = sum(1 for e164 in ids["phones"] for h in caller_index.lookup(engine, e164)
                         if h["contact_id"] in ids["contact_ids"])
        from sqlalchemy import func, select

        from callbridge.store.tables import caller_index as index_table

        with engine.connect() as conn:
            if ids["contact_ids"]:
                index_rows += conn.execute(select(func.count()).select_from(index_table).where(
                    index_table.c.contact_id.in_(ids["contact_ids"]))).scalar_one()
        audit = store.count_audit_for(engine, self._hashes(request_id, ids), keep_request_id=request_id)
        return {"local.caller_index": index_rows, "local.audit": audit, **self._count_sync_state(ids)}

    def _count_sync_state(self, ids: dict[str, list[str]]) -> dict[str, int]:
        from sqlalchemy import func, or_, select

        from callbridge.store.sync_runs import sync_audit, sync_review

        sf_ids, gc_ids = self._sync_ids(ids)
        out = {"local.sync_pairs": len(sync_store.pairs_for(self._engine, sf_ids, gc_ids))}
        with self._engine.connect() as conn:
            audit = [c for c in (sync_audit.c.salesforce_id.in_(sf_ids) if sf_ids else None,
                                 sync_audit.c.genesys_id.in_(gc_ids) if gc_ids else None) if c is not None]
            out["local.sync_audit"] = conn.execute(select(func.count()).select_from(sync_audit).where(
                or_(*audit))).scalar_one() if audit else 0
            review = [sync_review.c.salesforce_ids.contains(i) for i in sf_ids]
            if gc_ids:
                review.append(sync_review.c.genesys_id.in_(gc_ids))
            out["local.sync_review"] = conn.execute(select(func.count()).select_from(sync_review).where(
                or_(*review))).scalar_one() if review else 0
        return out

    # --- Temporal --------------------------------------------------------------------------------

    @activity.defn
    async def erasure_discover_workflows(self, request: DiscoverRequest) -> list[str]:
        """Workflow executions about the person: their calls' logging and recording follow-ups,
        their contact sync pairs
        (`sync-pair-{id}`: a running one is waited for, so it can't write them back), anything
        tagged with their contact."""
        from callbridge.domain.workflow_ids import call_log_id, recording_link_id

        client = await self._temporal()
        ids = self._identifiers(request.request_id)
        sf_ids, gc_ids = self._sync_ids({**ids, "contact_ids": sorted(set(ids["contact_ids"]) | set(request.contact_ids))})
        # A call's recording follow-up too: its recording is deleted by the erasure, so a running
        # one ends at its next check ("gone") and its history can go.
        candidates = [call_log_id(c) for c in request.conversation_ids] + \
            [recording_link_id(c) for c in request.conversation_ids] + [f"sync-pair-{i}" for i in sf_ids + gc_ids]
        found: set[str] = set()
        for wf_id in candidates:
            try:
                await client.get_workflow_handle(wf_id).describe()
                found.add(wf_id)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
        for chunk in _chunks(request.contact_ids, 50):
            query = "CallbridgeContactId IN (" + ", ".join(f"'{c}'" for c in chunk if c.isalnum()) + ")"
            async for wf in client.list_workflows(query):
                found.add(wf.id)
        return sorted(found)

    @activity.defn
    async def erasure_delete_workflows(self, request: DeleteRecords) -> list[str]:
        """Delete closed histories; a running one is waited for (retried), never terminated."""
        client = await self._temporal()
        running = []
        for wf_id in request.ids:
            try:
                desc = await client.get_workflow_handle(wf_id).describe()
                if desc.status == WorkflowExecutionStatus.RUNNING:
                    running.append(wf_id)
                    continue
                await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
                    namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=wf_id)))
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
        if running:
            raise ApplicationError(f"{len(running)} workflow(s) still running", type="WorkflowsRunning")
        return request.ids

    async def _await_sync_runs(self, client: Client, request_id: str) -> None:
        """A contact sync run that started before the tombstone may have read the person before
        it and write them back after the erasure looked: the erasure is certified only once such
        a run has ended (retried until then; the next verification finds what it wrote)."""
        since = store.tombstoned_at(self._engine, request_id)
        if since is None:
            return
        try:
            desc = await client.get_workflow_handle("contact-sync").describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return
            raise
        if desc.status == WorkflowExecutionStatus.RUNNING and desc.start_time and desc.start_time < since:
            raise ApplicationError("a contact sync run from before the tombstone is still running",
                                   type="SyncInFlight")

    @activity.defn
    async def erasure_verify_workflows(self, request: VerifyRequest) -> dict[str, int]:
        client = await self._temporal()
        await self._await_sync_runs(client, request.request_id)
        remaining = 0
        for wf_id in request.findings.workflow_ids:
            try:
                await client.get_workflow_handle(wf_id).describe()
                remaining += 1
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
        return {"temporal.histories": remaining}

    @activity.defn
    async def privacy_alert(self, request: AlertRequest) -> bool:
        from callbridge.core.alerts import send_alert

        return await send_alert(self._settings, request.level, request.text, request_id=request.request_id)

    # --- the certificate -------------------------------------------------------------------------

    @activity.defn
    def erasure_record_certificate(self, request: CertificateRequest) -> dict:
        row = store.get_request(self._engine, request.request_id)
        cert = privacy.build_certificate(
            request_id=request.request_id, workflow_id=request.workflow_id, subject_hash=row["subject_hash"],
            requested_at=request.requested_at, completed_at=datetime.now(timezone.utc),
            deleted=request.deleted, verification=request.verification, key=self._key,
            kept=request.kept, local=request.local,
        )
        cert["tombstones"] = store.tombstone_count(self._engine, request.request_id)
        store.complete_request(self._engine, request.request_id, cert)  # wipes the sealed identifiers
        store.audit(self._engine, "erasure", "certificate", (), subject_hash=row["subject_hash"],
                    request_id=request.request_id)
        return cert

    @activity.defn
    def erasure_record_failure(self, request: FailureRequest) -> dict:
        """The request's stored status becomes `failed`, with what was left (counts, no PII)."""
        report = {"requestId": request.request_id, "workflowId": request.workflow_id, "failed": True,
                  "reason": request.reason, "failedAt": datetime.now(timezone.utc).isoformat(),
                  "remaining": dict(sorted(request.remaining.items()))}
        store.fail_request(self._engine, request.request_id, report)
        store.audit(self._engine, "erasure", "failed", (), request_id=request.request_id)
        return report


def phone_like_clause(e164: str) -> tuple[str, dict[str, str]]:
    from activities.call_logging import phone_like_clause as clause

    return clause(e164)
