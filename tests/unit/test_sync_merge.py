"""The contact-pair merge table: every combination of states on each side, under each policy."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.domain.sync.merge import Action, FieldRule, Pair, Side, State, merge, side_state

RULES = [FieldRule("lastName"), FieldRule("phone")]
BASE = {"lastName": "Silva", "phone": "+15125550100"}
T0 = datetime(2026, 3, 14, tzinfo=timezone.utc)


def record(state: State, edit: dict | None = None):
    if state in (State.ABSENT, State.DELETED):
        return None
    return {**BASE, **(edit or {})} if state is State.CHANGED else dict(BASE)


def pair(s: State, g: State, s_edit=None, g_edit=None, base=BASE, **kw) -> Pair:
    s_edit = s_edit if s_edit is not None else {"lastName": "Souza"}
    g_edit = g_edit if g_edit is not None else {"phone": "+15125550199"}
    has_base = base is not None and not (s is State.ABSENT or g is State.ABSENT)
    return Pair(base=base if has_base else None, salesforce=record(s, s_edit), genesys=record(g, g_edit),
                salesforce_deleted=s is State.DELETED, genesys_deleted=g is State.DELETED, **kw)


EXPECTED = {
    (State.ABSENT, State.ABSENT): Action.NOOP,
    (State.ABSENT, State.UNCHANGED): Action.CREATE_IN_SALESFORCE,
    (State.ABSENT, State.CHANGED): Action.CREATE_IN_SALESFORCE,
    (State.ABSENT, State.DELETED): Action.FORGET,
    (State.UNCHANGED, State.ABSENT): Action.CREATE_IN_GENESYS,
    (State.UNCHANGED, State.UNCHANGED): Action.NOOP,
    (State.UNCHANGED, State.CHANGED): Action.UPDATE,
    (State.UNCHANGED, State.DELETED): Action.DELETE_IN_SALESFORCE,
    (State.CHANGED, State.ABSENT): Action.CREATE_IN_GENESYS,
    (State.CHANGED, State.UNCHANGED): Action.UPDATE,
    (State.CHANGED, State.CHANGED): Action.UPDATE,
    (State.CHANGED, State.DELETED): Action.DELETE_CONFLICT,
    (State.DELETED, State.ABSENT): Action.FORGET,
    (State.DELETED, State.UNCHANGED): Action.DELETE_IN_GENESYS,
    (State.DELETED, State.CHANGED): Action.DELETE_CONFLICT,
    (State.DELETED, State.DELETED): Action.FORGET,
}


@pytest.mark.parametrize("s, g", list(itertools.product(State, State)))
@pytest.mark.parametrize("policy", ["salesforce", "genesys", "last_write", "manual"])
def test_every_combination_of_states(s, g, policy):
    rules = [FieldRule(r.name, "both", policy) for r in RULES]
    p = pair(s, g)
    if s is State.ABSENT and g is not State.ABSENT or g is State.ABSENT and s is not State.ABSENT:
        p = Pair(base=None, salesforce=p.salesforce, genesys=p.genesys,
                 salesforce_deleted=p.salesforce_deleted, genesys_deleted=p.genesys_deleted)
    plan = merge(p, rules)
    assert plan.action is EXPECTED[(s, g)]
    if (s, g) == (State.CHANGED, State.CHANGED):
        # Different fields edited on each side: both edits survive, whatever the policy.
        assert plan.write_genesys == {"lastName": "Souza"} and plan.write_salesforce == {"phone": "+15125550199"}
        assert plan.new_base == {"lastName": "Souza", "phone": "+15125550199"} and not plan.conflicts


@pytest.mark.parametrize(
    "policy, s_modified, g_modified, winner",
    [
        ("salesforce", T0, T0 + timedelta(1), Side.SALESFORCE),
        ("genesys", T0 + timedelta(1), T0, Side.GENESYS),
        ("last_write", T0, T0 + timedelta(1), Side.GENESYS),
        ("last_write", T0 + timedelta(1), T0, Side.SALESFORCE),
        ("last_write", T0, T0, Side.SALESFORCE),  # a tie never flip-flops: the master wins
        ("manual", T0, T0, None),
    ],
)
def test_same_field_edited_on_both_sides_follows_the_policy(policy, s_modified, g_modified, winner):
    rules = [FieldRule("lastName", "both", policy), FieldRule("phone", "both", policy)]
    p = pair(State.CHANGED, State.CHANGED, {"lastName": "Souza"}, {"lastName": "Santos"},
             salesforce_modified=s_modified, genesys_modified=g_modified)
    plan = merge(p, rules)
    if winner is None:
        assert plan.action is Action.UPDATE and [c.field for c in plan.conflicts] == ["lastName"]
        assert plan.new_base["lastName"] == "Silva" and not plan.write_genesys and not plan.write_salesforce
    else:
        value = "Souza" if winner is Side.SALESFORCE else "Santos"
        writes = plan.write_genesys if winner is Side.SALESFORCE else plan.write_salesforce
        assert writes == {"lastName": value} and plan.new_base["lastName"] == value
        assert plan.changes[0].reason.startswith("conflict")


def test_both_changed_to_the_same_value_is_no_conflict():
    p = pair(State.CHANGED, State.CHANGED, {"lastName": "Souza"}, {"lastName": "Souza"})
    plan = merge(p, [FieldRule("lastName", "both", "manual"), FieldRule("phone", "both", "manual")])
    assert plan.action is Action.NOOP and not plan.conflicts and plan.new_base["lastName"] == "Souza"


def test_a_field_owned_by_one_side_follows_its_owner():
    rules = [FieldRule("lastName", "sf_to_gc"), FieldRule("phone", "gc_to_sf")]
    p = pair(State.CHANGED, State.CHANGED, {"phone": "+15125550111"}, {"lastName": "Santos"})
    plan = merge(p, rules)
    assert plan.write_genesys == {"lastName": "Silva"} and plan.write_salesforce == {"phone": "+15125550100"}


def test_one_way_overwrites_genesys_edits_and_recreates_its_deletes():
    plan = merge(pair(State.UNCHANGED, State.CHANGED), RULES, mode="one_way")
    assert plan.write_genesys == {"phone": "+15125550100"} and not plan.write_salesforce
    assert merge(pair(State.UNCHANGED, State.DELETED), RULES, mode="one_way").action is Action.CREATE_IN_GENESYS
    assert merge(pair(State.DELETED, State.CHANGED), RULES, mode="one_way").action is Action.DELETE_IN_GENESYS
    genesys_only = Pair(base=None, salesforce=None, genesys=dict(BASE))
    assert merge(genesys_only, RULES, mode="one_way").action is Action.NOOP


def test_unlink_instead_of_propagating_deletes():
    assert merge(pair(State.DELETED, State.UNCHANGED), RULES, delete_handling="unlink").action is Action.UNLINK


def test_an_erased_person_is_never_recreated():
    p = Pair(base=None, salesforce=None, genesys=dict(BASE), erased=True)
    assert merge(p, RULES).action is Action.SKIP_ERASED
    assert side_state(None, False, None, RULES) is State.ABSENT


# --- property: random edits on both sides, then merge → apply → merge is quiet ----------

values = st.sampled_from(["a", "b", "c", None])
edits = st.fixed_dictionaries({"lastName": values, "phone": values})


@settings(max_examples=300, deadline=None)
@given(base=edits, s=edits, g=edits, policy=st.sampled_from(["salesforce", "genesys", "last_write"]),
       direction=st.sampled_from(["both", "sf_to_gc", "gc_to_sf"]))
def test_after_one_merge_both_sides_agree_and_a_second_merge_is_quiet(base, s, g, policy, direction):
    rules = [FieldRule("lastName", direction, policy), FieldRule("phone", "both", policy)]
    plan = merge(Pair(base=base, salesforce=s, genesys=g, salesforce_modified=T0, genesys_modified=T0), rules)
    s2, g2 = {**s, **plan.write_salesforce}, {**g, **plan.write_genesys}
    assert s2 == g2 == plan.new_base
    # No edit lost except as the declared policy says: a value changed on only one side survives.
    for r in rules:
        if r.direction == "both" and (s[r.name] != base[r.name]) != (g[r.name] != base[r.name]):
            changed = s if s[r.name] != base[r.name] else g
            assert s2[r.name] == changed[r.name]
    again = merge(Pair(base=plan.new_base, salesforce=s2, genesys=g2), rules)
    assert again.action is Action.NOOP and not again.write_genesys and not again.write_salesforce


def test_without_consent_nothing_goes_to_genesys_but_genesys_edits_still_arrive():
    from callbridge.domain.sync.merge import withhold_from_genesys

    rules = [FieldRule("FirstName"), FieldRule("Title", "sf_to_gc")]
    base = {"FirstName": "Ana", "Title": "Analyst"}
    both_edited = merge(Pair(base=base, salesforce={"FirstName": "Ana", "Title": "Manager"},
                             genesys={"FirstName": "Anabela", "Title": "Analyst"}), rules)
    held = withhold_from_genesys(both_edited, base)
    assert held.action is Action.UPDATE
    assert held.write_salesforce == {"FirstName": "Anabela"} and held.write_genesys == {}
    # The held value stays pending: the base keeps the old one, so it flows once consent returns.
    assert held.new_base == {"FirstName": "Anabela", "Title": "Analyst"}
    assert [c.field for c in held.changes] == ["FirstName"]

    only_salesforce = merge(Pair(base=base, salesforce={"FirstName": "Ana", "Title": "Manager"},
                                 genesys=dict(base)), rules)
    assert withhold_from_genesys(only_salesforce, base).action is Action.NOOP
    new_contact = merge(Pair(base=None, salesforce={"FirstName": "Ana", "Title": "x"}, genesys=None), rules)
    assert new_contact.action is Action.CREATE_IN_GENESYS
    assert withhold_from_genesys(new_contact, None).action is Action.NOOP  # never created in Genesys
    gone = merge(Pair(base=base, salesforce=None, genesys=dict(base), salesforce_deleted=True), rules)
    assert withhold_from_genesys(gone, base).action is Action.DELETE_IN_GENESYS  # a delete still goes
