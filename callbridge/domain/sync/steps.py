"""A merged plan as the ordered steps that carry it out: the apply half of one contact pair, pure.

`merge` decides what both sides should hold; `plan_steps` says which writes get there, in which
order, with which precondition, and what the audit says about each (after vdirsyncer's sync/:
deciding and applying are separate small pieces). Both paths apply the same steps:
SyncPairWorkflow one activity per step, the bulk page grouped into collections and bulk calls
(`BATCH_ORDER`). So the link field, the defaults a new record needs, the write order and the
audit texts live here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Union

from callbridge.domain.sync.merge import Action, FieldChange, Plan, Side
from callbridge.domain.sync.models import AuditEntry, PairSnapshot

# Salesforce's pointer to the Genesys twin: an External ID field (unique), so a retried create
# upserts on it instead of creating twice (deploy/salesforce, the emulator's schema).
LINK_FIELD = "Genesys_Contact_Id__c"
# LastName is required on a Salesforce Contact (Object Reference, Contact); a Genesys contact
# may have none.
SALESFORCE_DEFAULTS: Mapping[str, Any] = MappingProxyType({"LastName": "Unknown"})

# The audit's reason for each kind of step: one text whichever path applies it. (Field writes
# carry the merge's reason for each field instead: who won, and why.)
CREATED = "created"
LINK_WRITTEN = "link written"
UPDATED_FROM_GENESYS = "update from Genesys"
UPDATED_FROM_SALESFORCE = "update from Salesforce"
DELETED_IN_SALESFORCE = "deleted in Salesforce"
DELETED_IN_GENESYS = "deleted in Genesys"
FORGOTTEN = "deleted on both sides"
UNLINKED = "deleted on one side; delete handling is unlink"
DELETE_CONFLICT = "delete_conflict"  # the review list's reason code


def link_fields(genesys_id: str | None) -> dict[str, Any]:
    """The Salesforce side of the link, as fields of a Contact write."""
    return {LINK_FIELD: genesys_id}


@dataclass(frozen=True)
class CreateInGenesys:
    """A new external contact (carrying the Salesforce id in its externalIds: the link)."""

    fields: Mapping[str, Any]
    changes: tuple[FieldChange, ...] = ()
    reason: str = CREATED
    to: Side = Side.GENESYS


@dataclass(frozen=True)
class CreateInSalesforce:
    """A new Contact, upserted on the link (its fields hold LINK_FIELD and the defaults)."""

    fields: Mapping[str, Any]
    changes: tuple[FieldChange, ...] = ()
    reason: str = CREATED
    to: Side = Side.SALESFORCE


@dataclass(frozen=True)
class WriteLink:
    """One side's pointer to the other, written alone (after a create, or a link gone missing).
    The id it points to is the applier's: after a create it is known only then."""

    to: Side
    unmodified_since: str | None = None
    reason: str = LINK_WRITTEN


@dataclass(frozen=True)
class UpdateSalesforce:
    """A PATCH of the changed fields (and the link, when missing), only if the Contact is as read:
    If-Unmodified-Since its LastModifiedDate (412 otherwise; the bulk path re-reads it first)."""

    fields: Mapping[str, Any]
    unmodified_since: str | None
    changes: tuple[FieldChange, ...] = ()
    reason: str = UPDATED_FROM_GENESYS
    to: Side = Side.SALESFORCE


@dataclass(frozen=True)
class UpdateGenesys:
    """A PUT of the whole contact as read with the changed fields and the link. The precondition
    is its modifyDate as read (the bulk path re-reads it first)."""

    fields: Mapping[str, Any]
    unmodified_since: str | None
    changes: tuple[FieldChange, ...] = ()
    reason: str = UPDATED_FROM_SALESFORCE
    to: Side = Side.GENESYS


@dataclass(frozen=True)
class DeleteInSalesforce:
    unmodified_since: str | None
    reason: str = DELETED_IN_GENESYS
    to: Side = Side.SALESFORCE


@dataclass(frozen=True)
class DeleteInGenesys:
    unmodified_since: str | None
    reason: str = DELETED_IN_SALESFORCE
    to: Side = Side.GENESYS


@dataclass(frozen=True)
class StoreBase:
    """The agreed base (None: forget the pair), compare-and-swap on the version read, with the
    audit of the writes before it and the caller-ID index row, in one transaction."""

    base: Mapping[str, Any] | None
    audit: tuple[AuditEntry, ...]
    salesforce_deleted: bool = False
    # What was written to the Salesforce record, laid over the record as read for the caller-ID
    # index; None: no index row from this pair.
    salesforce_written: Mapping[str, Any] | None = None
    # The base is as it was: stored for the audit of the writes before it (a link written, a
    # Genesys edit overwritten in one-way mode). Runs started before the steps skipped it.
    base_unchanged: bool = False
    reason: str = ""


@dataclass(frozen=True)
class SendToReview:
    """A case for the review list (ids and a reason, never a value)."""

    detail: str
    reason: str = DELETE_CONFLICT


Step = Union[CreateInGenesys, CreateInSalesforce, WriteLink, UpdateSalesforce, UpdateGenesys,
             DeleteInSalesforce, DeleteInGenesys, StoreBase, SendToReview]

# The bulk path's calls, in order: one pass applies every pair's steps, each pair's in its own
# order (every plan's steps are a subsequence of this; tests/unit/test_sync_steps.py checks it).
BATCH_ORDER = ("create_in_genesys", "create_in_salesforce", "store", "write_salesforce", "write_genesys",
               "delete_in_salesforce", "delete_in_genesys", "store", "review")


