"""The screen-pop lookup service: the Genesys data action's target.

Answers from the caller-ID index in milliseconds; on a miss it may ask Salesforce live
(SOSL IN PHONE FIELDS) within a budget, and says `timeout` rather than ever holding up the
call past the data action's 3 seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Response

from pydantic import BaseModel, BeforeValidator, Field

from callbridge.core import metrics
from callbridge.domain.phone import national_digits, to_e164
from callbridge.core.settings import Settings
from callbridge.store import caller_index
from callbridge.store.db import get_engine
from sqlalchemy.engine import make_url
from starter.auth import require_data_action_auth

log = structlog.get_logger("callbridge.screenpop")
# The index answers in ~1 ms; past this it is treated as down, leaving the live search its
# own budget inside the data action's 3 s.
INDEX_BUDGET_SECONDS = 0.5


class PhoneLookupRequest(BaseModel):
    phoneNumber: str = Field(max_length=64)


class AccountLookupRequest(BaseModel):
    # No control characters: PostgreSQL refuses NUL in a text parameter (a 500, not an answer).
    accountNumber: str = Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$")


# Missing values are "" rather than null: Genesys checks a data action's response against its
# output contract, and a null where the contract says string can fail the whole action.
Text = Annotated[str, BeforeValidator(lambda v: "" if v is None else v)]


class Match(BaseModel):
    contactId: str
    firstName: Text = ""
    lastName: Text = ""
    accountId: Text = ""
    accountName: Text = ""
    tier: Text = ""
    phoneField: Text = ""
    ownLine: bool = True
    lastActivity: Text = ""


class LookupResponse(BaseModel):
    """The seed's output contract, every key always present (data actions map them all)."""

    success: bool
    contactId: Text = ""
    firstName: Text = ""
    lastName: Text = ""
    accountId: Text = ""
    accountName: Text = ""
    tier: Text = ""
    matchCount: int = 0
    matches: list[Match] = []
    reason: Text = ""
    source: Text = ""


def _match(row: dict[str, Any]) -> Match:
    activity = row.get("last_activity")
    return Match(
        contactId=row["contact_id"], firstName=row.get("first_name"), lastName=row.get("last_name"),
        accountId=row.get("account_id"), accountName=row.get("account_name"), tier=row.get("tier"),
        phoneField=row.get("phone_field"), ownLine=row.get("own_line", True),
        lastActivity=activity.isoformat() if activity else None,
    )


def found(matches: list[Match], source: str) -> LookupResponse:
    best = matches[0]
    return LookupResponse(
        success=True, contactId=best.contactId, firstName=best.firstName, lastName=best.lastName,
        accountId=best.accountId, accountName=best.accountName, tier=best.tier,
        matchCount=len(matches), matches=matches, source=source,
    )


def _json(answer: LookupResponse | bytes) -> Response:
    body = answer if isinstance(answer, bytes) else answer.model_dump_json().encode()
    return Response(body, media_type="application/json")


class LookupCache:
    """Answers by E.164, dropped whenever the index version moves (checked at most every 250 ms)."""

    def __init__(self, version, size: int = 50_000, check_every: float = 0.25) -> None:
        self._read_version = version
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._size = size
        self._version = -1
        self._checked = 0.0
        self._every = check_every

    def due(self) -> bool:
        return time.monotonic() - self._checked >= self._every

    def check(self) -> None:
        """Read the index version; a moved one drops every answer."""
        self._checked = time.monotonic()
        current = self._read_version()
        if current != self._version:
            self._entries.clear()
            self._version = current

    def get(self, key: str, *, check: bool = True) -> bytes | None:
        if check and self.due():
            self.check()
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def put(self, key: str, value: bytes) -> None:
        self._entries[key] = value
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


