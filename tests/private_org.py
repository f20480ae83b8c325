"""A Salesforce emulator of a test module's own, for tests that change the org for everyone
using it (purging the recycle bin moves getDeleted's earliestDateAvailable)."""

from __future__ import annotations

from pathlib import Path

from devstack.processes import ManagedProcess, free_port, python_module
from tests.conftest import SalesforceEmulator


def start_salesforce(test_var_dir: Path, name: str) -> SalesforceEmulator:
    data_dir, port = test_var_dir / f"salesforce-{name}", free_port()
    client_id, secret = f"{name}-client", f"{name}-secret"
    proc = ManagedProcess(
        name=f"salesforce-emulator-{name}",
        argv=python_module("emulators.salesforce", "serve", "--host", "127.0.0.1", "--port", str(port),
                           "--data-dir", str(data_dir), "--client-id", client_id, "--client-secret", secret),
        ready_url=f"https://127.0.0.1:{port}/services/data", ca_file=data_dir / "ca.pem",
        log_path=test_var_dir / f"salesforce-{name}.log",
    ).start()
    return SalesforceEmulator(instance_url=f"https://127.0.0.1:{port}", ca_file=data_dir / "ca.pem",
                              client_id=client_id, client_secret=secret, data_dir=data_dir, process=proc)
