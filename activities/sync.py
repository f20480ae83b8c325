"""Contact-sync activities: read a pair, write one side, store the agreed base."""

from __future__ import annotations

import asyncio
import functools
import re
from datetime import datetime, timedelta, timezone

from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound
from simple_salesforce.format import format_soql
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.genesys_connection import GenesysConnection
from activities.salesforce_connection import SalesforceConnection
from activities.salesforce_errors import from_exception
from callbridge.matching import parse_sf_datetime
from callbridge.settings import Settings
from callbridge.store import sync as sync_store
from callbridge.store.db import get_engine
from callbridge.sync import config as sync_config
from callbridge.sync.models import (
    ChangeRequest,
    ChangeSet,
    GenesysWrite,
    PairKey,
    PairSnapshot,
    SalesforceWrite,
    StoreBaseRequest,
)
from callbridge.sync.records import from_genesys, from_salesforce, to_genesys

GENESYS_CONTACTS = "/api/v2/externalcontacts/contacts"


class SyncActivities:
    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection, settings: Settings) -> None:
        self._sf = salesforce
        self._genesys = genesys
        self._settings = settings

    @functools.cached_property
    def _mapping(self):
        """The mapping file, read once per worker (activities run for every pair)."""
        path = self._settings.sync_config_path
        return sync_config.load(Path(path) if path else None)

    def _read_salesforce(self, contact_id: str) -> dict | None:
        fields = ", ".join(sorted({m.salesforce for m in self._mapping.fields}
                                  | {"Id", "IsDeleted", "LastModifiedDate", "Genesys_Contact_Id__c",
                                     "MailingCountry"}))
        soql = format_soql(f"SELECT {fields} FROM Contact WHERE Id = {{}}", contact_id)
        try:
            records = self._sf.restful("queryAll", params={"q": soql})["records"]
        except SalesforceError as exc:
            raise from_exception(exc, "contact read") from None
        return records[0] if records else None

    @activity.defn
    async def load_sync_pair(self, key: PairKey) -> PairSnapshot:
        config, region = self._mapping, self._settings.default_region
        engine = get_engine(self._settings.database_url)
        stored = sync_store.get_pair(engine, key.salesforce_id, key.genesys_id)
        sf_id = key.salesforce_id or (stored or {}).get("salesforce_id")
        gc_id = key.genesys_id or (stored or {}).get("genesys_id")
        snap = PairSnapshot(salesforce_id=sf_id, genesys_id=gc_id,
                            base=(stored or {}).get("base"), version=(stored or {}).get("version", 0))
        if sf_id:
            record = await asyncio.to_thread(self._read_salesforce, sf_id)
            if record is not None:
                gc_id = gc_id or record.get("Genesys_Contact_Id__c")
                snap.genesys_id = gc_id
                snap.salesforce_modified = record.get("LastModifiedDate")
                if record.get("IsDeleted"):
                    snap.salesforce_deleted = True
                else:
                    snap.salesforce = from_salesforce(record, config, region)
            elif stored:
                snap.salesforce_deleted = True
        if gc_id:
            resp = await self._genesys.get(f"{GENESYS_CONTACTS}/{quote(gc_id, safe='')}")
            if resp.status_code == 404:
                snap.genesys_deleted = stored is not None
            elif resp.status_code >= 400:
                raise ApplicationError(f"Genesys contact read failed ({resp.status_code})",
                                       non_retryable=resp.status_code < 500 and resp.status_code != 429)
            else:
                contact = resp.json()
                snap.genesys_raw = contact
                snap.genesys_modified = contact.get("modifyDate")
                snap.genesys = from_genesys(contact, config, region)
        snap.erased = self._erased(engine, snap)
        return snap

    def _erased(self, engine, snap: PairSnapshot) -> bool:
        """An erased person is never re-created or re-linked (docs/privacy.md)."""
        from callbridge.privacy import is_erased
        from callbridge.store.privacy import Tombstones

        records = [r for r in (snap.salesforce, snap.genesys) if r]
        emails = {r.get("Email") for r in records if r.get("Email")}
        phones = [r.get(f) for r in records for f in ("Phone", "MobilePhone")]
        key = self._settings.privacy_hash_key.get_secret_value()
        tombstones = Tombstones(engine)
        return any(is_erased(tombstones, key, email=e, phones=phones, sf_ids=[snap.salesforce_id],
                             genesys_ids=[snap.genesys_id]) for e in (emails or {None}))

    @activity.defn
    async def write_salesforce_contact(self, write: SalesforceWrite) -> str:
        return await asyncio.to_thread(self._write_salesforce, write)

    def _write_salesforce(self, write: SalesforceWrite) -> str:
        try:
            if write.op == "create":
                return self._sf.restful("sobjects/Contact", method="POST", json=write.fields)["id"]
            path = f"sobjects/Contact/{write.contact_id}"
            if write.op == "delete":
                try:
                    self._sf.restful(path, method="DELETE")
                except SalesforceResourceNotFound:
                    pass  # already gone: a retry after success
                return write.contact_id
            headers = {}
            if write.if_unmodified_since:
                # Salesforce answers 412 if the record changed since we read it: merge again.
                headers["If-Unmodified-Since"] = format_datetime(
                    parse_sf_datetime(write.if_unmodified_since), usegmt=True)
            self._sf.restful(path, method="PATCH", json=write.fields, headers=headers)
            return write.contact_id
        except SalesforceError as exc:
            if exc.status == 412:
                raise ApplicationError("Salesforce contact changed since it was read", type="StaleRecord",
                                       non_retryable=True) from None
            raise from_exception(exc, f"contact {write.op}") from None

    @activity.defn
    async def write_genesys_contact(self, write: GenesysWrite) -> str:
        config = self._mapping
        body = to_genesys(write.fields, config)
        if write.op == "create":
            body["externalIds"] = [{"externalSource": {"id": self._settings.genesys_external_source_id},
                                    "value": write.link_salesforce_id}]
            resp = await self._genesys.request("POST", GENESYS_CONTACTS, json=body)
        elif write.op == "delete":
            resp = await self._genesys.request("DELETE", f"{GENESYS_CONTACTS}/{quote(write.contact_id, safe='')}")
            if resp.status_code == 404:
                return write.contact_id  # already gone
        else:
            current = {k: v for k, v in (write.current or {}).items()
                       if k not in ("id", "selfUri", "createDate", "modifyDate", "division")}
            current.update(body)
            if write.link_salesforce_id:
                source = self._settings.genesys_external_source_id
                others = [e for e in current.get("externalIds") or []
                          if (e.get("externalSource") or {}).get("id") != source]
                current["externalIds"] = [*others, {"externalSource": {"id": source},
                                                    "value": write.link_salesforce_id}]
            resp = await self._genesys.request("PUT", f"{GENESYS_CONTACTS}/{quote(write.contact_id, safe='')}",
                                               json=current)
        if resp.status_code >= 400:
            raise ApplicationError(f"Genesys contact {write.op} failed ({resp.status_code}): {resp.text[:300]}",
                                   type="GenesysError",
                                   non_retryable=resp.status_code < 500 and resp.status_code != 429)
        return write.contact_id if write.op != "create" else resp.json()["id"]

    @activity.defn
    def store_sync_base(self, request: StoreBaseRequest) -> int:
        engine = get_engine(self._settings.database_url)
        if request.base is None:
            sync_store.forget_pair(engine, request.salesforce_id)
            return 0
        try:
            return sync_store.store_base(engine, request.salesforce_id, request.genesys_id, request.base,
                                         request.expected_version)
        except sync_store.StaleBase:
            raise ApplicationError("the pair's base changed since it was read", type="StaleBase",
                                   non_retryable=True) from None




