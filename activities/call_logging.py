"""Salesforce activities for call logging: thin adapters, one REST request each.

SOQL is built only with simple-salesforce's `format_soql`, never by string concatenation.
"""

from __future__ import annotations

import re
from typing import Any

from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound
from simple_salesforce.format import format_external_id, format_soql
from temporalio import activity
from temporalio.exceptions import ApplicationError

from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.query import query_records
from callbridge.clients.salesforce.errors import error_entries, from_exception, is_transient, to_application_error
from callbridge.domain.mapping import TASK_EXTERNAL_ID
from callbridge.core.settings import Settings
from callbridge.domain.matching import contact_from_record, rank_contacts
from callbridge.domain.models import ContactMatch, LogCallRequest, LogCallResult, PhoneLookup
from callbridge.domain.phone import typed_form_patterns

CONTACT_FIELDS = (
    "Id, Name, FirstName, LastName, AccountId, Account.Name, Account.BillingCountry, "
    "Phone, MobilePhone, HomePhone, OtherPhone, MailingCountry, Last_Call_Date__c, LastModifiedDate"
)
_SF_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
MAX_PHONE_CANDIDATES = 50
CONTACT_GONE = "ContactGone"
# What Salesforce answers a write naming a record that is in the recycle bin, purged, or not
# of the field's type (an IVR's contact_id that isn't a contact's id).
_GONE_CODES = {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "FIELD_INTEGRITY_EXCEPTION"}


def _refers_to_gone_record(sub: dict[str, Any]) -> bool:
    if sub["httpStatusCode"] != 400:
        return False
    return any(e.get("errorCode") in _GONE_CODES for e in error_entries(sub["body"]))