def batch_of(step: Step) -> str:
    """Which of the bulk path's calls a step goes into (a link write and a field update of the
    same side share one: a collection PATCH, a bulk update)."""
    if isinstance(step, CreateInGenesys):
        return "create_in_genesys"
    if isinstance(step, CreateInSalesforce):
        return "create_in_salesforce"
    if isinstance(step, StoreBase):
        return "store"
    if isinstance(step, (UpdateSalesforce, UpdateGenesys, WriteLink)):
        return "write_salesforce" if step.to is Side.SALESFORCE else "write_genesys"
    if isinstance(step, DeleteInSalesforce):
        return "delete_in_salesforce"
    if isinstance(step, DeleteInGenesys):
        return "delete_in_genesys"
    return "review"


def audit_for(action: Action, writes: list[Step]) -> tuple[AuditEntry, ...]:
    """A line per field written (the merge's reason), else a line per write (the step's)."""
    lines: list[AuditEntry] = []
    for step in writes:
        changes = getattr(step, "changes", ())
        if changes:
            lines += [AuditEntry(action=action.value, field=c.field, old=c.old, new=c.new, written_to=c.to.value,
                                 reason=c.reason) for c in changes]
        else:
            lines.append(AuditEntry(action=action.value, written_to=step.to.value, reason=step.reason))
    return tuple(lines)


def _store(plan: Plan, writes: list[Step], base: Mapping[str, Any] | None, **kw: Any) -> StoreBase:
    return StoreBase(base=base, audit=audit_for(plan.action, writes), **kw)


def plan_steps(plan: Plan, snap: PairSnapshot) -> tuple[Step, ...]:
    """The steps that carry out `plan` for the pair as read in `snap`, in the order to apply them."""
    action, sf_id, gc_id = plan.action, snap.salesforce_id, snap.genesys_id
    to_sf = tuple(c for c in plan.changes if c.to is Side.SALESFORCE)
    to_gc = tuple(c for c in plan.changes if c.to is Side.GENESYS)
    salesforce_as_read = None if snap.salesforce is None else {}

    if action is Action.CREATE_IN_GENESYS:
        # The base before the Salesforce link: a crash between them finds the pair stored and
        # writes the link again, instead of creating a second Genesys contact.
        create = CreateInGenesys(dict(plan.write_genesys), to_gc)
        return (create, _store(plan, [create], plan.new_base, salesforce_written={}),
                WriteLink(Side.SALESFORCE))
    if action is Action.CREATE_IN_SALESFORCE:
        fields = {**plan.write_salesforce, **link_fields(gc_id)}
        for name, default in SALESFORCE_DEFAULTS.items():
            fields[name] = fields.get(name) or default
        create = CreateInSalesforce(fields, to_sf)
        return (create, _store(plan, [create], plan.new_base, salesforce_written=fields),
                WriteLink(Side.GENESYS, unmodified_since=snap.genesys_modified))
    if action in (Action.UPDATE, Action.NOOP):
        if snap.salesforce is None or snap.genesys is None:
            return ()
        writes: list[Step] = []
        sf_fields = dict(plan.write_salesforce)
        if gc_id and not snap.salesforce_link_ok:
            sf_fields.update(link_fields(gc_id))  # matched this run, or a link lost: write it
        if plan.write_salesforce:
            writes.append(UpdateSalesforce(sf_fields, snap.salesforce_modified, to_sf))
        elif sf_fields:
            writes.append(WriteLink(Side.SALESFORCE, unmodified_since=snap.salesforce_modified))
        # A PUT replaces the whole Genesys contact: every one carries the link.
        if plan.write_genesys:
            writes.append(UpdateGenesys(dict(plan.write_genesys), snap.genesys_modified, to_gc))
        elif sf_id and not snap.genesys_link_ok:
            writes.append(WriteLink(Side.GENESYS, unmodified_since=snap.genesys_modified))
        if plan.new_base is None or not (sf_id and gc_id):
            return tuple(writes)
        changed = plan.new_base != snap.base or snap.version == 0
        if changed or writes:
            writes.append(_store(plan, writes, plan.new_base, salesforce_written=sf_fields,
                                 base_unchanged=not changed))
        return tuple(writes)
    if action is Action.DELETE_IN_GENESYS:
        delete = DeleteInGenesys(snap.genesys_modified)
        return delete, _store(plan, [delete], None, salesforce_deleted=snap.salesforce_deleted,
                              salesforce_written=salesforce_as_read)
    if action is Action.DELETE_IN_SALESFORCE:
        delete = DeleteInSalesforce(snap.salesforce_modified)
        return delete, _store(plan, [delete], None, salesforce_deleted=True)
    if action in (Action.FORGET, Action.UNLINK):
        if not (sf_id and snap.version):
            return ()  # never stored: nothing to forget
        reason = FORGOTTEN if action is Action.FORGET else UNLINKED
        return (StoreBase(base=None, audit=(AuditEntry(action=action.value, reason=reason),),
                          salesforce_deleted=snap.salesforce_deleted, salesforce_written=salesforce_as_read,
                          reason=reason),)
    if action is Action.DELETE_CONFLICT:
        return (SendToReview("deleted in Salesforce, edited in Genesys" if snap.salesforce_deleted
                             else "deleted in Genesys, edited in Salesforce"),)
    return ()  # noop without both records, skip_erased
