"""The sync store's settle: a page's bases, audit and index rows are one transaction."""

from __future__ import annotations

import pytest

from callbridge.store import sync as sync_store
from callbridge.store.db import get_engine


def _item(n: int, **extra) -> dict:
    return {"salesforce_id": f"003{n:015d}", "genesys_id": f"gc-{n}", "expected_version": 0,
            "base": {"LastName": f"L{n}"}, "audit": [{"workflow_id": "wf", "action": "create_in_genesys"}],
            "index_record": None, "salesforce_deleted": False, **extra}


def test_a_failure_after_the_bases_stores_none_of_them(tmp_path):
    # pysqlite sends no BEGIN before a SAVEPOINT: each pair's savepoint used to commit on its own,
    # so a failure later in the page (here: an audit line the insert can't take) left its bases
    # stored without their audit lines, and the retried page found them "stale".
    engine = get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    broken = _item(2, audit=[{"action": "create_in_genesys"}])  # no workflow_id: fails at the audit insert
    with pytest.raises(KeyError):
        sync_store.settle(engine, [_item(1), broken], "US")
    assert sync_store.pairs_for(engine, [f"003{1:015d}", f"003{2:015d}"], []) == []
    # The retried page stores both, and a stale one is reported, not stored.
    assert sync_store.settle(engine, [_item(1), _item(2)], "US") == []
    assert sync_store.settle(engine, [_item(1), _item(3)], "US") == [f"003{1:015d}"]
    assert {p["genesys_id"] for p in sync_store.pairs_for(engine, [f"003{n:015d}" for n in (1, 2, 3)], [])} == {
        "gc-1", "gc-2", "gc-3"}


def test_a_page_of_bases_is_compare_and_swap_pair_by_pair(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    assert sync_store.settle(engine, [_item(n) for n in range(1, 5)], "US") == []
    # Version 1 is current for all four: 1 and 2 move to 2; 3 was read at 0 (someone stored
    # it since: stale); 4 is forgotten; 5 is new, 6 is new but takes 1's Genesys id (stale).
    page = [_item(1, expected_version=1, base={"LastName": "New"}), _item(2, expected_version=1),
            _item(3), _item(4, expected_version=1, base=None), _item(5), _item(6, genesys_id="gc-1")]
    assert sorted(sync_store.settle(engine, page, "US")) == [f"003{3:015d}", f"003{6:015d}"]
    pairs = {p["salesforce_id"][-1]: p for p in sync_store.pairs_for(
        engine, [f"003{n:015d}" for n in range(1, 7)], [])}
    assert {k: p["version"] for k, p in pairs.items()} == {"1": 2, "2": 2, "3": 1, "5": 1}
    assert pairs["1"]["base"] == {"LastName": "New"}
    # The same page again: every base it read is stale now (1, 2 at 2; 5 exists).
    assert sorted(sync_store.settle(engine, [_item(1, expected_version=1), _item(2, expected_version=1), _item(5)],
                                    "US")) == [f"003{n:015d}" for n in (1, 2, 5)]
    # Audit lines only for what was stored: 4 + (1, 2, 4, 5) from the second page.
    from sqlalchemy import text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM sync_audit")).scalar() == 8
