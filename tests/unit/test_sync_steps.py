"""A merged plan as steps (callbridge/domain/sync/steps.py): which writes, in which order, with which
precondition and audit reason. Pure: no emulator, no Temporal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.domain.sync.merge import Action, FieldRule, Pair, merge
from callbridge.domain.sync.models import PairSnapshot
from callbridge.domain.sync.steps import (
    BATCH_ORDER,
    LINK_FIELD,
    DeleteInGenesys,
    DeleteInSalesforce,
    SendToReview,
    StoreBase,
    UpdateGenesys,
    UpdateSalesforce,
    WriteLink,
    batch_of,
    plan_steps,
)

ROOT = Path(__file__).resolve().parents[2]
RULES = [FieldRule("LastName"), FieldRule("Title", "sf_to_gc"), FieldRule("MobilePhone", "both", "genesys")]
BASE = {"LastName": "Silva", "Title": "Analyst", "MobilePhone": "+15125550100"}
SF_MODIFIED, GC_MODIFIED = "2026-03-14T10:00:00.000+0000", "2026-03-14T10:00:05.000Z"


def snapshot(sf=BASE, gc=BASE, base=BASE, version=1, sf_id="003A", gc_id="gc-1", links=True, **kw) -> PairSnapshot:
    return PairSnapshot(salesforce_id=sf_id, genesys_id=gc_id, salesforce=sf, genesys=gc, base=base,
                        version=version if base is not None else 0,
                        salesforce_modified=SF_MODIFIED if sf is not None else None,
                        genesys_modified=GC_MODIFIED if gc is not None else None,
                        salesforce_link_ok=links and sf is not None and gc_id is not None,
                        genesys_link_ok=links and gc is not None and sf_id is not None, **kw)


def steps_for(snap: PairSnapshot, mode="bidirectional", delete_handling="propagate", rules=RULES):
    plan = merge(Pair(base=snap.base, salesforce=snap.salesforce, genesys=snap.genesys,
                      salesforce_deleted=snap.salesforce_deleted, genesys_deleted=snap.genesys_deleted),
                 rules, mode=mode, delete_handling=delete_handling)
    return plan, plan_steps(plan, snap)


def kinds(steps) -> list[str]:
    return [type(s).__name__ + (f"→{s.to.value}" if isinstance(s, WriteLink) else "") for s in steps]


def reasons(store: StoreBase) -> list[tuple]:
    return [(a.field, a.written_to, a.reason) for a in store.audit]


def test_created_in_genesys_the_base_before_the_salesforce_link():
    plan, steps = steps_for(snapshot(gc=None, base=None, gc_id=None, links=False), mode="one_way")
    assert plan.action is Action.CREATE_IN_GENESYS
    assert kinds(steps) == ["CreateInGenesys", "StoreBase", "WriteLink→salesforce"]
    create, store, link = steps
    assert dict(create.fields) == BASE and store.base == BASE
    assert reasons(store) == [(n, "genesys", "created") for n in BASE]
    assert store.salesforce_written == {} and not store.base_unchanged
    # The Salesforce record was read, not written since: the link's PATCH needs no precondition.
    assert link.unmodified_since is None and link.reason == "link written"


@pytest.mark.parametrize(("last_name", "written"), [(None, "Unknown"), ("Okafor", "Okafor")])
def test_created_in_salesforce_upserts_on_the_link_with_the_required_last_name(last_name, written):
    gc = {**BASE, "LastName": last_name}
    plan, steps = steps_for(snapshot(sf=None, gc=gc, base=None, sf_id=None, links=False))
    assert plan.action is Action.CREATE_IN_SALESFORCE
    assert kinds(steps) == ["CreateInSalesforce", "StoreBase", "WriteLink→genesys"]
    create, store, link = steps
    assert create.fields[LINK_FIELD] == "gc-1" and create.fields["LastName"] == written
    assert store.salesforce_written == create.fields
    # The Genesys link is a PUT of the whole contact as read: only if it is still as read.
    assert link.unmodified_since == GC_MODIFIED


def test_an_update_writes_each_side_only_if_as_read_then_stores_the_base_with_each_fields_reason():
    plan, steps = steps_for(snapshot(sf={**BASE, "Title": "Manager"}, gc={**BASE, "MobilePhone": "+15125550199"}))
    assert kinds(steps) == ["UpdateSalesforce", "UpdateGenesys", "StoreBase"]
    to_sf, to_gc, store = steps
    assert (dict(to_sf.fields), to_sf.unmodified_since) == ({"MobilePhone": "+15125550199"}, SF_MODIFIED)
    assert (dict(to_gc.fields), to_gc.unmodified_since) == ({"Title": "Manager"}, GC_MODIFIED)
    assert sorted(reasons(store)) == [("MobilePhone", "salesforce", "changed in Genesys"),
                                      ("Title", "genesys", "salesforce owns the field")]
    assert store.base == {**BASE, "Title": "Manager", "MobilePhone": "+15125550199"}


def test_a_missing_salesforce_link_rides_on_the_update_or_is_written_alone():
    _, steps = steps_for(snapshot(sf={**BASE, "LastName": "Souza"}, links=False))
    assert kinds(steps) == ["WriteLink→salesforce", "UpdateGenesys", "StoreBase"]
    assert steps[0].unmodified_since == SF_MODIFIED  # the same PATCH an update would be

    _, steps = steps_for(snapshot(gc={**BASE, "MobilePhone": "+15125550199"}, links=False))
    update = steps[0]
    assert isinstance(update, UpdateSalesforce) and update.fields == {"MobilePhone": "+15125550199", LINK_FIELD: "gc-1"}


def test_a_link_written_again_stores_the_unchanged_base_with_its_audit_line():
    snap = snapshot(links=False)
    plan, steps = steps_for(snap)
    assert plan.action is Action.NOOP
    assert kinds(steps) == ["WriteLink→salesforce", "WriteLink→genesys", "StoreBase"]
    store = steps[-1]
    assert store.base_unchanged and store.base == BASE
    assert reasons(store) == [(None, "salesforce", "link written"), (None, "genesys", "link written")]
    assert [a.action for a in store.audit] == ["noop", "noop"]


def test_one_way_a_genesys_edit_is_overwritten_and_audited_though_the_base_stays():
    plan, steps = steps_for(snapshot(gc={**BASE, "Title": "Intern"}), mode="one_way")
    assert kinds(steps) == ["UpdateGenesys", "StoreBase"]
    assert steps[1].base_unchanged and reasons(steps[1]) == [("Title", "genesys", "salesforce owns the field")]


def test_nothing_to_write_nothing_to_store_but_a_first_agreement_is_stored():
    assert steps_for(snapshot())[1] == ()
    _, steps = steps_for(snapshot(version=0))
    assert kinds(steps) == ["StoreBase"] and steps[0].audit == () and not steps[0].base_unchanged


def test_deletes_forgets_and_the_review_list():
    _, steps = steps_for(snapshot(sf=None, salesforce_deleted=True))
    assert kinds(steps) == ["DeleteInGenesys", "StoreBase"]
    assert steps[0].unmodified_since == GC_MODIFIED
    assert steps[1].base is None and steps[1].salesforce_deleted and steps[1].salesforce_written is None
    assert reasons(steps[1]) == [(None, "genesys", "deleted in Salesforce")]

    _, steps = steps_for(snapshot(gc=None, genesys_deleted=True))
    assert kinds(steps) == ["DeleteInSalesforce", "StoreBase"] and steps[0].unmodified_since == SF_MODIFIED
    assert steps[1].salesforce_deleted and reasons(steps[1]) == [(None, "salesforce", "deleted in Genesys")]

    _, steps = steps_for(snapshot(gc=None, genesys_deleted=True), delete_handling="unlink")
    assert kinds(steps) == ["StoreBase"] and steps[0].base is None and steps[0].salesforce_written == {}
    assert reasons(steps[0]) == [(None, None, "deleted on one side; delete handling is unlink")]

    _, steps = steps_for(snapshot(sf=None, gc=None, salesforce_deleted=True, genesys_deleted=True))
    assert kinds(steps) == ["StoreBase"] and reasons(steps[0]) == [(None, None, "deleted on both sides")]
    assert steps_for(snapshot(sf=None, gc=None, base=None, salesforce_deleted=True, genesys_deleted=True))[1] == ()

    _, steps = steps_for(snapshot(sf=None, gc={**BASE, "LastName": "Souza"}, salesforce_deleted=True))
    assert steps == (SendToReview("deleted in Salesforce, edited in Genesys"),)
    assert steps[0].reason == "delete_conflict"


def test_an_erased_person_gets_no_step():
    plan = merge(Pair(base=None, salesforce=BASE, genesys=None, erased=True), RULES)
    assert plan_steps(plan, snapshot(gc=None, base=None, gc_id=None, erased=True)) == ()


state = st.sampled_from(["absent", "unchanged", "changed", "deleted"])


@settings(max_examples=300, deadline=None)
@given(s=state, g=state, stored=st.booleans(), links=st.booleans(), mode=st.sampled_from(["one_way", "bidirectional"]),
       unlink=st.booleans())
def test_every_plans_steps_fit_one_bulk_pass_in_their_own_order(s, g, stored, links, mode, unlink):
    """The bulk path applies every pair's steps in one pass over BATCH_ORDER: each plan's steps
    must be a subsequence of it, one base stored at most, every write and line with a reason."""
    def side(st_):
        return None if st_ in ("absent", "deleted") else {**BASE, "LastName": "Souza"} if st_ == "changed" else BASE
    base = BASE if stored and "absent" not in (s, g) else None
    snap = snapshot(sf=side(s), gc=side(g), base=base, links=links,
                    sf_id=None if s == "absent" else "003A", gc_id=None if g == "absent" else "gc-1",
                    salesforce_deleted=s == "deleted", genesys_deleted=g == "deleted")
    _, steps = steps_for(snap, mode=mode, delete_handling="unlink" if unlink else "propagate")
    order = iter(BATCH_ORDER)
    assert all(any(batch_of(step) == b for b in order) for step in steps), kinds(steps)
    assert sum(isinstance(step, StoreBase) for step in steps) <= 1
    for step in steps:
        if isinstance(step, StoreBase):
            assert all(a.reason for a in step.audit)
        else:
            assert step.reason
        if isinstance(step, (UpdateSalesforce, UpdateGenesys, DeleteInSalesforce, DeleteInGenesys)):
            assert step.unmodified_since  # every overwrite of a record as read says as of when


def test_the_steps_module_does_no_io():
    code = ("import sys, callbridge.domain.sync.steps; "
            "print(sorted(m for m in ('httpx', 'sqlalchemy', 'temporalio', 'simple_salesforce', 'requests') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_the_link_field_and_the_defaults_are_named_in_the_steps_module_only():
    named = [str(p.relative_to(ROOT)) for folder in ("callbridge", "activities", "workflows")
             for p in (ROOT / folder).rglob("*.py")
             if "Genesys_Contact_Id__c" in p.read_text() or '"Unknown"' in p.read_text()]
    assert named == ["callbridge/domain/sync/steps.py"]
