"""SOSL: FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS] [RETURNING Obj(fields [WHERE] [ORDER BY] [LIMIT])] [LIMIT n].

Terms are words with * and ? wildcards, all of which must match (implicit AND). Phone
search compares digits only, so "5125551234" finds "(512) 555-1234". Boolean operators
(AND/OR/NOT), quoted phrases inside OR groups, and other clauses are refused with
MALFORMED_SEARCH. Records changed within --sosl-lag-seconds are not found yet, as a real
search index lags behind writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import schema, soql
from .errors import ApiError
from .schema import SObject
from .store import Store, format_datetime, q

_SCOPES = {"ALL", "NAME", "EMAIL", "PHONE"}


def malformed(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_SEARCH", message)


@dataclass
class Returning:
    sobject: SObject
    fields: str  # the SOQL field list
    tail: str  # WHERE / ORDER BY / LIMIT, passed to the SOQL compiler


@dataclass
class Search:
    words: list[str]
    scope: str
    returning: list[Returning]
    limit: int | None


def parse(text: str) -> Search:
    m = re.match(r"^\s*FIND\s*\{((?:\\.|[^}\\])*)\}\s*(.*)$", text, re.IGNORECASE | re.DOTALL)
    if not m:
        raise malformed("line 1:0 mismatched input: a search must start with FIND {term}")
    term = re.sub(r"\\(.)", r"\1", m.group(1)).strip()
    rest = m.group(2)
    words = term.replace('"', " ").split()
    if not words:
        raise malformed("search term must be longer than one character")
    if any(w.upper() in ("AND", "OR", "NOT", "AND NOT") or w.startswith("(") for w in words):
        raise malformed(f"Boolean operators in search terms are not supported by the Salesforce emulator: {term}")
    scope = "ALL"
    sm = re.match(r"IN\s+(\w+)\s+FIELDS\s*(.*)$", rest, re.IGNORECASE | re.DOTALL)
    if sm:
        scope = sm.group(1).upper()
        if scope not in _SCOPES:
            raise malformed(f"unexpected token: {sm.group(1)}")
        rest = sm.group(2)
    returning: list[Returning] = []
    rm = re.match(r"RETURNING\s+(.*)$", rest, re.IGNORECASE | re.DOTALL)
    if rm:
        rest = rm.group(1)
        while True:
            om = re.match(r"\s*(\w+)\s*(\((?:[^()']|'(?:\\.|[^'\\])*')*\))?\s*(,?)(.*)$", rest, re.DOTALL)
            if not om or om.group(1).upper() == "LIMIT":
                break
            obj = schema.sobject(om.group(1))
            if obj is None:
                raise ApiError(400, "INVALID_TYPE", f"sObject type '{om.group(1)}' is not supported.")
            inner = (om.group(2) or "(Id)")[1:-1].strip() or "Id"
            fm = re.match(r"^(.*?)(\s+(?:WHERE|ORDER\s+BY|LIMIT)\s.*)?$", inner, re.IGNORECASE | re.DOTALL)
            returning.append(Returning(obj, fm.group(1).strip(), (fm.group(2) or "").strip()))
            rest = om.group(4)
            if not om.group(3):
                break
    else:
        returning = [Returning(o, "Id", "") for o in schema.SOBJECTS.values()]
    limit = None
    lm = re.match(r"\s*LIMIT\s+(\d+)\s*$", rest, re.IGNORECASE)
    if lm:
        limit = int(lm.group(1))
        rest = ""
    if rest.strip():
        raise malformed(f"unexpected token: {rest.strip().split()[0]} (not supported by the Salesforce emulator)")
    return Search(words, scope, returning, limit)


def _word_regex(word: str) -> str:
    body = "".join(r"\w*" if ch == "*" else r"\w" if ch == "?" else re.escape(ch) for ch in word)
    return rf"(?<!\w){body}(?!\w)"


def _match_sql(obj: SObject, words: list[str], scope: str) -> tuple[str, list]:
    text_fields = [f for f in obj.fields if f.type in ("string", "email", "phone", "textarea", "combobox", "picklist")
                   and not f.name.endswith("Id")]
    if scope == "NAME":
        text_fields = [f for f in text_fields if f.name in ("Name", "FirstName", "LastName", "Subject", "CaseNumber")]
    elif scope == "EMAIL":
        text_fields = [f for f in text_fields if f.type == "email"]
    elif scope == "PHONE":
        text_fields = []
    phone_fields = [f for f in obj.fields if f.type == "phone"] if scope in ("ALL", "PHONE") else []
    clauses, params = [], []
    for word in words:
        alts = []
        for f in text_fields:
            alts.append(f"sf_match(?, t0.{q(f.name)})")
            params.append(_word_regex(word))
        digits = re.sub(r"\D", "", word)
        if len(digits) >= 2:
            for f in phone_fields:
                # Formatting is ignored; a number may be stored with or without its country code.
                alts.append(f"instr(sf_digits(t0.{q(f.name)}), ?) > 0")
                params.append(digits)
        clauses.append("(" + (" OR ".join(alts) or "0") + ")")
    return " AND ".join(clauses), params


def run(store: Store, text: str, version: str, lag_seconds: float) -> dict:
    search = parse(text)
    records: list[dict] = []
    cutoff = format_datetime(datetime.now(timezone.utc) - timedelta(seconds=lag_seconds))
    for ret in search.returning:
        sql, params = _match_sql(ret.sobject, search.words, search.scope)
        if lag_seconds > 0:
            sql += " AND t0.SystemModstamp <= ?"
            params.append(cutoff)
        query = f"SELECT {ret.fields} FROM {ret.sobject.name} {ret.tail}"
        try:
            compiled = soql.compile_query(query, include_deleted=False, version=version, extra_where=(sql, params))
        except ApiError as exc:
            raise ApiError(400, "MALFORMED_SEARCH" if exc.error_code == "MALFORMED_QUERY" else exc.error_code,
                           exc.message) from None
        records += soql.fetch(store.conn, compiled, 0, 2000)
        if search.limit is not None and len(records) >= search.limit:
            records = records[: search.limit]
            break
    return {"searchRecords": records}
