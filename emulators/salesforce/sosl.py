"""SOSL: FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS] [RETURNING Obj(fields [WHERE] [ORDER BY] [LIMIT])] [LIMIT n].

The search expression: words with * and ? wildcards, "quoted phrases", the operators AND,
OR and AND NOT, and parentheses; words side by side must all match (implicit AND). AND and
AND NOT bind tighter than OR. Phone search compares digits only, so "5125551234" finds
"(512) 555-1234". Other clauses are refused with MALFORMED_SEARCH. Records changed within
--sosl-lag-seconds are not found yet, as a real search index lags behind writes.
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
class Term:
    words: list[str]  # one word, or a phrase's words in order


@dataclass
class Op:
    op: str  # AND, OR, ANDNOT
    left: object
    right: object


@dataclass
class Search:
    expr: object  # Term | Op
    scope: str
    returning: list[Returning]
    limit: int | None


def parse(text: str) -> Search:
    m = re.match(r"^\s*FIND\s*\{((?:\\.|[^}\\])*)\}\s*(.*)$", text, re.IGNORECASE | re.DOTALL)
    if not m:
        raise malformed("line 1:0 mismatched input: a search must start with FIND {term}")
    expr = parse_expression(m.group(1))
    rest = m.group(2)
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
    return Search(expr, scope, returning, limit)


_TERM_TOKEN = re.compile(r'\s*(?:(?P<phrase>"(?:\\.|[^"\\])*")|(?P<paren>[()])|(?P<word>(?:\\.|[^\s()"\\])+))')


def parse_expression(text: str) -> object:
    """The FIND {...} expression -> Term/Op tree (AND, AND NOT before OR; left to right)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TERM_TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip():
                raise malformed(f"line 1:{pos} mismatched character '{text[pos]}'")
            break
        pos = m.end()
        if m.group("phrase"):
            words = re.sub(r"\\(.)", r"\1", m.group("phrase")[1:-1]).split()
            tokens.append(("term", " ".join(words)))
        elif m.group("paren"):
            tokens.append((m.group("paren"), m.group("paren")))
        else:
            word = re.sub(r"\\(.)", r"\1", m.group("word"))
            tokens.append(("op", word.upper()) if word.upper() in ("AND", "OR", "NOT") else ("term", word))
    i = 0

    def peek() -> tuple[str, str] | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal i
        i += 1
        return tokens[i - 1]

    def primary() -> object:
        tok = peek()
        if tok is None:
            raise malformed("search term must be longer than one character" if not tokens
                            else "unexpected end of search expression")
        if tok[0] == "(":
            take()
            inner = disjunction()
            if peek() is None or peek()[0] != ")":
                raise malformed("mismatched parentheses in search expression")
            take()
            return inner
        if tok[0] == "term":
            take()
            words = tok[1].split()
            if not words or all(len(w.strip("*?")) == 0 for w in words):
                raise malformed("search term must be longer than one character")
            return Term(words)
        raise malformed(f"unexpected operator in search expression: {tok[1]}")

    def conjunction() -> object:
        left = primary()
        while True:
            tok = peek()
            if tok is None or tok[0] == ")" or tok == ("op", "OR"):
                return left
            if tok == ("op", "AND"):
                take()
                if peek() == ("op", "NOT"):
                    take()
                    left = Op("ANDNOT", left, primary())
                else:
                    left = Op("AND", left, primary())
            elif tok == ("op", "NOT"):
                raise malformed("NOT must follow AND in a search expression (AND NOT)")
            else:  # words side by side: implicit AND
                left = Op("AND", left, primary())

    def disjunction() -> object:
        left = conjunction()
        while peek() == ("op", "OR"):
            take()
            left = Op("OR", left, conjunction())
        return left

    expr = disjunction()
    if peek() is not None:
        raise malformed(f"unexpected token in search expression: {peek()[1]}")
    return expr


def _word_regex(word: str) -> str:
    body = "".join(r"\w*" if ch == "*" else r"\w" if ch == "?" else re.escape(ch) for ch in word)
    return rf"(?<!\w){body}(?!\w)"


def _match_sql(obj: SObject, expr: object, scope: str) -> tuple[str, list]:
    text_fields = [f for f in obj.fields if f.type in ("string", "email", "phone", "textarea", "combobox", "picklist")
                   and not f.name.endswith("Id")]
    if scope == "NAME":
        text_fields = [f for f in text_fields if f.name in ("Name", "FirstName", "LastName", "Subject", "CaseNumber")]
    elif scope == "EMAIL":
        text_fields = [f for f in text_fields if f.type == "email"]
    elif scope == "PHONE":
        text_fields = []
    phone_fields = [f for f in obj.fields if f.type == "phone"] if scope in ("ALL", "PHONE") else []

    def term_sql(term: Term) -> tuple[str, list]:
        alts, params = [], []
        pattern = r"\W+".join(_word_regex(w)[:-len(r"(?!\w)")] for w in term.words) + r"(?!\w)"
        for f in text_fields:
            alts.append(f"sf_match(?, t0.{q(f.name)})")
            params.append(pattern)
        digits = re.sub(r"\D", "", "".join(term.words))
        if len(digits) >= 2:
            for f in phone_fields:
                # Formatting is ignored; a number may be stored with or without its country code.
                alts.append(f"instr(sf_digits(t0.{q(f.name)}), ?) > 0")
                params.append(digits)
        return "(" + (" OR ".join(alts) or "0") + ")", params

    def walk(node: object) -> tuple[str, list]:
        if isinstance(node, Term):
            return term_sql(node)
        assert isinstance(node, Op)
        left, lp = walk(node.left)
        right, rp = walk(node.right)
        if node.op == "ANDNOT":
            return f"({left} AND NOT {right})", lp + rp
        return f"({left} {node.op} {right})", lp + rp

    return walk(expr)


def run(store: Store, text: str, version: str, lag_seconds: float) -> dict:
    search = parse(text)
    records: list[dict] = []
    cutoff = format_datetime(datetime.now(timezone.utc) - timedelta(seconds=lag_seconds))
    for ret in search.returning:
        sql, params = _match_sql(ret.sobject, search.expr, search.scope)
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
