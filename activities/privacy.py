"""Privacy activities besides erasure: the tombstone check call logging makes, recording
retention, and consent (plain functions the CLI calls too)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql
from temporalio import activity
from temporalio.exceptions import ApplicationError

from callbridge.clients.salesforce.query import query_pages
from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.errors import from_exception
from callbridge.domain import privacy
from callbridge.domain.models import PhoneLookup
from callbridge.domain.privacy_models import RetentionReport, RetentionScan
from callbridge.core.settings import Settings
from callbridge.store import privacy as store
from callbridge.store.db import get_engine

_E164 = re.compile(r"^\+\d{7,15}$")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class PrivacyActivities:
    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection, settings: Settings) -> None:
        self._sf = salesforce
        self._genesys = genesys
        self._settings = settings

    @property
    def _engine(self):
        return get_engine(self._settings.database_url)

    @property
    def _key(self) -> str:
        return self._settings.privacy_hash_key.get_secret_value()

    @activity.defn
    def is_caller_erased(self, lookup: PhoneLookup) -> bool:
        """Whether this number belongs to an erased person (call logging then treats the caller
        as unknown and never creates a contact for them)."""
        return privacy.is_erased(store.Tombstones(self._engine), self._key, phones=[lookup.e164])

    # --- retention -------------------------------------------------------------------------------

    @activity.defn
    def retention_conversations(self, scan: RetentionScan) -> list[str]:
        """Conversations Callbridge logged (the Tasks' and Events' conversation ids): where recordings are."""
        ids: set[str] = set()
        try:
            for sobject in ("Task", "Event"):
                soql = f"SELECT Genesys_Conversation_Id__c FROM {sobject} WHERE Genesys_Conversation_Id__c != null"
                # queryAll: archived calls (closed, over a year old) are the ones retention is for.
                for page in query_pages(self._sf, soql, "queryAll", "retention scan"):
                    ids.update(r["Genesys_Conversation_Id__c"] for r in page)
                    activity.heartbeat(len(ids))
        except SalesforceError as exc:
            raise from_exception(exc, "retention scan") from None
        # Conversations of erased people whose Tasks are gone: the erasures' recorded findings
        # are not kept (ids only in a certificate), so those recordings were deleted by the erasure,
        # except those on legal hold: every conversation ever held is checked too, so a recording
        # an erasure had to keep goes once its hold is released.
        return sorted(ids | store.hold_conversations(self._engine))

    async def _get(self, path: str, what: str, **params: Any) -> Any:
        resp = await self._genesys.request("GET", path, params=params or None)
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise ApplicationError(f"Genesys {what} failed ({resp.status_code})", type="GenesysError",
                                   non_retryable=resp.status_code < 500 and resp.status_code != 429)
        return resp.json()

    def _subject_erased(self, conversation: dict[str, Any] | None) -> bool:
        if not conversation:
            return False
        phones = set()
        for p in conversation.get("participants", []):
            if p.get("purpose") in ("agent", "user", "acd", "ivr"):
                continue
            for key in ("ani", "address", "dnis"):
                value = (p.get(key) or "").removeprefix("tel:")
                if _E164.match(value):
                    phones.add(value)
        return privacy.is_erased(store.Tombstones(self._engine), self._key, phones=phones)

    @activity.defn
    async def retention_apply(self, scan: RetentionScan) -> RetentionReport:
        """Evaluate and delete the recordings of a batch of conversations."""
        report = RetentionReport(run_id=scan.run_id)
        now = datetime.now(timezone.utc)
        max_age = timedelta(days=scan.max_age_days)
        held = store.held_conversations(self._engine, scan.conversation_ids)
        for i, conv in enumerate(scan.conversation_ids):
            q = quote(conv, safe="")
            recordings = await self._get(f"/api/v2/conversations/{q}/recordings", "recording list",
                                         maxWaitMs=0, formatId="NONE") or []
            if not recordings:
                continue
            erased = self._subject_erased(await self._get(f"/api/v2/conversations/{q}", "conversation read"))
            for rec in recordings:
                report.checked += 1
                decision = privacy.evaluate_recording(
                    _parse_time(rec.get("creationTime") or rec["startTime"]), now, max_age,
                    on_legal_hold=conv in held, subject_erased=erased)
                if decision == "kept":
                    report.kept += 1
                    continue
                getattr(report, decision).append(rec["id"])
                if decision.startswith("deleted") and not scan.dry_run:
                    resp = await self._genesys.request(
                        "PUT", f"/api/v2/conversations/{q}/recordings/{quote(rec['id'], safe='')}",
                        json={"deleteDate": now.isoformat().replace("+00:00", "Z")})
                    if resp.status_code >= 400 and resp.status_code != 404:
                        raise ApplicationError(f"Genesys recording delete failed ({resp.status_code})",
                                               type="GenesysError", non_retryable=resp.status_code < 500
                                               and resp.status_code != 429)
            activity.heartbeat(i)
        return report

    @activity.defn
    def retention_save_report(self, report: RetentionReport) -> None:
        store.save_retention_report(self._engine, report.run_id, report.model_dump(mode="json"))
        store.audit(self._engine, "retention", "run", ["recording"] if report.deleted_retention or report.deleted_gdpr
                    else [], request_id=None)


# --- consent (seed: createContactWithConsent / withdrawConsent) ----------------------------------

CONSENT_FIELDS = ("Id, Contact__c, Consent_Type__c, Channel__c, Version__c, Consent_Date__c, Withdrawn__c, "
                  "Withdrawn_Date__c, CreatedDate")


def record_consent(sf: SalesforceConnection, settings: Settings, contact_id: str, consent_type: str, channel: str,
                   version: str, date: datetime | None = None) -> str:
    """A Contact_Consent__c record for the contact; returns its id."""
    body = {"Contact__c": contact_id, "Consent_Type__c": consent_type, "Channel__c": channel,
            "Version__c": version, "Consent_Date__c": (date or datetime.now(timezone.utc)).isoformat(),
            "Withdrawn__c": False}
    try:
        created = sf.restful("sobjects/Contact_Consent__c", method="POST", json=body)
    except SalesforceError as exc:
        raise from_exception(exc, "consent record") from None
    store.audit(get_engine(settings.database_url), "consent", "recorded", ["consent"],
                subject_hash=privacy.keyed_hash(settings.privacy_hash_key.get_secret_value(), "sf_id", contact_id))
    return created["id"]


def contact_consents(sf: SalesforceConnection, contact_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in contact_ids}
    for i in range(0, len(contact_ids), 200):
        soql = format_soql(f"SELECT {CONSENT_FIELDS} FROM Contact_Consent__c WHERE Contact__c IN {{}}",
                           contact_ids[i:i + 200])
        for page in query_pages(sf, soql):
            for r in page:
                out.setdefault(r["Contact__c"], []).append(r)
    return out


def withdraw_consent(sf: SalesforceConnection, settings: Settings, contact_id: str,
                     consent_type: str | None = None, when: datetime | None = None) -> int:
    """Mark the contact's consents (of one type, or all) withdrawn, and when; returns how many."""
    consents = [c for c in contact_consents(sf, [contact_id])[contact_id]
                if not c.get("Withdrawn__c") and (consent_type is None or c["Consent_Type__c"] == consent_type)]
    withdrawn = {"Withdrawn__c": True, "Withdrawn_Date__c": (when or datetime.now(timezone.utc)).isoformat()}
    for c in consents:
        try:
            sf.restful(f"sobjects/Contact_Consent__c/{c['Id']}", method="PATCH", json=withdrawn)
        except SalesforceError as exc:
            raise from_exception(exc, "consent withdrawal") from None
    store.audit(get_engine(settings.database_url), "consent", "withdrawn", ["consent"],
                subject_hash=privacy.keyed_hash(settings.privacy_hash_key.get_secret_value(), "sf_id", contact_id))
    return len(consents)


def syncable_contacts(sf: SalesforceConnection, settings: Settings, contact_ids: list[str]) -> set[str]:
    """Contacts contact sync may push to Genesys: service consent given and not withdrawn (when
    `sync_requires_service_consent`), and not erased."""
    consents = contact_consents(sf, contact_ids) if settings.sync_requires_service_consent else {}
    tombstones = store.Tombstones(get_engine(settings.database_url))
    key = settings.privacy_hash_key.get_secret_value()
    return {c for c in contact_ids
            if privacy.may_sync(consents.get(c, []), settings.service_consent_type, settings.sync_requires_service_consent)
            and not privacy.is_erased(tombstones, key, sf_ids=[c])}
