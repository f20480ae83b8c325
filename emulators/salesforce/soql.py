"""SOQL: tokenizer, recursive-descent parser, and a compiler to SQLite over the store.

Supported: field lists with parent fields (Account.Name, Who.Name), COUNT(), child
subqueries (SELECT Id, (SELECT Subject FROM Tasks) FROM Contact), WHERE with
= != <> < <= > >= LIKE IN NOT IN, AND/OR/NOT and parentheses, null, true/false, numbers,
strings with Salesforce escapes, date and dateTime literals and a set of relative date
literals, ORDER BY ... ASC/DESC NULLS FIRST/LAST, LIMIT, OFFSET.

Everything else is refused with MALFORMED_QUERY rather than answered wrongly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from . import ids, schema
from . import query_pages
from .errors import ApiError
from .schema import Field, SObject
from .store import format_datetime, parse_datetime, q, to_json

# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<number>[+-]?\d+(?:\.\d+)?(?![\w]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<string>')
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


@dataclass
class Token:
    kind: str  # ident, string, number, date, datetime, op, punct, eof
    text: str
    pos: int
    value: object = None  # strings: the unescaped value
    like: str | None = None  # strings: the value as an SQL LIKE pattern with ESCAPE '\'

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


class SoqlError(ApiError):
    pass


def _position(text: str, pos: int) -> tuple[int, int, str]:
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line_end = len(text) if line_end < 0 else line_end
    row = text.count("\n", 0, pos) + 1
    return row, pos - line_start + 1, text[line_start:line_end]


def query_error(text: str, pos: int, message: str, code: str = "MALFORMED_QUERY") -> SoqlError:
    """Salesforce's message shape: the query line, a caret, the row/column, the reason."""
    row, col, line = _position(text, pos)
    return SoqlError(400, code, f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{message}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise query_error(text, pos, f"unexpected token: '{text[pos]}'")
        kind = m.lastgroup
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "string":
            tokens.append(_read_string(text, pos))
            pos = tokens[-1].value_end  # type: ignore[attr-defined]
            continue
        tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


def _read_string(text: str, start: int) -> Token:
    value, like = [], []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            tok = Token("string", text[start : i + 1], start, "".join(value), "".join(like))
            tok.value_end = i + 1  # type: ignore[attr-defined]
            return tok
        if ch == "\\":
            if i + 1 >= len(text):
                break
            esc = text[i + 1]
            if esc in ("%", "_"):
                # Escaped wildcards: literal in LIKE patterns.
                value.append("\\" + esc)
                like.append("\\" + esc)
            elif esc == "u" and re.match(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                c = chr(int(text[i + 2 : i + 6], 16))
                value.append(c)
                like.append(_like_literal(c))
                i += 4
            elif esc in _ESCAPES:
                value.append(_ESCAPES[esc])
                like.append(_like_literal(_ESCAPES[esc]))
            else:
                raise query_error(text, i, "Invalid string literal '" + text[start:i + 2]
                                  + "'. Illegal character sequence '\\" + esc + "' in string literal.")
            i += 2
            continue
        value.append(ch)
        like.append(ch)  # unescaped % and _ stay wildcards
        i += 1
    raise query_error(text, start, "unexpected token: '" + text[start:] + "' (unterminated string)")


def _like_literal(ch: str) -> str:
    return "\\" + ch if ch in ("\\", "%", "_") else ch


# --------------------------------------------------------------------------------------------
# AST
# --------------------------------------------------------------------------------------------


@dataclass
class FieldRef:
    path: list[str]
    pos: int


@dataclass
class Literal:
    kind: str  # string, number, boolean, null, date, datetime, range
    value: object
    pos: int
    like: str | None = None


@dataclass
class Compare:
    field: FieldRef
    op: str  # = != < <= > >= LIKE IN NOTIN
    value: Literal | list[Literal]
    pos: int


@dataclass
class BoolOp:
    op: str  # AND, OR
    items: list


@dataclass
class Not:
    item: object


@dataclass
class OrderItem:
    field: FieldRef
    ascending: bool
    nulls_first: bool


@dataclass
class Query:
    text: str
    sobject: str
    sobject_pos: int
    fields: list  # FieldRef | Query (child subquery)
    count: bool = False
    where: object = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


# Relative date literals: name -> (takes N, function(today, n) -> [start, end) dates).
def _week_start(d: date) -> date:
    return d - timedelta(days=(d.weekday() + 1) % 7)  # weeks start on Sunday (en_US locale)


def _month_start(d: date, delta: int = 0) -> date:
    m = d.month - 1 + delta
    return date(d.year + m // 12, m % 12 + 1, 1)


def _quarter_start(d: date) -> date:
    return date(d.year, (d.month - 1) // 3 * 3 + 1, 1)


DATE_LITERALS: dict[str, tuple[bool, Callable[[date, int], tuple[date, date]]]] = {
    "TODAY": (False, lambda t, n: (t, t + timedelta(days=1))),
    "YESTERDAY": (False, lambda t, n: (t - timedelta(days=1), t)),
    "TOMORROW": (False, lambda t, n: (t + timedelta(days=1), t + timedelta(days=2))),
    "THIS_WEEK": (False, lambda t, n: (_week_start(t), _week_start(t) + timedelta(days=7))),
    "LAST_WEEK": (False, lambda t, n: (_week_start(t) - timedelta(days=7), _week_start(t))),
    "NEXT_WEEK": (False, lambda t, n: (_week_start(t) + timedelta(days=7), _week_start(t) + timedelta(days=14))),
    "THIS_MONTH": (False, lambda t, n: (_month_start(t), _month_start(t, 1))),
    "LAST_MONTH": (False, lambda t, n: (_month_start(t, -1), _month_start(t))),
    "NEXT_MONTH": (False, lambda t, n: (_month_start(t, 1), _month_start(t, 2))),
    "THIS_QUARTER": (False, lambda t, n: (_quarter_start(t), _month_start(_quarter_start(t), 3))),
    "LAST_QUARTER": (False, lambda t, n: (_month_start(_quarter_start(t), -3), _quarter_start(t))),
    "NEXT_QUARTER": (False, lambda t, n: (_month_start(_quarter_start(t), 3), _month_start(_quarter_start(t), 6))),
    "THIS_YEAR": (False, lambda t, n: (date(t.year, 1, 1), date(t.year + 1, 1, 1))),
    "LAST_YEAR": (False, lambda t, n: (date(t.year - 1, 1, 1), date(t.year, 1, 1))),
    "NEXT_YEAR": (False, lambda t, n: (date(t.year + 1, 1, 1), date(t.year + 2, 1, 1))),
    # LAST_90_DAYS includes today (91 days); NEXT_90_DAYS starts tomorrow.
    "LAST_90_DAYS": (False, lambda t, n: (t - timedelta(days=90), t + timedelta(days=1))),
    "NEXT_90_DAYS": (False, lambda t, n: (t + timedelta(days=1), t + timedelta(days=91))),
    # LAST_N_DAYS:n covers today and the n days before it.
    "LAST_N_DAYS": (True, lambda t, n: (t - timedelta(days=n), t + timedelta(days=1))),
    # NEXT_N_DAYS:n starts tomorrow and covers the n days from then.
    "NEXT_N_DAYS": (True, lambda t, n: (t + timedelta(days=1), t + timedelta(days=n + 1))),
    "N_DAYS_AGO": (True, lambda t, n: (t - timedelta(days=n), t - timedelta(days=n - 1))),
    "N_DAYS_FROM_NOW": (True, lambda t, n: (t + timedelta(days=n), t + timedelta(days=n + 1))),
}

# Keywords we know Salesforce accepts but this emulator does not implement.
_UNSUPPORTED = {"GROUP", "HAVING", "WITH", "FOR", "USING", "TYPEOF", "INCLUDES", "EXCLUDES", "FORMAT",
                "UPDATE", "ROLLUP", "CUBE"}


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


class Parser:
    def __init__(self, text: str, today: date | None = None) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.today = today or datetime.now(timezone.utc).date()

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def error(self, message: str | None = None, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        if message is None:
            if tok.kind == "eof":
                message = "unexpected token: <EOF>"
            elif tok.kind == "ident" and tok.text.upper() in _UNSUPPORTED:
                message = (f"unexpected token: '{tok.text}' ({tok.text.upper()} is not supported by the "
                           "Salesforce emulator)")
            else:
                message = f"unexpected token: '{tok.text}'"
        return query_error(self.text, tok.pos, message)

    def expect_kw(self, word: str) -> Token:
        if not self.tok.is_kw(word):
            raise self.error()
        return self.advance()

    def expect_punct(self, ch: str) -> Token:
        if not (self.tok.kind == "punct" and self.tok.text == ch):
            raise self.error()
        return self.advance()

    def at_punct(self, ch: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == ch

    def parse(self) -> Query:
        query = self.parse_query(subquery=False)
        if self.tok.kind != "eof":
            raise self.error()
        return query

    def parse_query(self, *, subquery: bool) -> Query:
        self.expect_kw("SELECT")
        fields: list = []
        count = False
        if self.tok.is_kw("COUNT") and self.tokens[self.i + 1].text == "(":
            count_tok = self.advance()
            self.advance()
            if not self.at_punct(")"):
                raise self.error("Aggregate queries (COUNT(field)) are not supported by the Salesforce "
                                 "emulator; use COUNT()", count_tok)
            self.advance()
            count = True
        else:
            while True:
                if self.at_punct("("):
                    if subquery:
                        raise self.error()
                    pos = self.advance().pos
                    sub = self.parse_query(subquery=True)
                    sub.sobject_pos = sub.sobject_pos or pos
                    self.expect_punct(")")
                    fields.append(sub)
                elif self.tok.kind == "ident" and not self.tok.is_kw("FROM"):
                    t = self.advance()
                    if self.at_punct("("):
                        raise self.error(f"unexpected token: '{t.text}(' (SOQL functions are not supported "
                                         "by the Salesforce emulator)", t)
                    fields.append(FieldRef(t.text.split("."), t.pos))
                else:
                    raise self.error()
                if self.at_punct(","):
                    self.advance()
                    continue
                break
        self.expect_kw("FROM")
        if self.tok.kind != "ident":
            raise self.error()
        obj_tok = self.advance()
        query = Query(self.text, obj_tok.text, obj_tok.pos, fields, count)
        if self.tok.kind == "ident" and not self.tok.is_kw("WHERE", "ORDER", "LIMIT", "OFFSET") \
                and self.tok.text.upper() not in _UNSUPPORTED:
            raise self.error("unexpected token: '" + self.tok.text + "' (object aliases are not supported by "
                             "the Salesforce emulator)")
        if self.tok.is_kw("WHERE"):
            self.advance()
            query.where = self.parse_condition()
        if self.tok.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            while True:
                if self.tok.kind != "ident":
                    raise self.error()
                t = self.advance()
                if self.at_punct("("):
                    raise self.error(f"unexpected token: '{t.text}(' (SOQL functions are not supported by the "
                                     "Salesforce emulator)", t)
                asc = True
                if self.tok.is_kw("ASC", "DESC"):
                    asc = self.advance().text.upper() == "ASC"
                nulls_first = asc  # Salesforce: ASC puts nulls first, DESC last
                if self.tok.is_kw("NULLS"):
                    self.advance()
                    if not self.tok.is_kw("FIRST", "LAST"):
                        raise self.error()
                    nulls_first = self.advance().text.upper() == "FIRST"
                query.order.append(OrderItem(FieldRef(t.text.split("."), t.pos), asc, nulls_first))
                if self.at_punct(","):
                    self.advance()
                    continue
                break
        if self.tok.is_kw("LIMIT"):
            self.advance()
            query.limit = self.parse_int()
        if self.tok.is_kw("OFFSET"):
            self.advance()
            query.offset = self.parse_int()
        if subquery and not self.at_punct(")"):
            raise self.error()
        return query

    def parse_int(self) -> int:
        if self.tok.kind != "number" or not re.fullmatch(r"\d+", self.tok.text):
            raise self.error()
        return int(self.advance().text)

    # condition := unit ((AND unit)* | (OR unit)*) -- SOQL refuses AND/OR mixed without parentheses
    def parse_condition(self) -> object:
        first = self.parse_unit()
        if not self.tok.is_kw("AND", "OR"):
            return first
        op = self.tok.text.upper()
        items = [first]
        while self.tok.is_kw("AND", "OR"):
            if self.tok.text.upper() != op:
                raise self.error()
            self.advance()
            items.append(self.parse_unit())
        return BoolOp(op, items)

    def parse_unit(self) -> object:
        if self.tok.is_kw("NOT"):
            self.advance()
            return Not(self.parse_unit())
        if self.at_punct("("):
            self.advance()
            inner = self.parse_condition()
            self.expect_punct(")")
            return inner
        return self.parse_comparison()

    def parse_comparison(self) -> Compare:
        if self.tok.kind != "ident":
            raise self.error()
        ftok = self.advance()
        if self.at_punct("("):
            raise self.error(f"unexpected token: '{ftok.text}(' (SOQL functions are not supported by the "
                             "Salesforce emulator)", ftok)
        ref = FieldRef(ftok.text.split("."), ftok.pos)
        op_tok = self.tok
        if op_tok.kind == "op":
            self.advance()
            op = "!=" if op_tok.text == "<>" else op_tok.text
            return Compare(ref, op, self.parse_value(), op_tok.pos)
        if op_tok.is_kw("LIKE"):
            self.advance()
            return Compare(ref, "LIKE", self.parse_value(), op_tok.pos)
        negate = False
        if op_tok.is_kw("NOT"):
            self.advance()
            negate = True
            if not self.tok.is_kw("IN"):
                raise self.error()
        if self.tok.is_kw("IN"):
            self.advance()
            self.expect_punct("(")
            if self.tok.is_kw("SELECT"):
                raise self.error("unexpected token: 'SELECT' (semi-join subqueries are not supported by the "
                                 "Salesforce emulator)")
            values = [self.parse_value()]
            while self.at_punct(","):
                self.advance()
                values.append(self.parse_value())
            self.expect_punct(")")
            return Compare(ref, "NOTIN" if negate else "IN", values, op_tok.pos)
        raise self.error()

    def parse_value(self) -> Literal:
        t = self.tok
        if t.kind == "string":
            self.advance()
            return Literal("string", t.value, t.pos, t.like)
        if t.kind == "number":
            self.advance()
            return Literal("number", float(t.text) if "." in t.text else int(t.text), t.pos)
        if t.kind == "date":
            self.advance()
            try:
                return Literal("date", date.fromisoformat(t.text), t.pos)
            except ValueError:
                raise self.error(f"line 1:{t.pos} no viable alternative at character '{t.text}'", t) from None
        if t.kind == "datetime":
            self.advance()
            try:
                return Literal("datetime", format_datetime(parse_datetime(t.text)), t.pos)
            except ValueError:
                raise self.error(f"unexpected token: '{t.text}'", t) from None
        if t.kind == "ident":
            word = t.text.upper()
            if word in ("TRUE", "FALSE"):
                self.advance()
                return Literal("boolean", word == "TRUE", t.pos)
            if word == "NULL":
                self.advance()
                return Literal("null", None, t.pos)
            if word in DATE_LITERALS:
                self.advance()
                takes_n, fn = DATE_LITERALS[word]
                n = 0
                if takes_n:
                    if not self.at_punct(":"):
                        raise self.error(f"unexpected token: '{t.text}' ({word} needs :n)", t)
                    self.advance()
                    if self.tok.kind != "number" or not self.tok.text.isdigit():
                        raise self.error()
                    n = int(self.advance().text)
                elif self.at_punct(":"):
                    raise self.error()
                return Literal("range", fn(self.today, n), t.pos)
            raise self.error(f"unexpected token: '{t.text}'" + (
                " (this date literal is not supported)" if re.fullmatch(r"[A-Z_]+", word) and "_" in word else ""), t)
        raise self.error()


def parse(text: str, today: date | None = None) -> Query:
    return Parser(text, today).parse()


# --------------------------------------------------------------------------------------------
# Compiler
# --------------------------------------------------------------------------------------------


@dataclass
class Column:
    """One output value: where it goes in the record and how to read it."""

    path: list[str]  # relationship names then field name (canonical case)
    field: Field
    sql_index: int


@dataclass
class ParentInfo:
    """A parent relationship in the output: nested dict keyed by its name."""

    path: list[str]  # relationship names (canonical)
    fk_index: int  # SQL column with the FK value (decides null and the nested type)


@dataclass
class ChildQuery:
    name: str  # output key, e.g. "Tasks"
    compiled: "Compiled"
    fk_field: str


@dataclass
class Compiled:
    sobject: SObject
    select_sql: str
    count_sql: str
    params: list
    columns: list[Column]
    parents: list[ParentInfo]
    output: list  # ordered keys: ("field", Column) | ("parent", ParentInfo) | ("child", ChildQuery)
    count_only: bool
    limit: int | None
    offset: int
    version: str
    children: list[ChildQuery] = field(default_factory=list)
    # Paging by rowid instead of OFFSET when the order is the natural one: the same rows at
    # any depth in constant time. Parameters: params + [last rid seen], then LIMIT.
    keyset_sql: str | None = None
    # Counting: a plain "all live (or all) records of the object" count is read from the
    # counters store.py's triggers keep instead of scanning the table.
    plain_count: str | None = None  # "live" | "all_rows" (a _counts column)


class Compiler:
    def __init__(self, query: Query, *, include_deleted: bool, version: str, root: SObject | None = None,
                 extra_where: tuple[str, list] | None = None) -> None:
        self.q = query
        self.text = query.text
        self.version = version
        self.include_deleted = include_deleted
        obj = root or schema.sobject(query.sobject)
        if obj is None:
            raise query_error(self.text, query.sobject_pos,
                              f"sObject type '{query.sobject}' is not supported. If you are attempting to use a "
                              "custom object, be sure to append the '__c' after the entity name. Please reference "
                              "your WSDL or the describe call for the appropriate names.", "INVALID_TYPE")
        self.obj = obj
        self.joins: dict[tuple[str, ...], list[tuple[str, SObject]]] = {(): [("t0", obj)]}
        self.join_sql: list[str] = []
        self.select_exprs: list[str] = []
        self.params: list = []
        self.extra_where = extra_where

    def no_such_column(self, ref: FieldRef, name: str, entity: str) -> SoqlError:
        return query_error(self.text, ref.pos,
                           f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
                           "field, be sure to append the '__c' after the custom field name. Please reference your "
                           "WSDL or the describe call for the appropriate names.", "INVALID_FIELD")

    def resolve(self, ref: FieldRef) -> tuple[list[str], list[tuple[str, SObject]], list[Field], str]:
        """Path -> (canonical relationship names, aliases at the leaf, leaf fields per alias, field name)."""
        path = list(ref.path)
        if len(path) > 1 and path[0].lower() == self.obj.name.lower() \
                and path[0].lower() not in self.obj.by_relationship:
            path = path[1:]  # "Contact.Name" on Contact
        rels, leaf = path[:-1], path[-1]
        current = self.joins[()]
        canon: list[str] = []
        for depth, rel in enumerate(rels):
            holders = [(alias, o, o.by_relationship.get(rel.lower())) for alias, o in current]
            holders = [h for h in holders if h[2] is not None]
            if not holders:
                raise query_error(self.text, ref.pos,
                                  f"Didn't understand relationship '{rel}' in field path. If you are attempting "
                                  "to use a custom relationship, be sure to append the '__r' after the custom "
                                  "relationship name. Please reference your WSDL or the describe call for the "
                                  "appropriate names.", "INVALID_FIELD")
            rel_field = holders[0][2]
            canon.append(rel_field.relationship_name)
            key = tuple(canon)
            if key not in self.joins:
                fk_expr = self.coalesce([f"{alias}.{q(rel_field.name)}" for alias, _, _ in holders])
                aliases = []
                for target_name in rel_field.reference_to:
                    target = schema.SOBJECTS[target_name]
                    alias = f"t{sum(len(v) for v in self.joins.values())}"
                    self.join_sql.append(f"LEFT JOIN {q(target.name)} {alias} ON {alias}.Id = {fk_expr}")
                    aliases.append((alias, target))
                    self.joins[key] = aliases
            current = self.joins[key]
        hits = [(alias, o, o.field(leaf)) for alias, o in current]
        hits = [h for h in hits if h[2] is not None]
        if not hits:
            raise self.no_such_column(ref, leaf, current[0][1].name)
        return canon, [(a, o) for a, o, _ in hits], [f for _, _, f in hits], hits[0][2].name

    @staticmethod
    def coalesce(exprs: list[str]) -> str:
        return exprs[0] if len(exprs) == 1 else f"COALESCE({', '.join(exprs)})"

    def field_expr(self, ref: FieldRef) -> tuple[str, Field]:
        canon, aliases, fields, name = self.resolve(ref)
        expr = self.coalesce([f"{alias}.{q(name)}" for alias, _ in aliases])
        return expr, fields[0]

    def fk_index(self, rels: list[str]) -> int:
        """SQL column holding the FK of the relationship path (adds it once)."""
        parent_key = tuple(rels[:-1])
        holders = [(alias, o, o.by_relationship[rels[-1].lower()]) for alias, o in self.joins[parent_key]
                   if rels[-1].lower() in o.by_relationship]
        expr = self.coalesce([f"{alias}.{q(f.name)}" for alias, _, f in holders])
        return self.add_select(expr)

    def add_select(self, expr: str) -> int:
        if expr in self.select_exprs:
            return self.select_exprs.index(expr)
        self.select_exprs.append(expr)
        return len(self.select_exprs) - 1

    def compile(self) -> Compiled:
        qy = self.q
        output: list = []
        columns: list[Column] = []
        parents: dict[tuple[str, ...], ParentInfo] = {}
        children: list[ChildQuery] = []
        self.add_select("t0.Id")
        self.add_select("t0.rid")  # keyset paging reads it; records never show it
        seen: set[str] = set()
        for item in qy.fields:
            if isinstance(item, Query):
                child = self.compile_child(item)
                children.append(child)
                output.append(("child", child))
                continue
            canon, aliases, fields, name = self.resolve(item)
            key = ".".join(canon + [name]).lower()
            if key in seen:
                raise query_error(self.text, item.pos, f"duplicate field selected: {'.'.join(item.path)}")
            seen.add(key)
            expr = self.coalesce([f"{alias}.{q(name)}" for alias, _ in aliases])
            col = Column(canon + [name], fields[0], self.add_select(expr))
            columns.append(col)
            for depth in range(1, len(canon) + 1):
                pkey = tuple(canon[:depth])
                if pkey not in parents:
                    parents[pkey] = ParentInfo(list(pkey), self.fk_index(list(pkey)))
                    if depth == 1:
                        output.append(("parent", parents[pkey]))
            if not canon:
                output.append(("field", col))
        where_sql = []
        if not self.include_deleted:
            where_sql.append("t0.IsDeleted = 0")
            if self.obj.field("IsArchived") is not None:
                # query() leaves archived activities out; queryAll() returns them (SOAP API
                # "queryAll()", REST API "QueryAll").
                where_sql.append("t0.IsArchived = 0")
        if self.extra_where:
            where_sql.append(self.extra_where[0])
        where_params = list(self.extra_where[1]) if self.extra_where else []
        if qy.where is not None:
            sql, params = self.condition(qy.where)
            where_sql.append(sql)
            where_params += params
        order_sql = []
        for item in qy.order:
            expr, f = self.field_expr(item.field)
            if not f_sortable(f):
                raise query_error(self.text, item.field.pos,
                                  f"field '{f.name}' can not be sorted in a query call", "INVALID_FIELD")
            order_sql.append(f"{expr} {'ASC' if item.ascending else 'DESC'} "
                             f"NULLS {'FIRST' if item.nulls_first else 'LAST'}")
        if qy.count and qy.order:
            raise query_error(self.text, qy.order[0].field.pos, "ORDER BY is not allowed with COUNT()")
        order_sql.append("t0.rid")  # a stable order makes paging deterministic
        if qy.offset is not None and qy.offset > 2000:
            raise ApiError(400, "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is 2000")
        from_sql = f"FROM {q(self.obj.name)} t0 " + " ".join(self.join_sql)
        where = (" WHERE " + " AND ".join(f"({w})" for w in where_sql)) if where_sql else ""
        select_sql = f"SELECT {', '.join(self.select_exprs)} {from_sql}{where} ORDER BY {', '.join(order_sql)}"
        # Parent lookups never change the number of rows (LEFT JOIN on a unique Id), so the
        # count only joins what its WHERE needs.
        needed = set(re.findall(r"\b(t\d+)\.", " ".join(where_sql)))
        joins = []
        for join in reversed(self.join_sql):
            alias = join.split()[3]
            if alias in needed:
                joins.append(join)
                needed |= set(re.findall(r"\b(t\d+)\.", join.split(" ON ", 1)[1]))
        count_from = f"FROM {q(self.obj.name)} t0 " + " ".join(reversed(joins))
        count_sql = f"SELECT COUNT(*) {count_from}{where}"
        keyset_sql = None
        if not qy.order:
            where_k = where + (" AND " if where else " WHERE ") + "t0.rid > ?"
            keyset_sql = f"SELECT {', '.join(self.select_exprs)} {from_sql}{where_k} ORDER BY t0.rid"
        plain = None
        if qy.where is None and not self.extra_where and (self.include_deleted or not self.obj.field("IsArchived")):
            plain = "all_rows" if self.include_deleted else "live"
        return Compiled(self.obj, select_sql, count_sql, where_params, columns, list(parents.values()), output,
                        qy.count, qy.limit, qy.offset or 0, self.version, children, keyset_sql, plain)

    def compile_child(self, sub: Query) -> ChildQuery:
        key = (self.obj.name, sub.sobject.lower())
        if key not in schema.CHILD_RELATIONSHIPS:
            raise query_error(self.text, sub.sobject_pos,
                              f"Didn't understand relationship '{sub.sobject}' in FROM part of query call. If you "
                              "are attempting to use a custom relationship, be sure to append the '__r' after the "
                              "custom relationship name. Please reference your WSDL or the describe call for the "
                              "appropriate names.", "INVALID_TYPE")
        child_name, fk = schema.CHILD_RELATIONSHIPS[key]
        child = Compiler(sub, include_deleted=self.include_deleted, version=self.version,
                         root=schema.SOBJECTS[child_name], extra_where=(f"t0.{q(fk)} IN (SELECT value FROM "
                                                                        "json_each(?))", [None]))
        compiled = child.compile()
        return ChildQuery(schema.child_relationship_name(self.obj.name, sub.sobject.lower()), compiled, fk)

    # -- WHERE --------------------------------------------------------------------------------

    def condition(self, node: object) -> tuple[str, list]:
        if isinstance(node, BoolOp):
            parts, params = [], []
            for item in node.items:
                sql, p = self.condition(item)
                parts.append(f"({sql})")
                params += p
            return f" {node.op} ".join(parts), params
        if isinstance(node, Not):
            sql, params = self.condition(node.item)
            return f"NOT COALESCE(({sql}), 0)", params
        assert isinstance(node, Compare)
        return self.comparison(node)

    def comparison(self, node: Compare) -> tuple[str, list]:
        expr, f = self.field_expr(node.field)
        if f.type == "textarea" and f.length > 255:
            raise query_error(self.text, node.field.pos,
                              f"field '{f.name}' can not be filtered in a query call", "INVALID_FIELD")
        op = node.op
        if f.type in schema.TEXT_TYPES and op in ("=", "!=", "LIKE", "IN", "NOTIN") and _non_ascii(node.value):
            # SOQL compares strings case-insensitively in every script (Müller = MÜLLER); SQLite's
            # NOCASE and LIKE fold ASCII only. An ASCII literal keeps NOCASE (and its index).
            return self.comparison_folded(node, expr, f)
        if f.type in schema.TEXT_TYPES:
            expr = f"{expr} COLLATE NOCASE"
        if op in ("IN", "NOTIN"):
            values = node.value
            assert isinstance(values, list)
            vals = [self.sql_value(f, v) for v in values if v.kind != "null"]
            return _in_list(op, expr, expr, vals, any(v.kind == "null" for v in values))
        value = node.value
        assert isinstance(value, Literal)
        if op == "LIKE":
            if f.type not in schema.TEXT_TYPES or value.kind != "string":
                raise query_error(self.text, node.pos, f"invalid operator on {f.type} field", "INVALID_QUERY_FILTER_OPERATOR")
            return f"{expr} LIKE ? ESCAPE '\\'", [value.like]
        if value.kind == "null":
            if op == "=":
                return f"{expr} IS NULL", []
            if op == "!=":
                return f"{expr} IS NOT NULL", []
            raise query_error(self.text, value.pos, "unexpected token: 'null'")
        if value.kind == "range":
            if f.type not in ("date", "datetime"):
                self.type_error(f, node.field)
            start, end = value.value  # type: ignore[misc]
            lo, hi = self.bound(f, start), self.bound(f, end)
            return {
                "=": (f"({expr} >= ? AND {expr} < ?)", [lo, hi]),
                "!=": (f"({expr} IS NULL OR {expr} < ? OR {expr} >= ?)", [lo, hi]),
                "<": (f"{expr} < ?", [lo]),
                "<=": (f"{expr} < ?", [hi]),
                ">": (f"{expr} >= ?", [hi]),
                ">=": (f"{expr} >= ?", [lo]),
            }[op]
        v = self.sql_value(f, value)
        if f.type == "boolean" and op not in ("=", "!="):
            raise query_error(self.text, node.pos, "invalid operator on boolean field", "INVALID_QUERY_FILTER_OPERATOR")
        if op == "!=":
            # SOQL's != matches records where the field is null.
            return f"({expr} IS NULL OR {expr} != ?)", [v]
        return f"{expr} {op} ?", [v]

    def comparison_folded(self, node: Compare, expr: str, f: Field) -> tuple[str, list]:
        """A text comparison with a non-ASCII literal: both sides lower-cased (sf_lower, Unicode)."""
        folded = f"sf_lower({expr})"
        op = node.op
        if op in ("IN", "NOTIN"):
            values = node.value
            assert isinstance(values, list)
            vals = [str(self.sql_value(f, v)).lower() for v in values if v.kind != "null"]
            return _in_list(op, folded, expr, vals, any(v.kind == "null" for v in values))
        value = node.value
        assert isinstance(value, Literal)
        if op == "LIKE":
            if value.kind != "string":
                raise query_error(self.text, node.pos, f"invalid operator on {f.type} field",
                                  "INVALID_QUERY_FILTER_OPERATOR")
            return f"{folded} LIKE ? ESCAPE '\\'", [(value.like or "").lower()]
        v = str(self.sql_value(f, value)).lower()
        if op == "!=":
            return f"({expr} IS NULL OR {folded} != ?)", [v]
        return f"{folded} = ?", [v]

    @staticmethod
    def bound(f: Field, d: date) -> str:
        if f.type == "date":
            return d.isoformat()
        return format_datetime(datetime(d.year, d.month, d.day, tzinfo=timezone.utc))

    def type_error(self, f: Field, ref: FieldRef) -> SoqlError:
        expected = {"double": "double", "int": "int", "date": "date", "datetime": "dateTime",
                    "boolean": "boolean"}.get(f.type, "string")
        quoted = "should be enclosed in quotes" if expected == "string" else "should not be enclosed in quotes"
        raise query_error(self.text, ref.pos,
                          f"value of filter criterion for field '{f.name}' must be of type {expected} and {quoted}",
                          "INVALID_FIELD")

    def sql_value(self, f: Field, v: Literal) -> object:
        t = f.type
        ref = FieldRef([f.name], v.pos)
        if t in schema.ID_TYPES:
            if v.kind != "string":
                self.type_error(f, ref)
            try:
                return ids.to18(str(v.value))
            except ValueError:
                raise query_error(self.text, v.pos, f"invalid ID field: {v.value}",
                                  "INVALID_QUERY_FILTER_OPERATOR") from None
        if t in schema.TEXT_TYPES:
            if v.kind != "string":
                self.type_error(f, ref)
            return v.value
        if t in ("double", "int"):
            if v.kind != "number":
                self.type_error(f, ref)
            return v.value
        if t == "boolean":
            if v.kind != "boolean":
                self.type_error(f, ref)
            return 1 if v.value else 0
        if t == "date":
            if v.kind != "date":
                self.type_error(f, ref)
            return v.value.isoformat()  # type: ignore[union-attr]
        if t == "datetime":
            if v.kind != "datetime":
                self.type_error(f, ref)
            return v.value
        self.type_error(f, ref)


def f_sortable(f: Field) -> bool:
    return not (f.type == "textarea" and f.length > 255)


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------


def compile_query(text: str, *, include_deleted: bool, version: str, today: date | None = None,
                  extra_where: tuple[str, list] | None = None) -> Compiled:
    query = parse(text, today)
    return Compiler(query, include_deleted=include_deleted, version=version, extra_where=extra_where).compile()


def total_size(conn, c: Compiled) -> int:
    row = None
    if c.plain_count:
        row = conn.execute(f"SELECT {c.plain_count} FROM _counts WHERE name = ?", (c.sobject.name,)).fetchone()
    n = row[0] if row else conn.execute(c.count_sql, c.params).fetchone()[0]
    n = max(0, n - c.offset)
    return min(n, c.limit) if c.limit is not None else n


# A record's child subquery result carries at most this many records; the rest are read
# through its nextRecordsUrl, as Salesforce pages large child results.
CHILD_BATCH = 200


def fetch(conn, c: Compiled, start: int, count: int, child_pager=None) -> list[dict]:
    """Records [start, start+count) of the query's result (after its own OFFSET).

    child_pager(compiled, total, returned) -> nextRecordsUrl opens a cursor on the rest of
    a long child subquery result; without it child results are not paged.
    """
    return fetch_page(conn, c, start, count, child_pager)[0]


def fetch_page(conn, c: Compiled, start: int, count: int, child_pager=None,
               after_rid: int | None = None) -> tuple[list[dict], int | None]:
    """fetch(), plus the rowid of the page's last row; with after_rid (the last rowid of the
    page before `start`) a natural-order query reads by rowid instead of skipping rows."""
    records, last_rid, _ = fetch_fitted(conn, c, start, count, child_pager, after_rid)
    return records, last_rid


def fetch_fitted(conn, c: Compiled, start: int, count: int, child_pager=None, after_rid: int | None = None,
                 budget: int | None = None) -> tuple[list[dict], int | None, bool]:
    """fetch_page() for an API page: with `budget`, the page ends where its records and their
    child rows would pass it (query_pages.fit). The flag says the page was cut so."""
    if c.count_only:
        return [], None, False
    limit = count
    if c.limit is not None:
        limit = max(0, min(count, c.limit - start))
    if limit == 0:
        return [], None, False
    if after_rid is not None and c.keyset_sql is not None:
        rows = conn.execute(f"{c.keyset_sql} LIMIT ?", c.params + [after_rid, limit]).fetchall()
    else:
        rows = conn.execute(f"{c.select_sql} LIMIT ? OFFSET ?", c.params + [limit, c.offset + start]).fetchall()
    records = [build_record(c, row) for row in rows]
    for child in c.children:
        attach_children(conn, child, records, [row[0] for row in rows], child_pager)
    cut = False
    if budget is not None:
        kept = query_pages.fit(records, budget)
        cut = kept < len(records)
        rows, records = rows[:kept], records[:kept]
    return records, (rows[-1][1] if rows else None), cut


def _converter(f: Field):
    """to_json for one field type, or None where the stored value is already the JSON value."""
    if f.type == "boolean":
        return bool
    if f.type == "double":
        return float
    if f.type == "int":
        return int
    return None


_PLANS: dict[int, tuple] = {}


def _plan(c: Compiled) -> tuple | None:
    """What build_record does for each row, worked out once per compiled query: the hot path
    of a 2,000-row page. None when parents nest deeper than one level (the general path)."""
    key = id(c)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is c:
        return hit[1]
    plan = None
    if all(len(p.path) == 1 for p in c.parents):
        prefix = f"/services/data/v{c.version}/sobjects/"
        steps = []
        for kind, item in c.output:
            if kind == "field":
                steps.append((0, item.path[-1], item.sql_index, _converter(item.field), None))
            elif kind == "parent":
                cols = tuple((col.path[-1], col.sql_index, _converter(col.field)) for col in c.columns
                             if len(col.path) == 2 and col.path[0] == item.path[0])
                steps.append((1, item.path[0], item.fk_index, None, cols))
            else:
                steps.append((2, item.name, 0, None, None))
        plan = (prefix, f"{prefix}{c.sobject.name}/", c.sobject.name, tuple(steps))
    if len(_PLANS) > 256:
        _PLANS.clear()
    _PLANS[key] = (c, plan)
    return plan


def build_record(c: Compiled, row: tuple) -> dict:
    plan = _plan(c)
    if plan is not None:
        prefix, own_url, own_type, steps = plan
        out: dict = {"attributes": {"type": own_type, "url": own_url + row[0]}}
        for kind, name, idx, conv, cols in steps:
            if kind == 0:
                value = row[idx]
                out[name] = value if conv is None or value is None else conv(value)
            elif kind == 1:
                fk = row[idx]
                if fk is None:
                    out[name] = None
                    continue
                target = schema.sobject_for_id(fk)
                tname = target.name if target else "Name"
                nested = {"attributes": {"type": tname, "url": f"{prefix}{tname}/{fk}"}}
                for cname, cidx, cconv in cols:
                    value = row[cidx]
                    nested[cname] = value if cconv is None or value is None else cconv(value)
                out[name] = nested
            else:
                out[name] = None  # filled by attach_children
        return out
    rec: dict = {"attributes": {"type": c.sobject.name,
                                "url": f"/services/data/v{c.version}/sobjects/{c.sobject.name}/{row[0]}"}}
    nested: dict[tuple[str, ...], dict | None] = {}
    for parent in c.parents:
        fk = row[parent.fk_index]
        up = tuple(parent.path[:-1])
        if up and nested.get(up) is None:
            nested[tuple(parent.path)] = None
            continue
        if fk is None:
            nested[tuple(parent.path)] = None
            continue
        target = schema.sobject_for_id(fk)
        nested[tuple(parent.path)] = {"attributes": {
            "type": target.name if target else "Name",
            "url": f"/services/data/v{c.version}/sobjects/{target.name if target else 'Name'}/{fk}"}}
    for col in c.columns:
        if len(col.path) > 1:
            holder = nested.get(tuple(col.path[:-1]))
            if holder is not None:
                holder[col.path[-1]] = to_json(col.field, row[col.sql_index])
    # Link nested parents into their parents (deepest last so each level exists).
    for path in sorted(nested, key=len):
        if len(path) > 1:
            up = nested.get(path[:-1])
            if up is not None:
                up[path[-1]] = nested[path]
    for kind, item in c.output:
        if kind == "field":
            rec[item.path[-1]] = to_json(item.field, row[item.sql_index])
        elif kind == "parent":
            rec[item.path[0]] = nested.get(tuple(item.path))
        else:
            rec[item.name] = None  # filled by attach_children
    return rec


def attach_children(conn, child: ChildQuery, parents: list[dict], parent_ids: list[str], child_pager=None) -> None:
    c = child.compiled
    params = [json.dumps(parent_ids)] + c.params[1:]
    sql = c.select_sql.replace("SELECT ", f"SELECT t0.{q(child.fk_field)}, ", 1)
    rows = conn.execute(sql, params).fetchall()
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row[1:])
    for rec, pid in zip(parents, parent_ids):
        kids = grouped.get(pid, [])[c.offset:]
        if c.limit is not None:
            kids = kids[: c.limit]
        if not kids:
            rec[child.name] = None
            continue
        result: dict = {"totalSize": len(kids), "done": True}
        if child_pager is not None and len(kids) > CHILD_BATCH:
            # The rest of this parent's children: the child query narrowed to this parent.
            one = replace(c, params=[json.dumps([pid])] + c.params[1:])
            result["done"] = False
            result["nextRecordsUrl"] = child_pager(one, len(kids), CHILD_BATCH)
            kids = kids[:CHILD_BATCH]
        result["records"] = [build_record(c, r) for r in kids]
        rec[child.name] = result


def _in_list(op: str, compared: str, expr: str, vals: list, has_null: bool) -> tuple[str, list]:
    """IN / NOT IN of `compared` (the field, or its folded form) against vals, null as SOQL has it."""
    marks = ", ".join("?" for _ in vals)
    if op == "IN":
        parts = [f"{compared} IN ({marks})"] if vals else []
        if has_null:
            parts.append(f"{expr} IS NULL")
        return " OR ".join(parts) or "0", vals
    # NOT IN keeps records whose field is null, as SOQL does.
    base = f"({expr} IS NULL OR {compared} NOT IN ({marks}))" if vals else "1"
    return (f"{base} AND {expr} IS NOT NULL" if has_null else base), vals


def _non_ascii(value: object) -> bool:
    """A string literal (or one in an IN list) holding a cased letter beyond ASCII (digits and
    punctuation in other scripts have no case: SQLite compares them right as they are)."""
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, Literal) and v.kind == "string" and isinstance(v.value, str)
               and any(not ch.isascii() and ch.lower() != ch.upper() for ch in v.value) for v in values)
