"""Reading and shaping contact pairs for sync: shared by the per-pair and the bulk path.

Both paths read the same fields, build the same snapshot (canonical records, the stored base,
the links), check the same tombstones and write the same Genesys bodies, so they can never
disagree on what a pair looks like.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote

from simple_salesforce.format import format_soql
from temporalio.exceptions import ApplicationError

from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.query import query_records
from callbridge.domain.caller_id import INDEX_SOQL_FIELDS
from callbridge.core.settings import Settings
from callbridge.domain.sync import config as sync_config
from callbridge.domain.sync.models import PairSnapshot
from callbridge.domain.sync.records import from_genesys, from_salesforce, to_genesys
from callbridge.domain.sync.steps import LINK_FIELD

GENESYS_CONTACTS = "/api/v2/externalcontacts/contacts"
GENESYS_BULK = "/api/v2/externalcontacts/bulk/contacts"
SERVER_FIELDS = ("id", "selfUri", "createDate", "modifyDate", "division")


def genesys_failure(resp, what: str) -> ApplicationError:
    """A Genesys error as an activity failure: 4xx (but 429) won't get better by retrying."""
    return ApplicationError(f"Genesys {what} failed ({resp.status_code}): {resp.text[:300]}", type="GenesysError",
                            non_retryable=resp.status_code < 500 and resp.status_code != 429)