SF_WATERMARK = "sync_salesforce_watermark"
GC_WATERMARK = "sync_genesys_watermark"


class SyncRunActivities:
    """What changed since the watermarks; the watermarks moved once a run is done."""

    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection, settings: Settings) -> None:
        self._sf = salesforce
        self._genesys = genesys
        self._settings = settings

    def _salesforce_changes(self, since: datetime | None) -> list[str]:
        from activities.caller_index import query_pages

        soql = "SELECT Id FROM Contact WHERE IsDeleted = false" if since is None else format_soql(
            "SELECT Id FROM Contact WHERE SystemModstamp >= {}", since)
        # queryAll: a deletion is a change too (IsDeleted rows in the recycle bin).
        return [r["Id"] for page in query_pages(self._sf, soql, "queryAll") for r in page]

    def _match_by_email(self, email: str) -> list[str]:
        soql = format_soql("SELECT Id FROM Contact WHERE Email = {} LIMIT 2", email)
        return [r["Id"] for r in self._sf.query(soql)["records"]]

    @activity.defn
    async def collect_sync_changes(self, request: ChangeRequest) -> ChangeSet:
        engine = get_engine(self._settings.database_url)
        from callbridge.store import caller_index as state

        now = datetime.now(timezone.utc).replace(microsecond=0)
        lookback = timedelta(seconds=request.lookback_seconds)

        def since(name: str) -> datetime | None:
            saved = None if request.full else state.get_text(engine, name)
            return datetime.fromisoformat(saved) - lookback if saved else None

        sf_since, gc_since = since(SF_WATERMARK), since(GC_WATERMARK)
        try:
            sf_ids = await asyncio.to_thread(self._salesforce_changes, sf_since)
        except SalesforceError as exc:
            raise from_exception(exc, "changed contacts read") from None
        activity.heartbeat(len(sf_ids))
        keys: dict[str, PairKey] = {i: PairKey(salesforce_id=i) for i in sf_ids}
        unverified: dict[str, str] = {}
        changes = ChangeSet(salesforce_changes=len(sf_ids), salesforce_watermark=now.isoformat(),
                            genesys_watermark=now.isoformat())

        # Genesys: scan every contact, keep those modified since the watermark (ids only).
        path = "/api/v2/externalcontacts/scan/contacts"
        params: dict = {"limit": 200}
        while True:
            resp = await self._genesys.get(path, **params)
            if resp.status_code >= 400:
                raise ApplicationError(f"Genesys scan failed ({resp.status_code})",
                                       non_retryable=resp.status_code < 500 and resp.status_code != 429)
            body = resp.json()
            entities = body.get("entities", [])
            stored_by_gc = sync_store.pairs_by_genesys_ids(engine, [c["id"] for c in entities])
            for contact in entities:
                modified = parse_sf_datetime(contact.get("modifyDate"))
                if gc_since is not None and modified is not None and modified < gc_since:
                    continue
                changes.genesys_changes += 1
                linked = next((e.get("value") for e in contact.get("externalIds") or []
                               if (e.get("externalSource") or {}).get("id") == self._settings.genesys_external_source_id),
                              None)
                stored = stored_by_gc.get(contact["id"])
                sf_id = stored or linked
                if stored is None and linked:
                    unverified[contact["id"]] = linked  # a link we never made: check it exists
                    continue
                if sf_id is None and request.mode == "bidirectional" and contact.get("workEmail"):
                    # Matching in the seed's order: the link, then email (case-insensitive).
                    found = await asyncio.to_thread(self._match_by_email, contact["workEmail"])
                    if len(found) == 1:
                        sf_id = found[0]
                        changes.matched_by_email += 1
                    elif len(found) > 1:
                        changes.ambiguous += 1  # never guessed: left for review
                        continue
                if sf_id:
                    _add(keys, sf_id, contact["id"])
                elif request.mode == "bidirectional":
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
                changes.ambiguous += 1  # linked to a Salesforce id that doesn't exist: for review
        changes.pairs = list(keys.values())
        return changes

    def _existing_contacts(self, ids: set[str]) -> set[str]:
        valid = sorted(i for i in ids if _SF_ID.match(i))  # a malformed id would fail the whole query
        found: set[str] = set()
        for start in range(0, len(valid), 200):
            soql = format_soql("SELECT Id FROM Contact WHERE Id IN {}", valid[start:start + 200])
            found |= {r["Id"] for r in self._sf.query(soql)["records"]}
        return found

    @activity.defn
    def advance_sync_watermarks(self, changes: ChangeSet) -> None:
        """Only after every pair of the run is settled: a crash never skips a change."""
        from callbridge.store import caller_index as state

        engine = get_engine(self._settings.database_url)
        state.set_text(engine, SF_WATERMARK, changes.salesforce_watermark)
        state.set_text(engine, GC_WATERMARK, changes.genesys_watermark)


_SF_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")


def _add(keys: dict[str, PairKey], sf_id: str, gc_id: str) -> None:
    keys[sf_id] = PairKey(salesforce_id=sf_id, genesys_id=gc_id)


