"""Random interleavings of creates, edits and deletes on both sides, with sync runs between
them (hypothesis), through Temporal, the worker and both emulators.

After a final quiet sync: both sides agree on every mapped field; an edit made on one side
only survives, and one made on both sides ends as the field's policy says; no Salesforce
contact has two Genesys twins; a record deleted on one side is not brought back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from callbridge.store import sync_runs
from callbridge.store.db import get_engine
from tests.helpers import GENESYS_CONTACTS as CONTACTS
from tests.helpers import edit_gc_contact, new_sf_contact, run_sync

pytestmark = pytest.mark.integration

# Mapped fields the test edits: FirstName (policy salesforce), Email (policy last_write).
FIELDS = {"FirstName": "firstName", "Email": "workEmail"}
SIDES = ("sf", "gc")

op = st.one_of(
    st.tuples(st.just("edit"), st.sampled_from(SIDES), st.integers(0, 2), st.sampled_from(sorted(FIELDS))),
    st.tuples(st.just("delete"), st.sampled_from(SIDES), st.integers(0, 2)),
    st.tuples(st.just("create"), st.sampled_from(SIDES)),
    st.just(("sync",)),
)


@dataclass
class Pair:
    sf_id: str
    gc_id: str
    deleted: str | None = None                     # the side the test deleted it on
    edits: dict[str, dict[str, str]] = field(default_factory=dict)  # since the last sync: field -> side -> value
    expected: dict[str, set[str]] = field(default_factory=dict)     # values a field may end with


@dataclass
class World:
    tag: str
    pairs: list[Pair] = field(default_factory=list)
    counter: int = 0

    def value(self, name: str) -> str:
        self.counter += 1
        return f"v{self.counter}-{self.tag}@example.com" if name == "Email" else f"Name{self.counter}"


def settle_expectations(world: World) -> None:
    """What one sync makes of the edits since the previous one, by each field's policy."""
    for pair in world.pairs:
        for name, by_side in pair.edits.items():
            if len(by_side) == 1:
                pair.expected[name] = set(by_side.values())
            elif name == "FirstName":       # policy salesforce
                pair.expected[name] = {by_side["sf"]}
            else:                           # last_write: second-precision stamps, either may be later
                pair.expected[name] = set(by_side.values())
        pair.edits = {}


async def test_random_interleavings_converge(stack, sf, gc, temporal_client):
    loop = asyncio.get_running_loop()
    engine = get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])

    def sync_now() -> None:
        # A short lookback: one machine, one clock; the default re-reads two minutes of the
        # whole session's changes on every run.
        result = asyncio.run_coroutine_threadsafe(
            run_sync(temporal_client, stack, mode="bidirectional", lookback_seconds=3), loop).result()
        assert result.errors == 0

    @settings(max_examples=5, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(ops=st.lists(op, min_size=2, max_size=7))
    def interleaving(ops) -> None:
        world = World(tag=uuid.uuid4().hex[:8])
        for _ in range(2):
            sf_id = new_sf_contact(sf, Email=world.value("Email"))
            world.pairs.append(Pair(sf_id, ""))
        sync_now()
        for pair in world.pairs:
            pair.gc_id = sf.Contact.get(pair.sf_id)["Genesys_Contact_Id__c"]
        for step in ops:
            live = [p for p in world.pairs if p.deleted is None]
            if step[0] == "sync":
                sync_now()
                settle_expectations(world)
            elif step[0] == "create":
                if step[1] == "sf":
                    world.pairs.append(Pair(new_sf_contact(sf, Email=world.value("Email")), ""))
                else:
                    made = gc.post(CONTACTS, json={"firstName": "New", "lastName": world.tag,
                                                   "workEmail": world.value("Email")}).json()
                    world.pairs.append(Pair("", made["id"]))
            elif live:
                pair = live[step[2] % len(live)]
                if not (pair.sf_id and pair.gc_id):
                    continue  # not linked yet: only syncs touch it
                if step[0] == "edit":
                    value = world.value(step[3])
                    if step[1] == "sf":
                        sf.Contact.update(pair.sf_id, {step[3]: value})
                    else:
                        edit_gc_contact(gc, pair.gc_id, **{FIELDS[step[3]]: value})
                    pair.edits.setdefault(step[3], {})[step[1]] = value
                else:
                    if step[1] == "sf":
                        sf.Contact.delete(pair.sf_id)
                    else:
                        gc.delete(f"{CONTACTS}/{pair.gc_id}").raise_for_status()
                    pair.deleted = step[1]
            time.sleep(0.05)
        # The final quiet syncs: one to settle, one to prove nothing is left to do.
        sync_now()
        settle_expectations(world)
        sync_now()
        twins_of = linked_twins()
        for pair in world.pairs:
            if not pair.sf_id:  # created in Genesys: sync made (or didn't make) its Salesforce twin
                linked = [r["Id"] for r in sf.query(
                    f"SELECT Id FROM Contact WHERE Genesys_Contact_Id__c = '{pair.gc_id}'")["records"]]
                assert len(linked) <= 1
                if not linked:
                    continue
                pair.sf_id = linked[0]
            check(pair, twins_of.get(pair.sf_id, []), engine)

    def linked_twins() -> dict[str, list[str]]:
        """Salesforce id -> the Genesys contacts linking it: one scan for the whole check."""
        twins: dict[str, list[str]] = {}
        params = {"limit": 200}
        while True:
            body = gc.get("/api/v2/externalcontacts/scan/contacts", params=params).json()
            for c in body.get("entities", []):
                for e in c.get("externalIds") or []:
                    twins.setdefault(e.get("value"), []).append(c["id"])
            after = (body.get("cursors") or {}).get("after")
            if not after:
                return twins
            params = {"limit": 200, "cursor": after}

    def check(pair: Pair, twins: list[str], engine) -> None:
        sf_row = sf.query_all(f"SELECT Id, IsDeleted, FirstName, Email, Genesys_Contact_Id__c FROM Contact "
                              f"WHERE Id = '{pair.sf_id}'", include_deleted=True)["records"]
        sf_alive = bool(sf_row) and not sf_row[0]["IsDeleted"]
        assert len(twins) <= 1, f"{pair.sf_id} has {len(twins)} Genesys twins"  # no duplicates
        conflict = any(pair.sf_id in c["salesforce_ids"] and c["reason"] == "delete_conflict"
                       for c in sync_runs.list_review(engine))
        if pair.deleted:
            # No resurrection: the delete went through on both sides, or is a reviewed conflict
            # (deleted on one side, edited on the other) with the deleted side still gone.
            if pair.deleted == "sf":
                assert not sf_alive
                assert not twins or conflict
            else:
                assert not twins
                assert not sf_alive or conflict
            return
        assert sf_alive and twins == [pair.gc_id or twins[0]], f"{pair.sf_id}: pair broken"
        contact = gc.get(f"{CONTACTS}/{twins[0]}").json()
        for name, gname in FIELDS.items():
            sf_value = sf_row[0][name]
            gc_value = contact.get(gname)
            if name == "Email":
                sf_value, gc_value = (sf_value or "").lower(), (gc_value or "").lower()
            assert sf_value == gc_value, f"{name} disagrees"          # both sides agree
            if name in pair.expected:
                assert sf_value in {v.lower() if name == "Email" else v for v in pair.expected[name]}

    await asyncio.to_thread(interleaving)