class CallLoggingActivities:
    def __init__(self, connection: SalesforceConnection, settings: Settings | None = None) -> None:
        self._sf = connection
        self._base = f"/services/data/v{connection.api_version}"
        # The privacy audit needs the state store and hash key: the connection's own settings.
        self._settings = settings or connection._settings

    def _audit(self, request: LogCallRequest, result: LogCallResult) -> LogCallResult:
        """One privacy audit entry per logged call (breach scope); keyed hashes only."""
        from callbridge.store.privacy_audit import call_logged
        from callbridge.store.db import get_engine

        call_logged(get_engine(self._settings.database_url), self._settings.privacy_hash_key.get_secret_value(),
                    conversation_id=request.conversation_id, contact_id=result.contact_id,
                    contact_created=request.new_contact is not None and result.task_created)
        return result

    def _query(self, soql: str, what: str) -> list[dict[str, Any]]:
        return query_records(self._sf, soql, what=what)

    @activity.defn
    def find_contact_by_id(self, contact_id: str) -> ContactMatch | None:
        """The contact the IVR flow already identified (attributes.contact_id), if it exists."""
        if not _SF_ID.match(contact_id):
            return None
        records = self._query(
            format_soql(f"SELECT {CONTACT_FIELDS} FROM Contact WHERE Id = {{}} LIMIT 1", contact_id),
            "contact lookup by id",
        )
        return contact_from_record(records[0]) if records else None

    @activity.defn
    def find_contacts_by_phone(self, lookup: PhoneLookup) -> list[ContactMatch]:
        """Contacts holding the number in any phone field however it was typed, best first."""
        where, patterns = phone_like_clause(lookup.e164)
        soql = format_soql(
            f"SELECT {CONTACT_FIELDS} FROM Contact WHERE {where} "
            f"ORDER BY Last_Call_Date__c DESC NULLS LAST LIMIT {MAX_PHONE_CANDIDATES}",
            **patterns,
        )
        records = self._query(soql, "contact lookup by phone")
        return rank_contacts(records, lookup.e164, lookup.default_region)

    @activity.defn
    def find_unknown_callers_account(self, name: str) -> str:
        """The account unknown callers are logged against; created on first use.

        Ordered by CreatedDate so concurrent first calls converge on the oldest account.
        """
        soql = format_soql("SELECT Id FROM Account WHERE Name = {} ORDER BY CreatedDate ASC LIMIT 1", name)
        records = self._query(soql, "unknown-callers account lookup")
        if records:
            return records[0]["Id"]
        try:
            created = self._sf.restful("sobjects/Account", method="POST", json={"Name": name})
        except SalesforceError as exc:
            raise from_exception(exc, "unknown-callers account creation") from None
        return created["id"]

    @activity.defn
    def log_call(self, request: LogCallRequest) -> LogCallResult:
        """Upsert the call's Task by conversation id and update the contact: one composite request."""
        task_url = f"{self._base}/sobjects/Task/{format_external_id(TASK_EXTERNAL_ID, request.conversation_id)}"
        if request.new_contact is not None:
            return self._audit(request, self._log_call_on_new_contact(request, task_url))

        subrequests = [{"method": "PATCH", "url": task_url, "referenceId": "task", "body": request.task}]
        if request.contact_id and request.contact_update:
            subrequests.append({
                "method": "PATCH",
                "url": f"{self._base}/sobjects/Contact/{request.contact_id}",
                "referenceId": "contact",
                "body": request.contact_update,
            })
        responses = self._composite(subrequests, all_or_none=False)

        task = responses["task"]
        if request.contact_id and _refers_to_gone_record(task):
            # The contact (or its account) we took from the IVR or the index is deleted or merged
            # away: the workflow looks the caller up in Salesforce and logs again.
            raise ApplicationError(to_application_error(task["httpStatusCode"], task["body"], "task upsert").message,
                                   type=CONTACT_GONE, non_retryable=True)
        task_id, created = self._task_outcome(task, request, task_url)
        result = LogCallResult(task_id=task_id, task_created=created, contact_id=request.contact_id)
        contact = responses.get("contact")
        if contact is not None:
            status = contact["httpStatusCode"]
            if status < 300:
                result.contact_updated = True
            elif is_transient(status, error_entries(contact["body"])):
                # The Task is safely upserted; retrying re-upserts it (no duplicate) and the contact.
                raise to_application_error(status, contact["body"], "contact update")
            else:
                result.contact_update_error = to_application_error(status, contact["body"], "contact update").message
        return self._audit(request, result)

    def _task_outcome(self, task: dict[str, Any], request: LogCallRequest, task_url: str) -> tuple[str, bool]:
        status, body = task["httpStatusCode"], task["body"]
        if status in (200, 201):
            return body["id"], status == 201
        entries = error_entries(body)
        if status == 400 and any(
            e.get("errorCode") == "INVALID_FIELD_FOR_INSERT_UPDATE" and "TaskSubtype" in (e.get("fields") or [])
            for e in entries
        ):
            # TaskSubtype can only be set at creation: this error means the Task exists already.
            existing = self._existing_task(task_url)
            if existing is not None:
                return existing["Id"], False
        raise to_application_error(status, body, "task upsert")

    def _existing_task(self, task_url: str) -> dict[str, Any] | None:
        try:
            return self._sf.restful(task_url.removeprefix(self._base + "/"))
        except SalesforceResourceNotFound:
            return None
        except SalesforceError as exc:
            raise from_exception(exc, "task read") from None

    def _log_call_on_new_contact(self, request: LogCallRequest, task_url: str) -> LogCallResult:
        if activity.info().attempt > 1:
            # A previous attempt may have committed; the Task exists iff the contact does.
            existing = self._existing_task(task_url)
            if existing is not None:
                return LogCallResult(task_id=existing["Id"], task_created=False,
                                     contact_id=existing.get("WhoId"), contact_updated=True)
        task_body = {**request.task, "WhoId": "@{contact.id}"}
        responses = self._composite(
            [
                {"method": "POST", "url": f"{self._base}/sobjects/Contact", "referenceId": "contact",
                 "body": request.new_contact},
                {"method": "PATCH", "url": task_url, "referenceId": "task", "body": task_body},
            ],
            all_or_none=True,  # never a contact without its Task, nor a Task without its contact
        )
        contact, task = responses["contact"], responses["task"]
        # All or none: the subrequest that failed carries the real error, the others only
        # PROCESSING_HALTED. The real one is reported and decides whether to retry.
        if _halted(contact) and task["httpStatusCode"] >= 300:
            task_id, created = self._task_outcome(task, request, task_url)  # raises the Task's error
        if contact["httpStatusCode"] >= 300:
            raise to_application_error(contact["httpStatusCode"], contact["body"], "contact creation")
        task_id, created = self._task_outcome(task, request, task_url)
        return LogCallResult(task_id=task_id, task_created=created, contact_id=contact["body"]["id"],
                             contact_updated=True)

    def _composite(self, subrequests: list[dict[str, Any]], all_or_none: bool) -> dict[str, dict[str, Any]]:
        try:
            body = self._sf.restful(
                "composite", method="POST",
                json={"allOrNone": all_or_none, "compositeRequest": subrequests},
            )
        except SalesforceError as exc:
            raise from_exception(exc, "composite request") from None
        return {r["referenceId"]: r for r in body["compositeResponse"]}


def _halted(response: dict[str, Any]) -> bool:
    """A composite subrequest that failed only because another one did (allOrNone)."""
    return response["httpStatusCode"] >= 300 and all(
        e.get("errorCode") == "PROCESSING_HALTED" for e in error_entries(response["body"]))


def phone_like_clause(e164: str) -> tuple[str, dict[str, str]]:
    """A WHERE clause (for format_soql) finding the number in any phone field, typed in any
    digit script (full-width, Arabic-Indic, …), and its pattern arguments."""
    patterns = {f"p{i}": p for i, p in enumerate(typed_form_patterns(e164))}
    where = " OR ".join(f"{field} LIKE {{{name}}}" for name in patterns
                        for field in ("Phone", "MobilePhone", "HomePhone", "OtherPhone"))
    return where, patterns
