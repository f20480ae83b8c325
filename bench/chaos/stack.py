"""The chaos bench's stack: the local stack on free ports under its own var directory, its
processes by name (for the faults) and clients that check outcomes in Salesforce and Genesys."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from simple_salesforce import Salesforce

from bench.stack import bench_settings, genesys_token, salesforce_verify
from devstack.processes import ManagedProcess
from devstack.stack import LocalStack

if TYPE_CHECKING:
    from bench.chaos.faults import Fault


class ChaosStack:
    """The local stack (file-backed dev server, both emulators, worker, starter) and the faults
    struck on it so far."""

    def __init__(self, var: Path, contacts: int, temporal_outage: float = 0.0, **overrides: Any) -> None:
        self.temporal_outage = temporal_outage  # seconds the dev server stays down when restarted
        self.settings = bench_settings(var, "callbridge-chaos", **overrides)
        self.stack = LocalStack(self.settings)
        self.contacts = contacts
        self.faults: list[Fault] = []
        self._admin: httpx.Client | None = None

    def start(self) -> None:
        s = self.stack
        s.start_temporal()
        s.seed_salesforce(self.contacts)
        s.start_salesforce()
        s.start_genesys()
        s.start_worker().ready_url = self._worker_ready_url
        self.worker.wait_ready(60)
        s.start_starter()

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        self.stack.stop()

    @property
    def salesforce_admin(self) -> httpx.Client:
        """The Salesforce emulator's control API (/_emulator/…): faults, session expiry, stats."""
        if self._admin is None:  # the emulator writes its CA on first start
            self._admin = httpx.Client(base_url=f"{self.settings.salesforce_instance_url}/_emulator", timeout=30,
                                       verify=salesforce_verify(self.settings))
        return self._admin

    @property
    def _worker_ready_url(self) -> str:
        # The worker serves metrics before it connects; good enough as "the process is up".
        return f"http://127.0.0.1:{self.settings.worker_metrics_port}/metrics"

    def _proc(self, name: str) -> ManagedProcess:
        return next(p for p in self.stack.processes if p.name == name)

    @property
    def worker(self) -> ManagedProcess:
        return self._proc("worker")

    @property
    def temporal(self) -> ManagedProcess:
        return self._proc("temporal")

    def salesforce_stats(self) -> dict[str, Any]:
        return self.salesforce_admin.get("/stats").json()

    def salesforce_client(self) -> Salesforce:
        return self.stack.salesforce_client()

    def genesys_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.settings.genesys_api_url, timeout=30,
                            headers={"Authorization": f"Bearer {genesys_token(self.settings)}"})
