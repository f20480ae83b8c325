"""External contacts and external organizations (/api/v2/externalcontacts/...).

Server-side behaviour emulated: ids, createDate/modifyDate and selfUri are set by the
server; PhoneNumber.e164 is computed from `display` (or `userInput`) and the country code;
searches (`q`) can only reach the first 1,000 results (pageNumber * pageSize <= 1,000);
scans page with an opaque cursor, 10-200 per page; bulk calls take up to 200 entities and
answer per-entity results with errorCount/errorIndexes, in an order different from the request
(the SDK's docs: ordering is not guaranteed). Fields are those of the SDK's
ExternalContact / ExternalOrganization models; any other field is refused with a 400.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Callable

import phonenumbers
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from .context import ctx
from .errors import GenesysError, bad_request, not_found
from .wire import iso, new_id, now

router = APIRouter()

SEARCH_CAP = 1000
BULK_MAX = 200
LOOKUP_MAX = 25

PHONE_FIELDS = ("workPhone", "cellPhone", "homePhone", "otherPhone")
EMAIL_FIELDS = ("workEmail", "personalEmail", "otherEmail")
SERVER_FIELDS = {"id", "createDate", "modifyDate", "selfUri"}

CONTACT_FIELDS = {
    "id", "division", "firstName", "middleName", "lastName", "salutation", "title", *PHONE_FIELDS,
    *EMAIL_FIELDS, "address", "twitterId", "lineId", "whatsAppId", "facebookId", "instagramId",
    "appleOpaqueIds", "externalIds", "identifiers", "modifyDate", "createDate", "externalOrganization",
    "surveyOptOut", "externalSystemUrl", "schema", "customFields", "externalDataSources", "type", "selfUri",
}
ORG_FIELDS = {
    "id", "name", "division", "companyType", "industry", "address", "phoneNumber", "faxNumber",
    "employeeCount", "revenue", "tags", "websites", "tickers", "twitterId", "externalSystemUrl",
    "modifyDate", "createDate", "schema", "customFields", "identifiers", "externalIds",
    "externalDataSources", "selfUri",
}
STRING_FIELDS = {"firstName", "middleName", "lastName", "salutation", "title", *EMAIL_FIELDS, "externalSystemUrl",
                 "name", "companyType", "industry"}
PHONE_KEYS = {"display", "extension", "acceptsSMS", "normalizationCountryCode", "userInput", "e164", "countryCode"}
ADDRESS_KEYS = {"address1", "address2", "city", "state", "postalCode", "countryCode"}


class Kind:
    """What differs between contacts and organizations."""

    def __init__(self, store_kind: str, path: str, fields: set[str], phones: tuple[str, ...],
                 text: Callable[[dict[str, Any]], list[str]]) -> None:
        self.store_kind, self.path, self.fields, self.phones, self.text = store_kind, path, fields, phones, text


def _contact_text(c: dict[str, Any]) -> list[str]:
    values = [c.get(f) for f in ("firstName", "middleName", "lastName", "title", *EMAIL_FIELDS)]
    values.append(" ".join(filter(None, (c.get("firstName"), c.get("lastName")))))
    return [v for v in values if v]


def _org_text(o: dict[str, Any]) -> list[str]:
    return [v for v in (o.get("name"), o.get("industry"), o.get("companyType")) if v]


CONTACTS = Kind("externalcontact", "/api/v2/externalcontacts/contacts", CONTACT_FIELDS, PHONE_FIELDS, _contact_text)
ORGS = Kind("externalorganization", "/api/v2/externalcontacts/organizations", ORG_FIELDS,
            ("phoneNumber", "faxNumber"), _org_text)


# --- validation and server-computed fields ---------------------------------------------------


def _phone(field: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) - PHONE_KEYS:
        raise bad_request(f"{field} must be a PhoneNumber ({', '.join(sorted(PHONE_KEYS))})", "invalid.value")
    phone = dict(raw)
    region = (phone.get("countryCode") or phone.get("normalizationCountryCode") or "US").upper()
    source = phone.get("display") or phone.get("userInput") or phone.get("e164")
    if not isinstance(source, str) or not source.strip():
        raise bad_request(f"{field}.display is required", "invalid.value")
    phone.pop("e164", None)  # computed by the server, never taken from the client
    try:
        parsed = phonenumbers.parse(source, region)
        if phonenumbers.is_possible_number(parsed):
            phone["e164"] = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            phone["countryCode"] = phonenumbers.region_code_for_number(parsed) or region
    except phonenumbers.NumberParseException:
        pass  # kept as typed, without an e164, like a number Genesys cannot normalise
    phone.setdefault("display", source)
    return phone


def _validate(kind: Kind, body: Any, request: Request) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request could not be understood by the server due to malformed syntax.")
    unknown = set(body) - kind.fields
    if unknown:
        raise bad_request(f"Unrecognized field(s): {', '.join(sorted(unknown))}", "invalid.property")
    doc = {k: v for k, v in body.items() if k not in SERVER_FIELDS and v is not None}
    for key in STRING_FIELDS & set(doc):
        if not isinstance(doc[key], str):
            raise bad_request(f"{key} must be a string", "invalid.value")
    for key in kind.phones:
        if key in doc:
            doc[key] = _phone(key, doc[key])
    if "address" in doc and (not isinstance(doc["address"], dict) or set(doc["address"]) - ADDRESS_KEYS):
        raise bad_request("address must be a ContactAddress", "invalid.value")
    if "externalIds" in doc:
        ids = doc["externalIds"]
        if not isinstance(ids, list) or not all(isinstance(i, dict) and isinstance(i.get("value"), str) for i in ids):
            raise bad_request("externalIds must be a list of {externalSource, value}", "invalid.value")
    if kind is ORGS and not doc.get("name"):
        raise bad_request("name is required", "invalid.value")
    if kind is CONTACTS:
        if not (doc.get("firstName") or doc.get("lastName")):
            raise bad_request("A contact needs a firstName or a lastName", "invalid.value")
        if "type" in doc and doc["type"] not in ("Ephemeral", "Identified", "Curated"):
            raise bad_request("type must be Ephemeral, Identified or Curated", "invalid.value")
        org = doc.get("externalOrganization")
        if org is not None:
            org_id = org.get("id") if isinstance(org, dict) else None
            org_doc = ctx(request).store.get(ORGS.store_kind, org_id) if org_id else None
            if org_doc is None:
                raise bad_request(f"externalOrganization {org_id} not found", "invalid.value")
            doc["externalOrganization"] = {"id": org_id, "name": org_doc["name"], "selfUri": org_doc["selfUri"]}
    return doc


def _division(request: Request) -> dict[str, Any]:
    store = ctx(request).store
    division = store.get("division", store.meta_get("home_division") or "")
    return {"id": division["id"], "name": division["name"], "selfUri": division["selfUri"]}


def _create(kind: Kind, body: Any, request: Request) -> dict[str, Any]:
    doc = _validate(kind, body, request)
    entity_id, stamp = new_id(), iso(now())
    doc.update(id=entity_id, division=_division(request), createDate=stamp, modifyDate=stamp,
               selfUri=f"{kind.path}/{entity_id}")
    if kind is CONTACTS:
        doc.setdefault("type", "Curated")
    ctx(request).store.put(kind.store_kind, entity_id, doc)
    return doc


def _replace(kind: Kind, entity_id: str, body: Any, request: Request) -> dict[str, Any]:
    existing = _get(kind, entity_id, request)
    doc = _validate(kind, body, request)
    doc.update(id=entity_id, division=existing["division"], createDate=existing["createDate"],
               modifyDate=iso(now()), selfUri=existing["selfUri"])
    if kind is CONTACTS:
        doc.setdefault("type", existing.get("type", "Curated"))
    ctx(request).store.put(kind.store_kind, entity_id, doc)
    return doc


def _get(kind: Kind, entity_id: str, request: Request) -> dict[str, Any]:
    doc = ctx(request).store.get(kind.store_kind, entity_id)
    if doc is None:
        noun = "Contact" if kind is CONTACTS else "Organization"
        raise not_found(f"{noun} {entity_id} not found")
    return doc


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise bad_request("The request could not be understood by the server due to malformed syntax.")


# --- search, scan, lookup --------------------------------------------------------------------


def _matches(kind: Kind, doc: dict[str, Any], q: str) -> bool:
    needle = q.strip().lower()
    if any(needle in text.lower() for text in kind.text(doc)):
        return True
    digits = "".join(ch for ch in needle if ch.isdigit())
    if len(digits) >= 3:
        for field in kind.phones:
            phone = doc.get(field) or {}
            if digits in "".join(ch for ch in (phone.get("e164") or phone.get("display") or "") if ch.isdigit()):
                return True
    return False


def _search(kind: Kind, request: Request, page_size: int, page_number: int, q: str | None,
            sort_order: str | None) -> dict[str, Any]:
    if page_size < 1 or page_number < 1:
        raise bad_request("pageSize and pageNumber must be positive", "invalid.value")
    if page_size * page_number > SEARCH_CAP:
        # Genesys only reaches the first 1,000 results of a search.
        raise bad_request(f"pageNumber * pageSize must be <= {SEARCH_CAP}", "invalid.value")
    docs = ctx(request).store.all(kind.store_kind)
    if q:
        docs = [d for d in docs if _matches(kind, d, q)]
    if sort_order:
        field, _, direction = sort_order.partition(":")
        allowed = {"firstName", "lastName", "middleName", "title"} if kind is CONTACTS else {"name"}
        if field not in allowed or direction not in ("", "asc", "desc"):
            raise bad_request(f"sortOrder must be one of {sorted(allowed)} with :asc or :desc", "invalid.value")
        docs.sort(key=lambda d: (d.get(field) or "").lower(), reverse=direction == "desc")
    total = len(docs)
    page_count = -(-min(total, SEARCH_CAP) // page_size)
    start = (page_number - 1) * page_size
    base = kind.path
    listing: dict[str, Any] = {
        "entities": docs[start:start + page_size],
        "pageSize": page_size, "pageNumber": page_number, "total": total,
        "firstUri": f"{base}?pageSize={page_size}&pageNumber=1",
        "selfUri": f"{base}?pageSize={page_size}&pageNumber={page_number}",
        "lastUri": f"{base}?pageSize={page_size}&pageNumber={max(page_count, 1)}",
        "pageCount": page_count,
    }
    if page_number < page_count:
        listing["nextUri"] = f"{base}?pageSize={page_size}&pageNumber={page_number + 1}"
    if page_number > 1:
        listing["previousUri"] = f"{base}?pageSize={page_size}&pageNumber={page_number - 1}"
    return listing


def _encode_cursor(after_seq: int) -> str:
    return base64.urlsafe_b64encode(f"s:{after_seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("s:"):
            raise ValueError
        return int(text[2:])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad_request("Invalid cursor", "invalid.value") from None


def _scan(kind: Kind, request: Request, limit: int, cursor: str | None) -> dict[str, Any]:
    if not 10 <= limit <= 200:
        raise bad_request("limit must be between 10 and 200", "invalid.value")
    after = _decode_cursor(cursor) if cursor else 0
    # The cursor is the position of the page's last contact: the next page starts right after
    # it (an index range, not an offset to skip), and a deletion never shifts what follows.
    # One row beyond the page tells whether there is a next one.
    rows = ctx(request).store.page_after(kind.store_kind, after, limit + 1)
    page = [doc for _, doc in rows[:limit]]
    scan_path = kind.path.replace("/externalcontacts/", "/externalcontacts/scan/")
    listing: dict[str, Any] = {"entities": page, "selfUri": f"{scan_path}?limit={limit}"}
    if len(rows) > limit:
        after = _encode_cursor(rows[limit - 1][0])
        listing["cursors"] = {"after": after}
        listing["nextUri"] = f"{scan_path}?limit={limit}&cursor={after}"
    return listing


# --- bulk ------------------------------------------------------------------------------------


def _bulk_entities(body: Any) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("entities"), list):
        raise bad_request("body must be {\"entities\": [...]}", "invalid.value")
    if not body["entities"]:
        raise bad_request("entities must not be empty", "invalid.value")
    if len(body["entities"]) > BULK_MAX:
        raise bad_request(f"at most {BULK_MAX} entities per bulk request", "invalid.value")
    return body["entities"]


def _bulk(entities: list[Any], one: Callable[[Any], tuple[int, dict[str, Any] | None]],
          error_entity: Callable[[Any], Any], request: Request) -> dict[str, Any]:
    faults, method, path = ctx(request).faults, request.method, request.url.path

    def each(raw: Any) -> tuple[int, dict[str, Any] | None]:
        fault = faults.entity_fault(method, path)  # a test's per-entity failure
        if fault is not None:
            raise fault
        return one(raw)

    with ctx(request).store.batch():
        return _bulk_results(entities, each, error_entity)


def _bulk_results(entities: list[Any], one: Callable[[Any], tuple[int, dict[str, Any] | None]],
                  error_entity: Callable[[Any], Any]) -> dict[str, Any]:
    results, error_indexes = [], []
    for index, raw in enumerate(entities):
        try:
            status, entity = one(raw)
            result: dict[str, Any] = {"success": True, "status": status}
            if entity is not None:
                result["id"] = entity["id"]
                result["entity"] = entity
            elif isinstance(raw, dict) and raw.get("id"):
                result["id"] = raw["id"]
        except GenesysError as exc:
            error_indexes.append(index)
            result = {"success": False, "status": exc.status,
                      "error": {"code": exc.code, "message": exc.message, "status": exc.status,
                                "retryable": exc.status >= 500 or exc.status == 429,
                                "entity": error_entity(raw)}}
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                result["id"] = raw["id"]
        results.append(result)
    # The SDK's BulkContactsResponse / BulkFetchContactsResponse: "Ordering is NOT guaranteed -
    # may be in a different order from the request." So the emulator always answers in reverse
    # (deterministic, and wrong for anyone pairing by position); errorIndexes index `results`.
    results.reverse()
    error_indexes = [i for i, r in enumerate(results) if not r["success"]]
    return {"results": results, "errorCount": len(error_indexes), "errorIndexes": error_indexes}


def _ids_entity(raw: Any) -> Any:
    return {"id": raw["id"]} if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None


def _add_routes(kind: Kind, id_param: str) -> None:
    base = kind.path
    bulk = base.replace("/externalcontacts/", "/externalcontacts/bulk/")
    scan = base.replace("/externalcontacts/", "/externalcontacts/scan/")

    @router.post(base)
    async def create(request: Request) -> dict[str, Any]:
        return _create(kind, await _json(request), request)

    @router.get(base)
    def search(request: Request, pageSize: int = Query(20), pageNumber: int = Query(1),
               q: str | None = Query(None), sortOrder: str | None = Query(None)) -> dict[str, Any]:
        return _search(kind, request, pageSize, pageNumber, q, sortOrder)

    @router.get(scan)
    def scan_(request: Request, limit: int = Query(100), cursor: str | None = Query(None)) -> dict[str, Any]:
        return _scan(kind, request, limit, cursor)

    @router.get(f"{base}/{{{id_param}}}")
    def get(request: Request) -> dict[str, Any]:
        return _get(kind, request.path_params[id_param], request)

    @router.put(f"{base}/{{{id_param}}}")
    async def put(request: Request) -> dict[str, Any]:
        return _replace(kind, request.path_params[id_param], await _json(request), request)

    @router.patch(f"{base}/{{{id_param}}}")
    async def patch(request: Request) -> dict[str, Any]:
        return _patch(kind, request.path_params[id_param], await _json(request), request)

    @router.delete(f"{base}/{{{id_param}}}")
    def delete(request: Request) -> JSONResponse:
        entity_id = request.path_params[id_param]
        _get(kind, entity_id, request)
        ctx(request).store.delete(kind.store_kind, entity_id)
        return JSONResponse({})

    @router.post(bulk)
    async def bulk_fetch(request: Request) -> dict[str, Any]:
        entities = _bulk_entities(await _json(request))
        return _bulk(entities, lambda raw: (200, _get(kind, _id_of(raw), request)), _ids_entity, request)

    @router.post(f"{bulk}/add")
    async def bulk_add(request: Request) -> dict[str, Any]:
        entities = _bulk_entities(await _json(request))
        return _bulk(entities, lambda raw: (200, _create(kind, raw, request)), lambda raw: raw, request)

    @router.post(f"{bulk}/update")
    async def bulk_update(request: Request) -> dict[str, Any]:
        entities = _bulk_entities(await _json(request))
        return _bulk(entities, lambda raw: (200, _replace(kind, _id_of(raw), raw, request)), lambda raw: raw, request)

    @router.post(f"{bulk}/remove")
    async def bulk_remove(request: Request) -> dict[str, Any]:
        entities = _bulk_entities(await _json(request))

        def remove(raw: Any) -> tuple[int, None]:
            entity_id = _id_of(raw)
            _get(kind, entity_id, request)
            ctx(request).store.delete(kind.store_kind, entity_id)
            return 200, None

        return _bulk(entities, remove, _ids_entity, request)


def _id_of(raw: Any) -> str:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise bad_request("id is required", "invalid.value")
    return raw["id"]


# --- PATCH (a list of field changes) -----------------------------------------------------------

PATCH_ACTIONS = {"Update", "UpdateIfEmpty", "UpdateIfExists", "Remove", "AppendToCollection",
                 "RemoveFromCollection"}


def _patch(kind: Kind, entity_id: str, body: Any, request: Request) -> dict[str, Any]:
    existing = _get(kind, entity_id, request)
    changes = body.get("changes") if isinstance(body, dict) else None
    if not isinstance(changes, list) or not changes:
        raise bad_request("changes is required", "invalid.value")
    doc = {k: v for k, v in existing.items() if k not in SERVER_FIELDS and k != "division"}
    for change in changes:
        if not isinstance(change, dict) or change.get("action") not in PATCH_ACTIONS:
            raise bad_request(f"action must be one of {sorted(PATCH_ACTIONS)}", "invalid.value")
        path, action, value = change.get("field"), change["action"], change.get("value")
        # ContactsPatchChange.field is a JSONPath rooted at "$." in dot notation ("$.firstName").
        field = path[2:] if isinstance(path, str) and path.startswith("$.") else None
        if field not in kind.fields or field in SERVER_FIELDS or field == "division":
            # Only top-level fields are patchable here; nested paths are refused, not guessed.
            raise bad_request(f"field {path!r} cannot be patched (a JSONPath such as \"$.firstName\")",
                              "invalid.value")
        present = doc.get(field) not in (None, "", [])
        if action == "Update" or (action == "UpdateIfEmpty" and not present) \
                or (action == "UpdateIfExists" and present):
            doc[field] = value
        elif action == "Remove":
            doc.pop(field, None)
        elif action in ("AppendToCollection", "RemoveFromCollection"):
            current = doc.get(field) or []
            if not isinstance(current, list):
                raise bad_request(f"field {field!r} is not a collection", "invalid.value")
            doc[field] = current + [value] if action == "AppendToCollection" else [v for v in current if v != value]
    if kind is CONTACTS and "type" not in doc:
        doc["type"] = existing.get("type", "Curated")
    return _replace(kind, entity_id, doc, request)


# --- routes ----------------------------------------------------------------------------------


@router.get("/api/v2/externalcontacts/reversewhitepageslookup")
def reverse_whitepages_lookup(request: Request, lookupVal: str = Query(...)) -> dict[str, Any]:
    """Exact lookup by e-mail, E.164 phone number or Twitter screen name; at most 25 contacts."""
    value = lookupVal.strip()
    store = ctx(request).store
    # Only documents whose text holds the value can match: decoding all of them made one
    # lookup take seconds at 100k contacts.
    if "@" in value:
        docs = store.containing(CONTACTS.store_kind, value)
        hits = [d for d in docs if any((d.get(f) or "").lower() == value.lower() for f in EMAIL_FIELDS)]
    elif value.startswith("+"):
        try:
            e164 = phonenumbers.format_number(phonenumbers.parse(value, None), phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            raise bad_request(f"Invalid lookup value {value!r}", "invalid.value") from None
        docs = store.containing(CONTACTS.store_kind, e164)
        hits = [d for d in docs if any((d.get(f) or {}).get("e164") == e164 for f in PHONE_FIELDS)]
    else:
        docs = store.containing(CONTACTS.store_kind, value) if value else store.all(CONTACTS.store_kind)
        hits = [d for d in docs if ((d.get("twitterId") or {}).get("screenName") or "").lower() == value.lower()]
    return {"contacts": hits[:LOOKUP_MAX]}


# Scan and reverse lookup are registered before /{id} routes would shadow them.
_add_routes(CONTACTS, "contactId")
_add_routes(ORGS, "externalOrganizationId")
