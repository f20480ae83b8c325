"""The state store on PostgreSQL and SQLite: Alembic migrations match the metadata, stores made
by create_all are adopted, concurrent starts migrate once, the caller-ID index round-trips."""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from callbridge.store import caller_index
from callbridge.store import privacy  # noqa: F401  (its tables are part of the metadata)
from callbridge.store.db import get_engine
from callbridge.store.tables import metadata
from callbridge.store.migrations import alembic_config
from tests.conftest import REPO
from tests.unit.test_caller_id import contact

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database of its own, dropped afterwards."""
    name = f"callbridge_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    get_engine.cache_clear()  # releases pooled connections so the database can go
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


# The newest migration: a store is always brought to it (and must then match the metadata).
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrations_match_the_metadata(store_url):
    engine = get_engine(store_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert diff == []
    assert head == HEAD


def test_a_store_made_by_create_all_is_adopted_not_recreated(store_url):
    plain = create_engine(store_url)
    metadata.create_all(plain)
    with plain.begin() as conn:
        conn.execute(text("INSERT INTO state (name, int_value) VALUES ('kept', 7)"))
    plain.dispose()
    engine = get_engine(store_url)  # would fail with "table exists" without the stamp
    with engine.connect() as conn:
        assert conn.execute(text("SELECT int_value FROM state WHERE name = 'kept'")).scalar() == 7
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD


def test_concurrent_starts_migrate_once(store_url):
    # Worker and starter start together; each runs the migrations on its first engine.
    code = "import sys; from callbridge.store.db import get_engine; get_engine(sys.argv[1]); print('ok')"
    procs = [subprocess.Popen([sys.executable, "-c", code, store_url], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
    engine = get_engine(store_url)
    assert {"caller_index", "state", "privacy_tombstones", "alembic_version"} <= set(inspect(engine).get_table_names())


def test_caller_index_round_trip(store_url):
    engine = get_engine(store_url)
    cid = "003000000000009AAA"
    caller_index.apply_contacts(engine, [contact(cid, Phone="512-555-0101", MailingCountry="USA")], "US")
    [hit] = caller_index.lookup(engine, "+15125550101")
    assert hit["contact_id"] == cid and hit["modstamp"].year == 2026
    # Upserting the same account again (ON CONFLICT) and moving the number.
    caller_index.apply_contacts(engine, [contact(cid, Phone="512-555-0202", MailingCountry="USA")], "US")
    assert caller_index.lookup(engine, "+15125550101") == []
    account, contacts = caller_index.lookup_account(engine, "ACME-1")
    assert account["name"] == "Acme" and [c["contact_id"] for c in contacts] == [cid]
    caller_index.set_text(engine, "watermark", "2026-03-14T10:00:00Z")
    caller_index.set_text(engine, "watermark", "2026-03-14T11:00:00Z")
    assert caller_index.get_text(engine, "watermark") == "2026-03-14T11:00:00Z"
    assert caller_index.version(engine) == 2
