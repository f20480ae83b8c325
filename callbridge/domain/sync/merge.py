"""The merge of one contact pair: a small, pure decision table (after vdirsyncer's sync/).

Both records come in canonical form: the same field names on both sides, values already
converted by the mapping (E.164 phones, trimmed strings). `base` is the last state both sides
agreed on (stored after every write), so a write never echoes back as a change, and "both
changed to the same value" is no conflict (Unison's rule). Deletes never resurrect silently: a
delete on one side with an edit on the other is a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal, Mapping

Direction = Literal["sf_to_gc", "gc_to_sf", "both"]
Policy = Literal["salesforce", "genesys", "last_write", "manual"]
Record = Mapping[str, Any]


class Side(str, Enum):
    SALESFORCE = "salesforce"
    GENESYS = "genesys"


class State(str, Enum):
    """What happened to one side's record since the base."""

    ABSENT = "absent"        # no record on this side (never created, or never linked)
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    DELETED = "deleted"


class Action(str, Enum):
    NOOP = "noop"
    UPDATE = "update"                    # field writes on one or both sides
    CREATE_IN_GENESYS = "create_in_genesys"
    CREATE_IN_SALESFORCE = "create_in_salesforce"
    DELETE_IN_GENESYS = "delete_in_genesys"
    DELETE_IN_SALESFORCE = "delete_in_salesforce"
    UNLINK = "unlink"                    # delete handling "unlink": forget the pair, keep the record
    FORGET = "forget"                    # deleted on both sides: drop the base
    DELETE_CONFLICT = "delete_conflict"  # deleted on one side, edited on the other
    SKIP_ERASED = "skip_erased"          # the person was erased: never re-created


@dataclass(frozen=True)
class FieldRule:
    name: str
    direction: Direction = "both"
    policy: Policy = "salesforce"

    def flows(self, to: Side) -> bool:
        if self.direction == "both":
            return True
        return self.direction == ("sf_to_gc" if to is Side.GENESYS else "gc_to_sf")


@dataclass(frozen=True)
class FieldChange:
    """One line of the audit: which field moved where, and why."""

    field: str
    old: Any
    new: Any
    to: Side
    reason: str


@dataclass(frozen=True)
class FieldConflict:
    field: str
    base: Any
    salesforce: Any
    genesys: Any


@dataclass
class Plan:
    action: Action
    write_salesforce: dict[str, Any] = field(default_factory=dict)
    write_genesys: dict[str, Any] = field(default_factory=dict)
    new_base: dict[str, Any] | None = None
    conflicts: list[FieldConflict] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)


@dataclass(frozen=True)
class Pair:
    base: Record | None
    salesforce: Record | None
    genesys: Record | None
    salesforce_deleted: bool = False
    genesys_deleted: bool = False
    salesforce_modified: datetime | None = None
    genesys_modified: datetime | None = None
    erased: bool = False


def side_state(record: Record | None, deleted: bool, base: Record | None, rules: list[FieldRule]) -> State:
    if deleted:
        return State.DELETED
    if record is None:
        return State.ABSENT
    if base is None:
        return State.CHANGED  # new since the last agreement
    return State.CHANGED if any(record.get(r.name) != base.get(r.name) for r in rules) else State.UNCHANGED


def merge(pair: Pair, rules: list[FieldRule], *, mode: Literal["one_way", "bidirectional"] = "bidirectional",
          delete_handling: Literal["propagate", "unlink"] = "propagate") -> Plan:
    """What to write where so both sides agree again, by the table below.

    | Salesforce \\ Genesys | absent          | unchanged       | changed              | deleted         |
    |----------------------|-----------------|-----------------|----------------------|-----------------|
    | absent               | noop            | create in SF *  | create in SF *       | forget          |
    | unchanged            | create in GC    | noop            | fields → SF *        | delete in SF *  |
    | changed              | create in GC    | fields → GC     | field by field       | delete conflict |
    | deleted              | forget          | delete in GC    | delete conflict      | forget          |

    (* bidirectional only; one_way mode treats Genesys as a copy: its edits and deletes are
    overwritten or re-created from Salesforce.) An erased person is never created anywhere.
    """
    if mode == "one_way":
        rules = [FieldRule(r.name, "sf_to_gc", "salesforce") for r in rules]
    s = side_state(pair.salesforce, pair.salesforce_deleted, pair.base, rules)
    g = side_state(pair.genesys, pair.genesys_deleted, pair.base, rules)
    names = [r.name for r in rules]

    def snapshot(record: Record) -> dict[str, Any]:
        return {n: record.get(n) for n in names}

    if pair.erased:
        return Plan(Action.SKIP_ERASED)  # the erasure removes what is left; sync never touches it
    if s in (State.ABSENT, State.DELETED) and g in (State.ABSENT, State.DELETED):
        return Plan(Action.NOOP if s is g is State.ABSENT else Action.FORGET)

    gone = (State.ABSENT, State.DELETED)
    if s in gone or g in gone:
        return _one_side_missing(pair, rules, s, g, mode, delete_handling, snapshot)

    # Both sides have the record: field by field.
    plan = Plan(Action.UPDATE)
    base = pair.base or {}
    new_base = dict(base) if pair.base is not None else {}
    for rule in rules:
        n = rule.name
        b, sv, gv = base.get(n), pair.salesforce.get(n), pair.genesys.get(n)
        if sv == gv:
            new_base[n] = sv  # unchanged, or both changed to the same value: no conflict
            continue
        if rule.direction != "both":
            # One side owns the field: the other is a copy and follows it, whatever changed.
            winner = Side.SALESFORCE if rule.direction == "sf_to_gc" else Side.GENESYS
            reason = f"{winner.value} owns the field"
        else:
            s_changed = pair.base is None or sv != b
            g_changed = pair.base is None or gv != b
            if s_changed and not g_changed:
                winner, reason = Side.SALESFORCE, "changed in Salesforce"
            elif g_changed and not s_changed:
                winner, reason = Side.GENESYS, "changed in Genesys"
            else:
                winner, reason = _resolve(rule, pair)
                if winner is None:
                    plan.conflicts.append(FieldConflict(n, b, sv, gv))
                    continue  # the base keeps the old value: the field stays in conflict
        loser = Side.GENESYS if winner is Side.SALESFORCE else Side.SALESFORCE
        value, old = (sv, gv) if winner is Side.SALESFORCE else (gv, sv)
        (plan.write_genesys if loser is Side.GENESYS else plan.write_salesforce)[n] = value
        plan.changes.append(FieldChange(n, old, value, loser, reason))
        new_base[n] = value
    plan.new_base = new_base
    if not plan.write_genesys and not plan.write_salesforce and not plan.conflicts:
        plan.action = Action.NOOP
    return plan


