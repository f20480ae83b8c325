"""Contact-sync activities: read a pair, write one side, store the agreed base."""

from __future__ import annotations

import asyncio

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
from callbridge.sync.models import GenesysWrite, PairKey, PairSnapshot, SalesforceWrite, StoreBaseRequest
from callbridge.sync.records import from_genesys, from_salesforce, to_genesys

GENESYS_CONTACTS = "/api/v2/externalcontacts/contacts"


class SyncActivities:
    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection, settings: Settings) -> None:
        self._sf = salesforce
        self._genesys = genesys
        self._settings = settings

    def _config(self):
        path = self._settings.sync_config_path
        return sync_config.load(Path(path) if path else None)

    def _read_salesforce(self, contact_id: str) -> dict | None:
        fields = ", ".join(sorted({m.salesforce for m in self._config().fields}
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
        config, region = self._config(), self._settings.default_region
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
        return snap

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
        config = self._config()
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
                current["externalIds"] = [{"externalSource": {"id": self._settings.genesys_external_source_id},
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