class LiveSalesforce:
    """SOSL phone search for numbers the index doesn't know yet (a contact created seconds ago)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connection = None

    def search(self, e164: str) -> list[Match]:
        from callbridge.clients.salesforce.connection import SalesforceConnection
        from callbridge.domain.matching import rank_contacts

        if self._connection is None:
            self._connection = SalesforceConnection(self._settings)
        # Digits only: nothing in the search term can be a SOSL operator or an escape.
        digits = national_digits(e164)
        sosl = (
            f"FIND {{{digits}}} IN PHONE FIELDS RETURNING Contact(Id, Name, FirstName, LastName, AccountId, "
            "Account.Name, Account.BillingCountry, Phone, MobilePhone, HomePhone, OtherPhone, MailingCountry, "
            "Custom_Tier__c, Last_Call_Date__c, LastModifiedDate)"
        )
        body = self._connection.restful("search", params={"q": sosl})
        records = body.get("searchRecords", []) if isinstance(body, dict) else body or []
        ranked = rank_contacts(records, e164, self._settings.default_region)
        by_id = {r["Id"]: r for r in records}
        return [
            Match(contactId=m.id, firstName=by_id[m.id].get("FirstName"), lastName=by_id[m.id].get("LastName"),
                  accountId=m.account_id, accountName=m.account_name, tier=by_id[m.id].get("Custom_Tier__c"),
                  phoneField=m.matched_field, ownLine=m.matched_field != "Phone")
            for m in ranked
        ]


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/screenpop", tags=["screen pop"])
    # The store is opened on first use, not here: a starter started while its database server
    # is down still takes webhooks and answers lookups from Salesforce live.
    index_threads = None  # the default pool (SQLite: reads are local and fast)
    remote_index = make_url(settings.database_url).get_backend_name() != "sqlite"

    def engine():
        return get_engine(settings.database_url)  # cached once it has connected and migrated

    if not remote_index:
        get_engine(settings.database_url)  # a local file: create and migrate it now
        reader = caller_index.SqliteIndexReader(settings.database_url)

        async def index_lookup(e164: str) -> list[dict[str, Any]]:
            return reader.lookup(e164)

        cache = LookupCache(reader.version)
    else:
        # A database server reads off the event loop (a hung one must not freeze the webhooks)
        # in threads of its own (hung reads must not starve the live search of threads).
        index_threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="caller-index")

        async def index_lookup(e164: str) -> list[dict[str, Any]]:
            return await asyncio.get_running_loop().run_in_executor(
                index_threads, lambda: caller_index.lookup(engine(), e164))

        cache = LookupCache(lambda: caller_index.version(engine()))
    live = LiveSalesforce(settings)
    auth = Depends(require_data_action_auth(settings))

    @router.post("/lookup", response_model=LookupResponse, dependencies=[auth])
    async def lookup(request: PhoneLookupRequest) -> Response:
        started = time.perf_counter()
        answer = await answer_for(request.phoneNumber)
        # Serialised answers are index hits; otherwise the source or the reason is the outcome.
        outcome = "index" if isinstance(answer, bytes) else (answer.source if answer.success else answer.reason)
        metrics.record_lookup(outcome or "other", time.perf_counter() - started)
        return _json(answer)

    async def answer_for(phone: str) -> LookupResponse | bytes:
        e164 = to_e164(phone, settings.default_region)
        if e164 is None:
            withheld = phone.strip().lower() in ("", "anonymous", "private", "withheld", "restricted", "unknown")
            return LookupResponse(success=False, reason="anonymous" if withheld else "unparseable")
        try:
            if remote_index and cache.due():
                await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(index_threads, cache.check), INDEX_BUDGET_SECONDS)
            cached = cache.get(e164, check=not remote_index)
            if cached is not None:
                return cached
            rows = await asyncio.wait_for(index_lookup(e164), INDEX_BUDGET_SECONDS)
        except Exception as exc:  # the index unreadable, gone or slow: Salesforce may still answer
            log.warning("caller-id index unavailable", error=type(exc).__name__)
            rows = []
        if rows:
            # Kept serialised: a repeat caller costs a dictionary read.
            answer = found([_match(r) for r in rows], "index").model_dump_json().encode()
            cache.put(e164, answer)
            return answer
        budget = settings.screenpop_live_budget_seconds
        if budget <= 0:
            return LookupResponse(success=False, reason="not_found")
        try:
            matches = await asyncio.wait_for(asyncio.to_thread(live.search, e164), timeout=budget)
        except asyncio.TimeoutError:
            return LookupResponse(success=False, reason="timeout")
        except Exception as exc:  # Salesforce unreachable: the call goes on without attributes
            log.warning("live lookup failed", error=type(exc).__name__)
            return LookupResponse(success=False, reason="unavailable")
        return found(matches, "salesforce") if matches else LookupResponse(success=False, reason="not_found")

    @router.post("/lookup-by-account", response_model=LookupResponse, dependencies=[auth])
    async def lookup_by_account(request: AccountLookupRequest) -> LookupResponse:
        try:
            account, contacts = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
                index_threads, lambda: caller_index.lookup_account(engine(), request.accountNumber.strip())),
                INDEX_BUDGET_SECONDS * 2)
        except Exception as exc:  # no live fallback by account number: say so within the budget
            log.warning("caller-id index unavailable", error=type(exc).__name__)
            return LookupResponse(success=False, reason="unavailable")
        if account is None:
            return LookupResponse(success=False, reason="not_found")
        if not contacts:
            return LookupResponse(success=True, accountId=account["account_id"], accountName=account["name"],
                                  source="index")
        answer = found([_match(r) for r in contacts], "index")
        answer.accountName = answer.accountName or account["name"]
        return answer

    return router
