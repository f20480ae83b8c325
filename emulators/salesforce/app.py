"""The HTTPS application: OAuth, the REST API under /services/data, admin and record pages.

API requests (and composite subrequests) all go through `Emulator.dispatch`, so faults,
validation rules and error mapping apply to them alike.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime as http_date, parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from . import ids, pages, schema, soql, sosl
from . import aging, ingest, query_pages
from .bulk import BulkJobs
from .errors import ApiError, json_parser_error, not_found
from .faults import Faults, take_record_failure
from .store import Store, ValidationRule, format_datetime, parse_datetime, q
from .pubsub.bus import ChangeBus, change_origin
from .pubsub.control import mount_pubsub_control

API_VERSION = "62.0"


def _release(version: int) -> str:
    k = 62 - version
    season = ("Winter", "Summer", "Spring")[k % 3]
    year = 25 - k // 3 if k % 3 == 0 else 24 - k // 3
    return f"{season} '{year:02d}"


# Oldest first, as /services/data lists them.
VERSIONS = [f"{v}.0" for v in range(31, 63)]
_VERSION_LIST = [{"label": _release(int(float(v))), "url": f"/services/data/v{v}", "version": v} for v in VERSIONS]
_API_PATH = re.compile(r"^/services/data/v(\d+\.\d)(?:/(.*))?$")
_REF = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")
_SESSION_INVALID = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
_HALTED = "The transaction was rolled back since another operation in the same transaction failed."
_JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
_ORG_ID = ids.make_id("00D", 1)
_USER_ID = ids.make_id("005", 1)


@dataclass
class Config:
    data_dir: Path
    client_id: str
    client_secret: str
    token_ttl: int = 7200
    daily_api_limit: int = 100_000
    sosl_lag_seconds: float = 0.0
    # Optional extra OAuth flows: one integration user for the password flow (which also
    # issues refresh tokens) and the connected app's certificate/public key for JWT bearer.
    username: str | None = None
    password: str | None = None
    jwt_public_key: Path | None = None
    # Faults in force from the start: a POST /_emulator/faults body.
    faults: dict | None = None


@dataclass
class Resp:
    status: int
    body: object = None
    headers: dict = field(default_factory=dict)


@dataclass
class Ctx:
    store: Store
    version: str
    holds_lock: bool = False
    in_composite: bool = False


@dataclass
class Cursor:
    compiled: soql.Compiled
    total: int
    batch: int
    created: float
    # offset -> rowid of the row just before it, for pages handed out (keyset paging)
    anchors: dict[int, int] = field(default_factory=dict)


class Emulator:
    def __init__(self, config: Config) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.data_dir / "org.db")
        self.faults = Faults()
        if config.faults:
            self.faults.merge(config.faults)
        self.write_lock = asyncio.Lock()
        self.usage_day = ""
        self.usage_count = 0
        self.stats_total = 0
        self.stats_routes: Counter[str] = Counter()
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.cursor_seq = 0
        self.bulk = BulkJobs()
        self.store.record_faults = self.record_failure
        self.page_policy = query_pages.PagePolicy()
        self.aging = aging.Aging()
        self.ingest = ingest.IngestJobs()
        ingest.create_hard_deleted_log(self.store)
        self.pubsub = ChangeBus(self.store, _USER_ID)  # Change Data Capture (pubsub/)

    def record_failure(self, operation: str, sobject: str, record_id: str | None, row: dict) -> ApiError | None:
        """Per-record fault rules, looked up at the time of the write (the rules can be replaced)."""
        return take_record_failure(self.faults, operation, sobject, record_id, row)

    # -- usage and stats ------------------------------------------------------------------------

    def _today_usage(self) -> int:
        day = datetime.now(timezone.utc).date().isoformat()
        if day != self.usage_day:
            self.usage_day, self.usage_count = day, 0
        return self.usage_count

    def limit_header(self) -> dict:
        return {"Sforce-Limit-Info": f"api-usage={self._today_usage()}/{self.config.daily_api_limit}"}

    # -- OAuth ----------------------------------------------------------------------------------

    def issue_token(self, instance_url: str) -> dict:
        token = f"{_ORG_ID[:15]}!{secrets.token_urlsafe(72)}"
        self.store.add_token(token, time.time() + self.config.token_ttl)
        issued_at = str(int(time.time() * 1000))
        identity = f"{instance_url}/id/{_ORG_ID}/{_USER_ID}"
        # Salesforce signs id + issued_at with the consumer secret (HMAC-SHA256, base64).
        signature = base64.b64encode(hmac.new(self.config.client_secret.encode(), (identity + issued_at).encode(),
                                              hashlib.sha256).digest()).decode()
        return {"access_token": token, "instance_url": instance_url, "id": identity, "token_type": "Bearer",
                "issued_at": issued_at, "signature": signature, "scope": "api"}

    def oauth(self, form: dict, instance_url: str) -> tuple[int, dict]:
        """The token endpoint's grants; returns (status, body) as Salesforce does."""
        cfg = self.config
        grant = form.get("grant_type", "")
        invalid_client = (400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        client_ok = hmac.compare_digest(form.get("client_id") or "", cfg.client_id) and \
            hmac.compare_digest(form.get("client_secret") or "", cfg.client_secret)
        if grant == "client_credentials":
            return (200, self.issue_token(instance_url)) if client_ok else invalid_client
        if grant == "password":
            if not client_ok:
                return invalid_client
            if not (cfg.username and cfg.password and form.get("username") == cfg.username
                    and hmac.compare_digest(form.get("password") or "", cfg.password)):
                return 400, {"error": "invalid_grant", "error_description": "authentication failure"}
            body = self.issue_token(instance_url)
            refresh = f"5Aep{secrets.token_urlsafe(60)}"
            self.store.add_token("refresh:" + refresh, time.time() + 90 * 86400)
            return 200, {**body, "refresh_token": refresh, "scope": "api refresh_token"}
        if grant == "refresh_token":
            if not client_ok:
                return invalid_client
            expiry = self.store.token_expiry("refresh:" + (form.get("refresh_token") or ""))
            if expiry is None or expiry < time.time():
                return 400, {"error": "invalid_grant", "error_description": "expired access/refresh token"}
            return 200, self.issue_token(instance_url)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt_bearer(form.get("assertion") or "", instance_url)
        return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}

    def _jwt_bearer(self, assertion: str, instance_url: str) -> tuple[int, dict]:
        import jwt

        cfg = self.config
        if cfg.jwt_public_key is None:
            return 400, {"error": "invalid_grant", "error_description": "invalid assertion"}
        key = cfg.jwt_public_key.read_bytes()
        if b"CERTIFICATE" in key:
            from cryptography.x509 import load_pem_x509_certificate

            key = load_pem_x509_certificate(key).public_key()
        try:
            claims = jwt.decode(assertion, key, algorithms=["RS256"], options={"verify_aud": False,
                                                                               "require": ["iss", "sub", "aud", "exp"]})
        except jwt.ExpiredSignatureError:
            return 400, {"error": "invalid_grant", "error_description": "expired authorization code"}
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "invalid assertion"}
        if claims.get("iss") != cfg.client_id:
            return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
        # aud names the authorization server: login.salesforce.com, or test.salesforce.com for a
        # sandbox (OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration).
        audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
        if not any(isinstance(a, str) and a.rstrip("/") in _JWT_AUDIENCES for a in audiences):
            return 400, {"error": "invalid_grant", "error_description": "audience is invalid"}
        if not cfg.username or claims.get("sub") != cfg.username:
            return 400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
        return 200, self.issue_token(instance_url)

    def token_valid(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token:
            return False
        expires = self.store.token_expiry(token.strip())
        return expires is not None and expires > time.time()

    # -- the API --------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        too_long = request_too_long(request.scope)
        if too_long is not None:
            return too_long
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?")[0] or request.url.path
        m = _API_PATH.match(raw_path)
        if not m or m.group(1) not in VERSIONS:
            return self.json(Resp(404, not_found().body()))
        if not self.token_valid(request.headers.get("authorization")):
            return self.json(Resp(401, _SESSION_INVALID, {"WWW-Authenticate": "Token"}))
        method = request.method.upper()
        if self.faults.request_limit_exceeded or self._today_usage() >= self.config.daily_api_limit:
            return self.json(Resp(403, [{"message": "TotalRequests Limit exceeded.",
                                         "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))
        self.usage_count += 1
        self.stats_total += 1
        self.aging.auto_purge(self.store)
        version, rest = m.group(1), m.group(2) or ""
        self.stats_routes[f"{method} /services/data/v{version}/{_route_template(rest)}".rstrip("/")] += 1
        latency = self.faults.latency_seconds()
        if latency:
            await asyncio.sleep(latency)
        raw = await request.body()
        body = None
        if raw and method == "PUT" and request.headers.get("content-type", "").startswith("text/csv"):
            body = raw.decode("utf-8-sig")  # Bulk API 2.0 job data
        elif raw and method in ("POST", "PATCH", "PUT"):
            try:
                body = json.loads(raw)
            except ValueError as exc:
                return self.json(Resp(400, json_parser_error(f"Unexpected character: {exc}").body()))
        params = dict(request.query_params)
        ctx = Ctx(self.store, version)
        resp = await self.dispatch(ctx, method, rest, params, dict(request.headers), body)
        return self.json(resp)

    def json(self, resp: Resp) -> Response:
        headers = {**resp.headers, **self.limit_header()}
        if resp.status == 204 or resp.body is None and resp.status < 300:
            return Response(status_code=resp.status, headers=headers)
        if isinstance(resp.body, str):  # CSV results
            media = headers.pop("Content-Type", "text/plain")
            return Response(resp.body.encode("utf-8"), status_code=resp.status, headers=headers, media_type=media)
        return JSONResponse(resp.body, status_code=resp.status, headers=headers)

    async def dispatch(self, ctx: Ctx, method: str, rest: str, params: dict, headers: dict, body: object) -> Resp:
        """One API call (top-level or composite subrequest) after authentication."""
        full = f"/services/data/v{ctx.version}/{rest}"
        delay = self.faults.take_delay(method, full)
        if delay:
            await asyncio.sleep(delay)
        segments = [unquote(s) for s in rest.strip("/").split("/")] if rest.strip("/") else []
        record_id = segments[2] if len(segments) == 3 and segments[0] == "sobjects" else None
        failure = self.faults.take_failure(method, full, record_id)
        if failure:
            return Resp(failure.status, failure.body())
        try:
            if segments[:1] == ["composite"] and segments[1:] == []:
                if ctx.in_composite:
                    raise ApiError(400, "INVALID_INPUT", "A composite request can't contain a composite request")
                if method != "POST":
                    raise _method_not_allowed(method, "POST")
                return await self.composite(ctx, body, headers)
            if method == "GET" or ctx.holds_lock:
                ctx.store.call_origin = change_origin(ctx.version, headers)
                return self.route(ctx, method, segments, params, headers, body)
            async with self.write_lock:
                ctx.store.call_origin = change_origin(ctx.version, headers)  # the change events' origin
                return self.route(ctx, method, segments, params, headers, body)
        except ApiError as exc:
            return Resp(exc.status, exc.body())

    def route(self, ctx: Ctx, method: str, seg: list[str], params: dict, headers: dict, body: object) -> Resp:
        v = ctx.version
        if not seg:
            _only(method, "GET")
            return Resp(200, {name: f"/services/data/v{v}/{name}" for name in
                              ("limits", "query", "queryAll", "sobjects", "composite", "search")})
        head = seg[0]
        if head == "limits" and len(seg) == 1:
            _only(method, "GET")
            used = self._today_usage()
            return Resp(200, {"DailyApiRequests": {"Max": self.config.daily_api_limit,
                                                   "Remaining": max(0, self.config.daily_api_limit - used)}})
        if head in ("query", "queryAll"):
            _only(method, "GET")
            if len(seg) == 1:
                return self.query(ctx, params, headers, include_deleted=head == "queryAll")
            if len(seg) == 2:
                return self.query_more(ctx, seg[1])
            raise not_found()
        if head == "sobjects":
            return self.sobjects(ctx, method, seg[1:], params, headers, body)
        if head == "composite" and seg[1:] == ["sobjects"]:
            return self.collections(ctx, method, params, body)
        if head == "composite" and len(seg) == 4 and seg[1] == "sobjects":
            return self.collections_upsert(ctx, method, seg[2], seg[3], body)
        if head == "jobs" and seg[1:2] == ["query"]:
            return self.bulk_query(ctx, method, seg[2:], params, body)
        if head == "jobs" and seg[1:2] == ["ingest"]:
            return self.bulk_ingest(ctx, method, seg[2:], body)
        if head == "search" and len(seg) == 1:
            _only(method, "GET")
            if not params.get("q"):
                raise ApiError(400, "MALFORMED_SEARCH", "A search string has to be specified")
            return Resp(200, sosl.run(ctx.store, params["q"], ctx.version, self.config.sosl_lag_seconds))
        raise not_found()

    def bulk_query(self, ctx: Ctx, method: str, seg: list[str], params: dict, body: object) -> Resp:
        if not seg:
            if method == "POST":
                return Resp(200, self.bulk.create(ctx.store, body, ctx.version, _USER_ID))
            _only(method, "GET")
            return Resp(200, self.bulk.list())
        if len(seg) == 1:
            if method == "GET":
                return Resp(200, self.bulk.status(seg[0]))
            if method == "PATCH":
                return Resp(200, self.bulk.abort(seg[0], body))
            if method == "DELETE":
                self.bulk.delete(seg[0])
                return Resp(204)
            raise _method_not_allowed(method, "GET, PATCH, DELETE")
        if len(seg) == 2 and seg[1] == "results":
            _only(method, "GET")
            text, headers = self.bulk.results(self.store, seg[0], params)
            return Resp(200, text, headers)
        raise not_found()

    def bulk_ingest(self, ctx: Ctx, method: str, seg: list[str], body: object) -> Resp:
        jobs = self.ingest
        if not seg:
            _only(method, "POST")
            return Resp(200, jobs.create(body, ctx.version, _USER_ID))
        if len(seg) == 1:
            if method == "GET":
                return Resp(200, jobs.status(seg[0]))
            if method == "PATCH":
                return Resp(200, jobs.close(ctx.store, seg[0], body, self._record_fault(ctx.version)))
            if method == "DELETE":
                jobs.delete(seg[0])
                return Resp(204)
            raise _method_not_allowed(method, "GET, PATCH, DELETE")
        if len(seg) == 2 and seg[1] == "batches":
            _only(method, "PUT")
            jobs.upload(seg[0], body)
            return Resp(201)
        if len(seg) == 2:
            _only(method, "GET")
            return Resp(200, jobs.results(seg[0], seg[1]), {"Content-Type": "text/csv"})
        raise not_found()

    def _record_fault(self, version: str):
        """A `fail_next` rule for DELETE /sobjects/{T}/{id} also fails that record in a bulk job."""

        def fault(type_name: str, record_id: str) -> ApiError | None:
            path = f"/services/data/v{version}/sobjects/{type_name}/{record_id}"
            if any(rule.matches("DELETE", path) for rule in self.faults.fail_next):
                return self.faults.take_failure("DELETE", path, record_id)
            return None

        return fault

    # -- query ----------------------------------------------------------------------------------

    def query(self, ctx: Ctx, params: dict, headers: dict, *, include_deleted: bool) -> Resp:
        text = params.get("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        compiled = soql.compile_query(text, include_deleted=include_deleted, version=ctx.version)
        conn = ctx.store.conn
        batch = query_pages.batch_size(headers)
        budget = self.page_policy.budget(batch)
        records, last_rid, cut = soql.fetch_fitted(conn, compiled, 0, budget, self._child_pager(ctx.version),
                                                   budget=budget)
        # A short first page is the whole result: skip the second scan a COUNT would cost.
        short = not compiled.count_only and not cut and len(records) < budget and \
            (compiled.limit is None or len(records) < compiled.limit)
        full_limit = compiled.limit is not None and len(records) == compiled.limit
        total = len(records) if short or full_limit else soql.total_size(conn, compiled)
        body: dict = {"totalSize": total, "done": True}
        if not compiled.count_only and total > len(records):
            locator = self._new_cursor(Cursor(compiled, total, batch, time.time(), {len(records): last_rid}))
            body["done"] = False
            body["nextRecordsUrl"] = f"/services/data/v{ctx.version}/query/{locator}-{len(records)}"
        body["records"] = records
        return Resp(200, body)

    def _new_cursor(self, cursor: Cursor) -> str:
        self.cursor_seq += 1
        locator = ids.make_id("01g", self.cursor_seq)
        self.cursors[locator] = cursor
        while len(self.cursors) > 1000:  # Salesforce also caps open cursors per user
            self.cursors.popitem(last=False)
        return locator

    def _child_pager(self, version: str):
        """Opens a cursor on the rest of one record's child subquery result (see soql.CHILD_BATCH)."""

        def open_cursor(compiled: soql.Compiled, total: int, returned: int) -> str:
            locator = self._new_cursor(Cursor(compiled, total, soql.CHILD_BATCH, time.time()))
            return f"/services/data/v{version}/query/{locator}-{returned}"

        return open_cursor

    def query_more(self, ctx: Ctx, token: str) -> Resp:
        locator, _, start = token.partition("-")
        cursor = self.cursors.get(locator)
        if cursor is None or not start.isdigit() or time.time() - cursor.created > 15 * 60:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        offset = int(start)
        budget = self.page_policy.budget(cursor.batch)
        records, last_rid, _ = soql.fetch_fitted(self.store.conn, cursor.compiled, offset, budget,
                                                 self._child_pager(ctx.version), cursor.anchors.get(offset), budget)
        end = offset + len(records)
        if last_rid is not None:
            cursor.anchors[end] = last_rid
            while len(cursor.anchors) > 64:  # keep the newest: clients page forward
                cursor.anchors.pop(next(iter(cursor.anchors)))
        body: dict = {"totalSize": cursor.total, "done": end >= cursor.total}
        if end < cursor.total:
            body["nextRecordsUrl"] = f"/services/data/v{ctx.version}/query/{locator}-{end}"
        body["records"] = records
        return Resp(200, body)

    # -- sObjects -------------------------------------------------------------------------------

    def sobjects(self, ctx: Ctx, method: str, seg: list[str], params: dict, headers: dict, body: object) -> Resp:
        v = ctx.version
        store = ctx.store
        if not seg:
            _only(method, "GET")
            return Resp(200, {"encoding": "UTF-8", "maxBatchSize": 200,
                              "sobjects": [o.summary(v) for o in schema.SOBJECTS.values()]})
        obj = schema.sobject(seg[0])
        if obj is None:
            raise not_found()
        if len(seg) == 1:
            if method == "GET":
                recent = []
                return Resp(200, {"objectDescribe": obj.summary(v), "recentItems": recent})
            _only(method, "POST")
            record_id = store.create(obj, body)
            return Resp(201, {"id": record_id, "success": True, "errors": []},
                        {"Location": f"/services/data/v{v}/sobjects/{obj.name}/{record_id}"})
        if len(seg) == 2 and seg[1] == "describe":
            _only(method, "GET")
            return Resp(200, obj.describe(v, schema.child_relationships_of(obj.name)))
        if len(seg) == 2 and seg[1] in ("updated", "deleted"):
            _only(method, "GET")
            return Resp(200, self.replication(store, obj, seg[1], params))
        if len(seg) == 2:
            record_id = seg[1]
            if method == "GET":
                fields = [f for f in params.get("fields", "").split(",") if f.strip()] or None
                rec = store.get_record(obj, record_id, fields, v)
                row = store.fetch_row(obj, rec["attributes"]["url"].rsplit("/", 1)[1])
                return Resp(200, rec, {"Last-Modified": _http_date(row["LastModifiedDate"])})
            if method == "PATCH":
                store.update(obj, record_id, body, unmodified_since=_unmodified_since(headers))
                return Resp(204)
            if method == "DELETE":
                store.delete(obj, record_id)
                return Resp(204)
            raise _method_not_allowed(method, "GET, PATCH, DELETE")
        if len(seg) == 3:
            f = obj.field(seg[1])
            if f is None or not (f.external_id or f.id_lookup):
                raise not_found()
            value = seg[2]
            if method == "GET":
                matches = store.find_by_field(obj, f, value)
                if len(matches) > 1:
                    raise ApiError(300, "MULTIPLE_CHOICES", "",
                                   body=[f"/services/data/v{v}/sobjects/{obj.name}/{m}" for m in matches])
                if not matches:
                    raise not_found()
                return Resp(200, store.get_record(obj, matches[0], None, v))
            if method == "PATCH":
                update_only = params.get("updateOnly", "").lower() == "true"
                record_id, created = store.upsert(obj, f.name, value, body, update_only=update_only, version=v)
                out = {"id": record_id, "success": True, "errors": [], "created": created}
                if created:
                    return Resp(201, out, {"Location": f"/services/data/v{v}/sobjects/{obj.name}/{record_id}"})
                # An update answers 200 with the result from API v46.0 on, 204 before.
                return Resp(200, out) if float(v) >= 46.0 else Resp(204)
            if method == "DELETE":
                matches = store.find_by_field(obj, f, value)
                if len(matches) > 1:
                    raise ApiError(300, "MULTIPLE_CHOICES", "",
                                   body=[f"/services/data/v{v}/sobjects/{obj.name}/{m}" for m in matches])
                if not matches:
                    raise not_found()
                store.delete(obj, matches[0])
                return Resp(204)
            raise _method_not_allowed(method, "GET, PATCH, DELETE")
        raise not_found()

    def replication(self, store: Store, obj: schema.SObject, kind: str, params: dict) -> dict:
        """getUpdated / getDeleted: ids changed in [start, end], by SystemModstamp, minute precision."""
        try:
            start = parse_datetime(params["start"]).replace(second=0, microsecond=0)
            end = parse_datetime(params["end"]).replace(second=0, microsecond=0)
        except (KeyError, ValueError):
            raise ApiError(400, "INVALID_REPLICATION_DATE", "start and end must be valid dateTime values") from None
        now = datetime.now(timezone.utc)
        # Seconds are ignored; the window must span at least a minute; deletes are kept 15 days
        # and updates 30 (getUpdated/getDeleted rules).
        if end - start < timedelta(minutes=1):
            raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate by "
                           "more than one minute")
        days = 15 if kind == "deleted" else 30
        if start < now - timedelta(days=days):
            raise ApiError(400, "INVALID_REPLICATION_DATE", f"startDate cannot be more than {days} days ago")
        earliest = aging.earliest_date_available(store, obj.name) if kind == "deleted" else None
        if earliest is not None and start < earliest:
            # Deletions in the window were purged: only a full comparison can find them now.
            raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate is before earliestDateAvailable "
                           f"{format_datetime(earliest)}")
        # Nothing after now is covered yet, nor what running transactions may still write.
        lo, hi = format_datetime(start), format_datetime(self.aging.covered_until(end, now))
        deleted = 1 if kind == "deleted" else 0
        rows = store.conn.execute(f"SELECT Id, SystemModstamp FROM {q(obj.name)} WHERE IsDeleted = ? AND "
                                  "SystemModstamp >= ? AND SystemModstamp < ? ORDER BY SystemModstamp, rid",
                                  (deleted, lo, hi)).fetchall()
        if deleted:  # hard-deleted records stay in the delete log until the next purge
            rows += store.conn.execute("SELECT Id, deletedDate FROM _hard_deleted WHERE sobject = ? AND "
                                       "deletedDate >= ? AND deletedDate < ? ORDER BY deletedDate",
                                       (obj.name, lo, hi)).fetchall()
        if kind == "updated":
            return {"ids": [r[0] for r in rows], "latestDateCovered": hi}
        available = earliest or (now - timedelta(days=15)).replace(second=0, microsecond=0)
        return {"deletedRecords": [{"id": r[0], "deletedDate": r[1]} for r in rows],
                "earliestDateAvailable": format_datetime(available), "latestDateCovered": hi}

    # -- sObject Collections --------------------------------------------------------------------

    def collections(self, ctx: Ctx, method: str, params: dict, body: object) -> Resp:
        store = ctx.store
        if method == "DELETE":
            id_list = [i for i in params.get("ids", "").split(",") if i]
            all_or_none = params.get("allOrNone", "false").lower() == "true"
            return self._collection(store, all_or_none, id_list, lambda rid: self._delete_any(store, rid))
        if method not in ("POST", "PATCH"):
            raise _method_not_allowed(method, "POST, PATCH, DELETE")
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise json_parser_error("Cannot deserialize instance of collection: 'records' is required")
        records = body["records"]
        all_or_none = bool(body.get("allOrNone", False))

        def one(rec: dict) -> str:
            if not isinstance(rec, dict):
                raise json_parser_error("each record must be a JSON object")
            type_name = (rec.get("attributes") or {}).get("type")
            obj = schema.sobject(type_name or "")
            if obj is None:
                raise ApiError(400, "INVALID_TYPE", "sObject type is missing or not supported", [])
            # Field names are case-insensitive: the docs' own examples send "id".
            data = {("Id" if k.lower() == "id" else k): val for k, val in rec.items() if k != "attributes"}
            if method == "POST":
                if "Id" in data:
                    raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
                return store.create(obj, data)
            record_id = data.pop("Id", None)
            if not record_id:
                raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", [])
            return store.update(obj, record_id, data)

        return self._collection(store, all_or_none, records, one)

    def collections_upsert(self, ctx: Ctx, method: str, type_name: str, field_name: str, body: object) -> Resp:
        """PATCH composite/sobjects/{SObject}/{ExternalIdField} (API 46+): UpsertResults in order."""
        if method != "PATCH":
            raise _method_not_allowed(method, "PATCH")
        obj = schema.sobject(type_name)
        if obj is None:
            raise not_found()
        f = obj.field(field_name)
        if f is None or f.name == "Id" or not f.external_id:
            raise ApiError(400, "INVALID_FIELD", f"Field {field_name} is not an external id field of {obj.name}", [])
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise json_parser_error("Cannot deserialize instance of collection: 'records' is required")
        created: dict[int, bool] = {}

        def one(rec: dict) -> str:
            if not isinstance(rec, dict):
                raise json_parser_error("each record must be a JSON object")
            if (rec.get("attributes") or {}).get("type", "").lower() != obj.name.lower():
                raise ApiError(400, "INVALID_TYPE", "sObject type does not match the request URI", [])
            data = {("Id" if k.lower() == "id" else k): val for k, val in rec.items() if k != "attributes"}
            if "Id" in data:
                raise ApiError(400, "INVALID_FIELD", "Id can't be set in an upsert by external id", ["Id"])
            value = data.pop(f.name, None)
            if not value:
                raise ApiError(400, "MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
            record_id, was_created = ctx.store.upsert(obj, f.name, str(value), {**data, f.name: value},
                                                      version=ctx.version)
            created[len(created)] = was_created
            return record_id

        resp = self._collection(ctx.store, bool(body.get("allOrNone", False)), body["records"], one)
        done = iter(created.values())
        for result in resp.body:
            if result.get("success"):
                result["created"] = next(done)
        return resp

    def _delete_any(self, store: Store, record_id: str) -> str:
        obj = schema.sobject_for_id(record_id) if ids.is_valid(record_id) else None
        if obj is None:
            raise ApiError(400, "MALFORMED_ID", f"malformed id {record_id}", [])
        return store.delete(obj, record_id)

    def _collection(self, store: Store, all_or_none: bool, items: list, op) -> Resp:
        if len(items) > 200:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records "
                           "into this call")
        results: list[dict] = []
        # Inside a composite allOrNone=true, the outer flag overrides the collection's own.
        all_or_none = all_or_none or store.in_transaction
        outer = not store.in_transaction and all_or_none
        if outer:
            store.begin()
        failed = False
        for item in items:
            try:
                # Each record commits alone unless the whole call is all-or-none.
                results.append({"id": op(item), "success": True, "errors": []})
            except ApiError as exc:
                failed = True
                results.append({"success": False, "errors": [
                    {"statusCode": exc.error_code, "message": exc.message, "fields": exc.fields or []}]})
                if all_or_none:
                    break
        if all_or_none and failed:
            if outer:
                store.rollback()
            for i, res in enumerate(results):
                if res["success"]:
                    results[i] = {"success": False, "errors": [
                        {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                         "message": "Record rolled back because not all records were valid and the request "
                                    "was using AllOrNone header", "fields": []}]}
            results += [{"success": False, "errors": [
                {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                 "message": "Record rolled back because not all records were valid and the request was using "
                            "AllOrNone header", "fields": []}]}] * (len(items) - len(results))
            if not outer:
                # Inside a composite allOrNone transaction: the whole composite fails.
                return Resp(200, results)
        elif outer:
            store.commit()
        return Resp(200, results)

    # -- composite ------------------------------------------------------------------------------

    async def composite(self, ctx: Ctx, body: object, outer_headers: dict | None = None) -> Resp:
        if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
            raise json_parser_error("Cannot deserialize instance of composite request: 'compositeRequest' is "
                                    "required")
        subs = body["compositeRequest"]
        if not subs or len(subs) > 25:
            raise ApiError(400, "INVALID_INPUT", "A composite request must contain between 1 and 25 subrequests")
        for sub in subs:
            if not isinstance(sub, dict) or not all(isinstance(sub.get(k), str) for k in ("method", "url",
                                                                                            "referenceId")):
                raise json_parser_error("Each subrequest needs method, url and referenceId")
            if not re.fullmatch(r"[A-Za-z0-9_]+", sub["referenceId"]):
                raise ApiError(400, "INVALID_INPUT", f"Invalid reference id: {sub['referenceId']}. Reference "
                               "ids can only contain alphanumeric characters and underscores.")
        all_or_none = bool(body.get("allOrNone", False))
        if all_or_none:
            if ctx.holds_lock:
                raise ApiError(400, "INVALID_INPUT", "nested all-or-none transactions are not supported")
            async with self.write_lock:
                tx = Store(self.store.path, create=False)
                tx.validation_rules = self.store.validation_rules
                tx.record_faults = self.store.record_faults
                try:
                    tx.begin()
                    sub_ctx = Ctx(tx, ctx.version, holds_lock=True, in_composite=True)
                    results = await self._run_subrequests(sub_ctx, subs, stop_on_error=True,
                                                          outer_headers=outer_headers)
                    failed = any(_failed(done) for done in results)
                    if failed:
                        tx.rollback()
                        halted = {"body": [{"errorCode": "PROCESSING_HALTED", "message": _HALTED}],
                                  "httpHeaders": {}, "httpStatusCode": 400}
                        out = []
                        for sub, res in zip(subs, results + [None] * (len(subs) - len(results))):
                            if res is None or not _failed(res):
                                res = {**halted, "referenceId": sub["referenceId"]}
                            out.append(res)
                        results = out
                    else:
                        tx.commit()
                finally:
                    if tx.in_transaction:
                        tx.rollback()
                    tx.close()
        else:
            results = await self._run_subrequests(Ctx(ctx.store, ctx.version, in_composite=True), subs,
                                                  stop_on_error=False, outer_headers=outer_headers)
        return Resp(200, {"compositeResponse": results})

    async def _run_subrequests(self, ctx: Ctx, subs: list[dict], *, stop_on_error: bool,
                               outer_headers: dict | None = None) -> list[dict]:
        # The composite request's call options apply to every subrequest (Sforce-Call-Options is a
        # request header: the change events of its writes name its client in changeOrigin).
        inherited = {k: v for k, v in (outer_headers or {}).items() if k == "sforce-call-options"}
        done: dict[str, Resp] = {}
        results: list[dict] = []
        for sub in subs:
            ref = sub["referenceId"]
            try:
                url = _resolve_refs(sub["url"], done, in_url=True)
                body = _resolve_refs(sub.get("body"), done)
                parts = urlsplit(url)
                m = _API_PATH.match(parts.path)
                if not m or m.group(1) not in VERSIONS:
                    raise not_found()
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                headers = {**inherited, **{k.lower(): val for k, val in (sub.get("httpHeaders") or {}).items()}}
                resp = await self.dispatch(Ctx(ctx.store, m.group(1), ctx.holds_lock, True), sub["method"].upper(),
                                           m.group(2) or "", params, headers, body)
            except ApiError as exc:
                resp = Resp(exc.status, exc.body())
            done[ref] = resp
            results.append({"body": resp.body if resp.status != 204 else None, "httpHeaders": resp.headers,
                            "httpStatusCode": resp.status, "referenceId": ref})
            if stop_on_error and _failed(resp):
                break
        return results


# "In each REST API call, the maximum combined length of the URI and headers is 16,384 bytes":
# over it 431 Request Header Fields Too Large, the URI alone over it 414 URI Too Long
# (Salesforce Help, knowledge article 000386264).
MAX_URI_AND_HEADERS = 16_384


def request_too_long(scope: dict) -> Response | None:
    raw_path = scope.get("raw_path") or scope.get("path", "").encode()
    query = scope.get("query_string") or b""
    uri = len(raw_path.split(b"?")[0]) + (len(query) + 1 if query else 0)
    if uri > MAX_URI_AND_HEADERS:
        return Response("URI Too Long", status_code=414, media_type="text/plain")
    headers = sum(len(k) + len(v) + 4 for k, v in scope.get("headers") or [])
    if uri + headers > MAX_URI_AND_HEADERS:
        return Response("Request Header Fields Too Large", status_code=431, media_type="text/plain")
    return None


def _resolve_refs(value: object, done: dict[str, Resp], *, in_url: bool = False) -> object:
    """Replace @{refId.path} with values from earlier subrequests' response bodies."""
    if isinstance(value, dict):
        return {k: _resolve_refs(v, done) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, done) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value

    def lookup(ref: str, path: str) -> object:
        resp = done.get(ref)
        missing = ApiError(400, "PROCESSING_HALTED",
                           f"Invalid reference specified. No value for {ref}.{path} found in {ref}. Provided "
                           f"referenceId ('{ref}') and path ('{path}') doesn't exist in the response body")
        if resp is None or resp.status >= 400:
            raise missing
        cur: object = resp.body
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
            if part.startswith("["):
                idx = int(part[1:-1])
                if not isinstance(cur, list) or idx >= len(cur):
                    raise missing
                cur = cur[idx]
            else:
                if not isinstance(cur, dict) or part not in cur:
                    raise missing
                cur = cur[part]
        return cur

    whole = _REF.fullmatch(value)
    if whole and not in_url:
        return lookup(whole.group(1), whole.group(2))
    return _REF.sub(lambda m: str(lookup(m.group(1), m.group(2))), value)


def _failed(result: Resp | dict) -> bool:
    """A failed subrequest: an error status, or a collection with a failed record."""
    status = result.status if isinstance(result, Resp) else result["httpStatusCode"]
    body = result.body if isinstance(result, Resp) else result["body"]
    if status >= 400:
        return True
    return isinstance(body, list) and any(isinstance(i, dict) and i.get("success") is False for i in body)


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise _method_not_allowed(method, allowed)


def _method_not_allowed(method: str, allowed: str) -> ApiError:
    return ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}")


def _unmodified_since(headers: dict) -> datetime | None:
    value = headers.get("if-unmodified-since")
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise ApiError(400, "INVALID_HEADER_VALUE", f"Invalid If-Unmodified-Since header: {value}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _http_date(sf_datetime: str) -> str:
    return http_date(parse_datetime(sf_datetime), usegmt=True)


def _route_template(rest: str) -> str:
    seg = [s for s in rest.strip("/").split("/") if s]
    if len(seg) >= 2 and seg[0] in ("query", "queryAll"):
        return f"{seg[0]}/{{locator}}"
    if len(seg) >= 3 and seg[:2] == ["jobs", "query"]:
        return "/".join(["jobs/query/{id}"] + seg[3:])
    if len(seg) >= 3 and seg[:2] == ["jobs", "ingest"]:
        return "/".join(["jobs/ingest/{id}"] + seg[3:])
    if len(seg) == 3 and seg[0] == "sobjects" and seg[2] not in ("describe", "updated", "deleted"):
        return f"sobjects/{seg[1]}/{{id}}"
    if len(seg) == 4 and seg[0] == "sobjects":
        return f"sobjects/{seg[1]}/{seg[2]}/{{value}}"
    return "/".join(seg)


# ------------------------------------------------------------------------------------------------
# FastAPI wiring
# ------------------------------------------------------------------------------------------------


def create_app(config: Config) -> FastAPI:
    emu = Emulator(config)
    app = FastAPI(title="Salesforce emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.emulator = emu
    mount_pubsub_control(app, emu)

    @app.get("/_emulator/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/_emulator/faults")
    async def get_faults() -> dict:
        return emu.faults.snapshot()

    @app.post("/_emulator/faults")
    async def post_faults(request: Request) -> Response:
        try:
            emu.faults.merge(json.loads(await request.body() or b"{}"))
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(emu.faults.snapshot())

    @app.delete("/_emulator/faults")
    async def clear_faults() -> dict:
        emu.faults = Faults()
        return emu.faults.snapshot()

    @app.get("/_emulator/query-pages")
    async def get_query_pages() -> dict:
        return emu.page_policy.snapshot()

    @app.post("/_emulator/query-pages")
    async def post_query_pages(request: Request) -> Response:
        try:
            emu.page_policy.merge(json.loads(await request.body() or b"{}"))
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(emu.page_policy.snapshot())

    @app.delete("/_emulator/query-pages")
    async def clear_query_pages() -> dict:
        emu.page_policy = query_pages.PagePolicy()
        return emu.page_policy.snapshot()

    @app.post("/_emulator/archive")
    async def archive(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            today = date.fromisoformat(body["today"]) if body.get("today") else datetime.now(timezone.utc).date()
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": f"bad archive request: {exc}"}, status_code=400)
        async with emu.write_lock:
            return JSONResponse({"archived": aging.archive_activities(emu.store, today)})

    @app.post("/_emulator/recycle-bin/purge")
    async def purge(request: Request) -> Response:
        try:
            days = json.loads(await request.body() or b"{}").get("older_than_days")
            if days is not None and (not isinstance(days, (int, float)) or days < 0):
                raise ValueError("older_than_days must be a non-negative number")
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        older_than = None if days is None else datetime.now(timezone.utc) - timedelta(days=days)
        async with emu.write_lock:
            return JSONResponse({"purged": aging.purge_recycle_bin(emu.store, older_than)})

    @app.get("/_emulator/replication")
    async def get_replication() -> dict:
        return emu.aging.snapshot()

    @app.post("/_emulator/replication")
    async def post_replication(request: Request) -> Response:
        try:
            emu.aging.merge(json.loads(await request.body() or b"{}"))
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(emu.aging.snapshot())

    @app.delete("/_emulator/replication")
    async def clear_replication() -> dict:
        emu.aging.covered_lag_seconds = 0
        return emu.aging.snapshot()

    @app.get("/_emulator/permissions")
    async def get_permissions() -> dict:
        return {ingest.HARD_DELETE_PERMISSION: emu.ingest.hard_delete_permitted}

    @app.post("/_emulator/permissions")
    async def post_permissions(request: Request) -> Response:
        try:
            value = json.loads(await request.body() or b"{}")[ingest.HARD_DELETE_PERMISSION]
            if not isinstance(value, bool):
                raise TypeError("a boolean is expected")
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad permissions: {exc}"}, status_code=400)
        emu.ingest.hard_delete_permitted = value
        return JSONResponse({ingest.HARD_DELETE_PERMISSION: value})

    @app.post("/_emulator/sessions/expire")
    async def expire_sessions() -> dict:
        emu.store.expire_tokens()
        return {"expired": True}

    @app.get("/_emulator/validation-rules")
    async def get_rules() -> list:
        return [r.__dict__ for r in emu.store.validation_rules]

    @app.post("/_emulator/validation-rules")
    async def add_rule(request: Request) -> Response:
        try:
            data = json.loads(await request.body())
            rule = ValidationRule(str(data["sobject"]), str(data["field"]), str(data["contains"]),
                                  str(data["message"]))
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad rule: {exc}"}, status_code=400)
        obj = schema.sobject(rule.sobject)
        if obj is None or obj.field(rule.field) is None:
            return JSONResponse({"error": "unknown sobject or field"}, status_code=400)
        emu.store.add_rule(rule)
        return JSONResponse([r.__dict__ for r in emu.store.validation_rules])

    @app.delete("/_emulator/validation-rules")
    async def clear_rules() -> list:
        emu.store.clear_rules()
        return []

    @app.get("/_emulator/stats")
    async def stats() -> dict:
        return {"apiRequests": emu.stats_total, "byRoute": dict(emu.stats_routes)}

    @app.post("/_emulator/stats/reset")
    async def reset_stats() -> dict:
        emu.stats_total = 0
        emu.stats_routes.clear()
        return {"apiRequests": 0, "byRoute": {}}

    @app.get("/_emulator/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(pages.index_page(emu.store))

    @app.get("/services/data")
    @app.get("/services/data/")
    async def versions() -> JSONResponse:
        return JSONResponse(_VERSION_LIST)

    @app.post("/services/oauth2/token")
    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
                form.setdefault("client_id", client_id)
                form.setdefault("client_secret", client_secret)
            except ValueError:
                pass
        status, body = emu.oauth(form, str(request.base_url).rstrip("/"))
        return JSONResponse(body, status_code=status)

    @app.api_route("/services/data/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"])
    async def api(request: Request, rest: str) -> Response:
        return await emu.handle(request)

    @app.get("/lightning/r/{type_name}/{record_id}/view", response_class=HTMLResponse)
    async def lightning(type_name: str, record_id: str) -> HTMLResponse:
        status, html = pages.record_page(emu.store, record_id, type_name)
        return HTMLResponse(html, status_code=status)

    @app.get("/{record_id}", response_class=HTMLResponse)
    async def classic(record_id: str) -> HTMLResponse:
        status, html = pages.record_page(emu.store, record_id, None)
        return HTMLResponse(html, status_code=status)

    return app
