"""`callbridge doctor` as an operator runs it, against the emulators and the dev server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def doctor(env: dict[str, str], **overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callbridge.cli", "doctor"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env, **overrides, "COLUMNS": "300"})


def test_a_working_configuration_passes_every_check(stack):
    run = doctor(stack.env)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    for line in ("store      state store: reachable, schema at revision",
                 "temporal   search attributes: all registered",
                 "salesforce credentials: token from",
                 "salesforce Task.Genesys_Conversation_Id__c: ok",
                 "salesforce Contact permissions: ok",
                 "genesys    credentials: token accepted",
                 "genesys    recordings access: probe answered 404",
                 "salesforce subscription /data/ContactChangeEvent: subscribed at",
                 "salesforce subscription /data/AccountChangeEvent: subscribed at"):
        assert line in out
    assert "FAIL" not in out and out.rstrip().endswith("0 failed.")


def test_wrong_credentials_fail_and_say_what_to_fix(stack):
    run = doctor(stack.env, CALLBRIDGE_SALESFORCE_CLIENT_SECRET="wrong", CALLBRIDGE_GENESYS_CLIENT_SECRET="wrong")
    assert run.returncode == 1
    out = run.stdout
    assert "FAIL salesforce credentials" in out and "client credentials flow" in out
    assert "FAIL genesys    credentials: token refused" in out and "CALLBRIDGE_GENESYS_CLIENT_ID" in out
    assert "wrong" not in out  # secrets are never echoed
    assert "OK   temporal   connection" in out
    assert "FAIL salesforce subscription /data/ContactChangeEvent" in out


def test_an_unreachable_pubsub_endpoint_fails_the_subscription_check(stack):
    run = doctor(stack.env, CALLBRIDGE_SALESFORCE_PUBSUB_ENDPOINT="127.0.0.1:1")
    assert run.returncode == 1
    assert "FAIL salesforce subscription /data/ContactChangeEvent: UNAVAILABLE" in run.stdout
    assert "Change Data Capture" in run.stdout


def test_unreachable_temporal_and_store(stack, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    run = doctor(stack.env, CALLBRIDGE_TEMPORAL_ADDRESS="127.0.0.1:1",
                 CALLBRIDGE_DATABASE_URL=f"sqlite:///{blocked}/sub/state.db")
    assert run.returncode == 1
    assert "FAIL temporal   connection" in run.stdout and "CALLBRIDGE_TEMPORAL_ADDRESS" in run.stdout
    assert "FAIL store" in run.stdout and "CALLBRIDGE_DATABASE_URL" in run.stdout