def _one_side_missing(pair: Pair, rules: list[FieldRule], s: State, g: State, mode: str,
                      delete_handling: str, snapshot) -> Plan:
    missing = Side.GENESYS if g in (State.ABSENT, State.DELETED) else Side.SALESFORCE
    present_record = pair.salesforce if missing is Side.GENESYS else pair.genesys
    missing_state, present_state = (g, s) if missing is Side.GENESYS else (s, g)

    def create() -> Plan:
        values = {r.name: present_record.get(r.name) for r in rules if r.flows(missing)}
        if not values:
            return Plan(Action.NOOP)
        plan = Plan(Action.CREATE_IN_GENESYS if missing is Side.GENESYS else Action.CREATE_IN_SALESFORCE,
                    new_base=snapshot(present_record))
        if missing is Side.GENESYS:
            plan.write_genesys = values
        else:
            plan.write_salesforce = values
        plan.changes = [FieldChange(n, None, v, missing, "created") for n, v in values.items()]
        return plan

    if missing_state is State.ABSENT:
        if missing is Side.SALESFORCE and mode == "one_way":
            return Plan(Action.NOOP)  # a Genesys-only contact: not ours to copy back
        return create()
    # Deleted on one side.
    if mode == "one_way":
        if missing is Side.GENESYS:
            return create()  # Genesys is a copy: deleted there, re-created from Salesforce
    elif present_state is State.CHANGED:
        return Plan(Action.DELETE_CONFLICT)  # never a silent resurrection, nor a lost edit
    if delete_handling == "unlink":
        return Plan(Action.UNLINK)
    return Plan(Action.DELETE_IN_SALESFORCE if missing is Side.GENESYS else Action.DELETE_IN_GENESYS)


def _resolve(rule: FieldRule, pair: Pair) -> tuple[Side | None, str]:
    if rule.policy == "salesforce":
        return Side.SALESFORCE, "conflict: policy salesforce"
    if rule.policy == "genesys":
        return Side.GENESYS, "conflict: policy genesys"
    if rule.policy == "last_write":
        s, g = pair.salesforce_modified, pair.genesys_modified
        if s is not None and g is not None and g > s:
            return Side.GENESYS, "conflict: Genesys written last"
        # Ties and unknown times go to Salesforce: the master, and a stable answer, so a
        # value can't flip-flop between runs (Heroku Connect's documented defect).
        return Side.SALESFORCE, "conflict: Salesforce written last (or tie)"
    return None, "conflict: manual"


def withhold_from_genesys(plan: Plan, base: Record | None) -> Plan:
    """The plan for a contact without service consent: nothing of theirs goes to Genesys.

    Edits made in Genesys still reach Salesforce; Salesforce values bound for Genesys are held
    back, and the base keeps the old value for them, so they stay pending (and flow once
    consent is given). No Genesys contact is created for them; deletes still propagate.
    """
    if plan.action is Action.CREATE_IN_GENESYS:
        return Plan(Action.NOOP)
    if plan.action is not Action.UPDATE or not plan.write_genesys:
        return plan
    held = set(plan.write_genesys)
    new_base = dict(plan.new_base or {})
    for name in held:
        new_base[name] = (base or {}).get(name)
    out = Plan(Action.UPDATE, write_salesforce=dict(plan.write_salesforce), new_base=new_base,
               conflicts=list(plan.conflicts), changes=[c for c in plan.changes if c.field not in held])
    if not out.write_salesforce and not out.conflicts:
        out.action = Action.NOOP
    return out
