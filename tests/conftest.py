"""Session-wide test stack: real processes on real sockets.

The emulators run as subprocesses exactly as `callbridge demo` starts them; tests talk to
them over HTTP(S). Temporal, the worker and the starter fixtures live in
`tests/stack.py` and are added to this file as the suite grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from callbridge.processes import ManagedProcess, free_port, python_module


@dataclass
class SalesforceEmulator:
    instance_url: str
    ca_file: Path
    client_id: str
    client_secret: str
    data_dir: Path
    process: ManagedProcess


@dataclass
class GenesysEmulator:
    api_url: str
    client_id: str
    client_secret: str
    data_dir: Path
    process: ManagedProcess


@pytest.fixture(scope="session")
def test_var_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def salesforce(test_var_dir) -> SalesforceEmulator:
    data_dir = test_var_dir / "salesforce"
    port = free_port()
    client_id, client_secret = "test-client", "test-secret"
    proc = ManagedProcess(
        name="salesforce-emulator",
        argv=python_module(
            "emulators.salesforce", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--client-id", client_id, "--client-secret", client_secret,
        ),
        ready_url=f"https://127.0.0.1:{port}/services/data",
        ca_file=data_dir / "ca.pem",
        log_path=test_var_dir / "salesforce.log",
    ).start()
    yield SalesforceEmulator(
        instance_url=f"https://127.0.0.1:{port}", ca_file=data_dir / "ca.pem",
        client_id=client_id, client_secret=client_secret, data_dir=data_dir, process=proc,
    )
    proc.stop()


@pytest.fixture(scope="session")
def genesys(test_var_dir) -> GenesysEmulator:
    data_dir = test_var_dir / "genesys"
    port = free_port()
    client_id, client_secret = "test-client", "test-secret"
    proc = ManagedProcess(
        name="genesys-emulator",
        argv=python_module(
            "emulators.genesys", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--client-id", client_id, "--client-secret", client_secret,
            # Tests that need the call simulator's webhook point it at the starter at run time
            # through POST /_emulator/config.
        ),
        ready_url=f"http://127.0.0.1:{port}/_emulator/health",
        log_path=test_var_dir / "genesys.log",
    ).start()
    yield GenesysEmulator(
        api_url=f"http://127.0.0.1:{port}", client_id=client_id, client_secret=client_secret,
        data_dir=data_dir, process=proc,
    )
    proc.stop()