class SyncRecords:
    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection, settings: Settings) -> None:
        self._sf = salesforce
        self._genesys = genesys
        self._settings = settings

    @functools.cached_property
    def mapping(self) -> sync_config.SyncConfig:
        """The mapping file, read once per worker (activities run for every pair)."""
        path = self._settings.sync_config_path
        return sync_config.load(Path(path) if path else None)

    @functools.cached_property
    def salesforce_fields(self) -> str:
        # The mapped fields, the link, what a merge needs, and what the caller-ID index needs
        # (so a sync write updates the screen pop's index from the same read).
        names = {m.salesforce for m in self.mapping.fields} | {
            "Id", "IsDeleted", "LastModifiedDate", LINK_FIELD, "MailingCountry"}
        names |= {n.strip() for n in INDEX_SOQL_FIELDS.split(",")}
        return ", ".join(sorted(names))

    # -- reads ----------------------------------------------------------------------------------

    def read_salesforce(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Contacts by id, deleted ones included (queryAll), with their consents (a child
        subquery, so the consent gate costs no request): up to 200, usually in one request."""
        if not ids:
            return {}
        consents = ", (SELECT Consent_Type__c, Consent_Date__c, Withdrawn__c, CreatedDate FROM Contact_Consents__r)" \
            if self._settings.sync_requires_service_consent else ""
        soql = format_soql(f"SELECT {self.salesforce_fields}{consents} FROM Contact WHERE Id IN {{}}",
                           sorted(set(ids)))
        # Every page: a page may be cut short (consent rows count toward its size), and a
        # contact missing from the read would be taken as deleted.
        records = query_records(self._sf, soql, "queryAll")
        return {r["Id"]: r for r in records}

    async def read_genesys(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """External contacts by id: one bulk request for up to 200; a missing one is left out."""
        ids = sorted(set(ids))
        if not ids:
            return {}
        if len(ids) == 1:
            resp = await self._genesys.get(f"{GENESYS_CONTACTS}/{quote(ids[0], safe='')}")
            if resp.status_code == 404:
                return {}
            if resp.status_code >= 400:
                raise genesys_failure(resp, "contact read")
            return {ids[0]: resp.json()}
        resp = await self._genesys.request("POST", GENESYS_BULK, json={"entities": [{"id": i} for i in ids]})
        if resp.status_code >= 400:
            raise genesys_failure(resp, "bulk contact read")
        found: dict[str, dict[str, Any]] = {}
        for result in resp.json().get("results", []):
            if result.get("success") and result.get("entity"):
                found[result["entity"]["id"]] = result["entity"]
            elif (error := result.get("error") or {}).get("status") != 404:
                # Per-entity errors (BulkEntityErrorEntity): status, code, and whether to retry.
                raise ApplicationError(f"Genesys bulk contact read failed for a contact ({error.get('status')} "
                                       f"{error.get('code')})", type="GenesysError",
                                       non_retryable=error.get("retryable") is False)
        return found

    # -- shaping --------------------------------------------------------------------------------

    def snapshot(self, sf_id: str | None, gc_id: str | None, stored: dict[str, Any] | None,
                 sf_record: dict[str, Any] | None, gc_contact: dict[str, Any] | None) -> PairSnapshot:
        """One pair as read: canonical records, deletions (a vanished record of a stored pair
        is a deletion), the base, and whether each side's link is in place."""
        config, region = self.mapping, self._settings.default_region
        snap = PairSnapshot(salesforce_id=sf_id, genesys_id=gc_id, base=(stored or {}).get("base"),
                            version=(stored or {}).get("version", 0))
        if sf_record is not None:
            snap.salesforce_modified = sf_record.get("LastModifiedDate")
            if sf_record.get("IsDeleted"):
                snap.salesforce_deleted = True
            else:
                snap.salesforce = from_salesforce(sf_record, config, region)
                snap.salesforce_link_ok = bool(gc_id) and sf_record.get(LINK_FIELD) == gc_id
                snap.no_consent = not self.consented(sf_record)
        elif stored and sf_id:
            snap.salesforce_deleted = True
        if gc_contact is not None:
            snap.genesys_raw = gc_contact
            snap.genesys_modified = gc_contact.get("modifyDate")
            snap.genesys = from_genesys(gc_contact, config, region)
            snap.genesys_link_ok = bool(sf_id) and self.linked_salesforce_id(gc_contact) == sf_id
        elif stored and gc_id:
            snap.genesys_deleted = True
        return snap

    def consented(self, sf_record: dict[str, Any]) -> bool:
        """Service consent given and not withdrawn, when the settings require it (docs/privacy.md)."""
        from callbridge.domain.privacy import may_sync

        s = self._settings
        consents = (sf_record.get("Contact_Consents__r") or {}).get("records") or []
        return may_sync(consents, s.service_consent_type, s.sync_requires_service_consent)

    def linked_salesforce_id(self, contact: dict[str, Any]) -> str | None:
        source = self._settings.genesys_external_source_id
        return next((e.get("value") for e in contact.get("externalIds") or []
                     if (e.get("externalSource") or {}).get("id") == source), None)

    def _hashes(self, snap: PairSnapshot) -> dict[str, str]:
        from callbridge.domain.privacy import subject_hashes

        records = [r for r in (snap.salesforce, snap.genesys) if r]
        return subject_hashes(self._settings.privacy_hash_key.get_secret_value(),
                              emails=[r.get("Email") for r in records if r.get("Email")],
                              phones=[r.get(f) for r in records for f in ("Phone", "MobilePhone") if r.get(f)],
                              sf_ids=[snap.salesforce_id] if snap.salesforce_id else [],
                              genesys_ids=[snap.genesys_id] if snap.genesys_id else [])

    def mark_erased(self, engine, snaps: list[PairSnapshot]) -> None:
        """`erased` for a page of pairs with one query to the tombstones."""
        from callbridge.store.privacy import known_tombstones

        per_snap = [self._hashes(s) for s in snaps]
        found = known_tombstones(engine, [h for hs in per_snap for h in hs])
        for snap, hashes in zip(snaps, per_snap):
            snap.erased = any(h in found for h in hashes)

    def erased(self, tombstones, snap: PairSnapshot) -> bool:
        """An erased person is never re-created or re-linked (docs/privacy.md)."""
        from callbridge.domain.privacy import is_erased

        records = [r for r in (snap.salesforce, snap.genesys) if r]
        emails = {r.get("Email") for r in records if r.get("Email")}
        phones = [r.get(f) for r in records for f in ("Phone", "MobilePhone")]
        key = self._settings.privacy_hash_key.get_secret_value()
        return any(is_erased(tombstones, key, email=e, phones=phones, sf_ids=[snap.salesforce_id],
                             genesys_ids=[snap.genesys_id]) for e in (emails or {None}))

    def genesys_body(self, fields: dict[str, Any], current: dict[str, Any] | None,
                     link_salesforce_id: str | None) -> dict[str, Any]:
        """A whole external contact to create or PUT: the current one, the changed fields, the link."""
        body = {k: v for k, v in (current or {}).items() if k not in SERVER_FIELDS}
        body.update(to_genesys(fields, self.mapping))
        if link_salesforce_id:
            source = self._settings.genesys_external_source_id
            others = [e for e in body.get("externalIds") or []
                      if (e.get("externalSource") or {}).get("id") != source]
            body["externalIds"] = [*others, {"externalSource": {"id": source}, "value": link_salesforce_id}]
        return body

    async def find_created(self, salesforce_id: str | None) -> str | None:
        """The Genesys contact already carrying this Salesforce id (an identifier of type
        ExternalId, looked up exactly): a retried create may have been done by the attempt that
        died before its id was stored."""
        if not salesforce_id:
            return None
        resp = await self._genesys.request("POST", "/api/v2/externalcontacts/identifierlookup/contacts", json={
            "type": "ExternalId", "value": salesforce_id,
            "externalSource": {"id": self._settings.genesys_external_source_id}})
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise genesys_failure(resp, "identifier lookup")
        return resp.json()["id"]

    @staticmethod
    def index_record(sf_record: dict[str, Any] | None, written: dict[str, Any], sf_id: str) -> dict[str, Any]:
        """The Salesforce contact as it is after a sync write, for the caller-ID index."""
        record = {k: v for k, v in (sf_record or {}).items() if k not in ("attributes", "Contact_Consents__r")}
        record.update(written)
        record["Id"] = sf_id
        return record
