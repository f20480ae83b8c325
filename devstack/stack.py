"""The local stack as processes: Temporal dev server, both emulators, worker, starter.

Used by `callbridge-dev demo` and the benchmarks, so they run exactly what the docs describe.
"""

from __future__ import annotations

import compileall
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from devstack.processes import ManagedProcess, python_module
from callbridge.core.settings import Settings
from callbridge.core.temporal import SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def settings_env(settings: Settings) -> dict[str, str]:
    """The CALLBRIDGE_* variables of these settings (secrets included: for var/demo.env only)."""
    # The local stack runs on the public demo secrets: explicit demo mode (callbridge/core/secrets_policy.py).
    env = {"CALLBRIDGE_DEMO": "1"}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"CALLBRIDGE_{name.upper()}"] = str(value)
    return env


def write_env_file(settings: Settings, path: Path) -> None:
    lines = ["# Settings `callbridge-dev demo` runs with; `set -a; . var/demo.env` to drive the stack by hand."]
    # Quoted for the shell: values such as the sync's "Data Processing" consent type have spaces.
    lines += [f"{k}={shlex.quote(v)}" for k, v in sorted(settings_env(settings).items())]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def precompile_workflows() -> None:
    """Write the workflows' bytecode (__pycache__, git-ignored), as `pip install` does for the
    image. The workflow sandbox imports a workflow's module afresh for every run: without a .pyc
    (PYTHONDONTWRITEBYTECODE, a source checkout) each call's run compiled workflows/call_logging.py
    again, ~1.5 ms of the worker's CPU per call (tests/workflows/test_workflow_sandbox.py)."""
    compileall.compile_dir(REPO / "workflows", quiet=1)


def _port(url: str, default: int) -> int:
    return urlparse(url).port or default


@dataclass
class LocalStack:
    settings: Settings
    processes: list[ManagedProcess] = field(default_factory=list)
    # The Genesys emulator's per-token budget (requests per minute); None: its default, a real org's.
    genesys_rate_limit: int | None = None

    @property
    def var(self) -> Path:
        return self.settings.var_dir

    def _log(self, name: str) -> Path:
        (self.var / "logs").mkdir(parents=True, exist_ok=True)
        return self.var / "logs" / f"{name}.log"

    def _start(self, proc: ManagedProcess, timeout: float = 60.0) -> ManagedProcess:
        proc.start(timeout)
        self.processes.append(proc)
        return proc

    def start_temporal(self) -> ManagedProcess:
        s = self.settings
        (self.var / "temporal").mkdir(parents=True, exist_ok=True)
        host, _, port = s.temporal_address.partition(":")
        argv = [
            str(VENV_BIN / "temporal"), "server", "start-dev",
            "--ip", host, "--port", port or "7233", "--ui-port", str(_port(s.temporal_ui_url, 8233)),
            "--db-filename", str(self.var / "temporal" / "temporal.db"),
            "--namespace", s.temporal_namespace, "--log-level", "error",
            # The UI decrypts payloads through the starter's codec endpoint.
            "--ui-codec-endpoint", f"http://{s.starter_host}:{s.starter_port}/codec",
        ]
        for name, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        proc = self._start(ManagedProcess("temporal", argv, ready_url=s.temporal_ui_url,
                                          log_path=self._log("temporal")))
        # Closed histories are kept this long, then deleted by Temporal (docs/privacy.md: "Temporal retention").
        ManagedProcess("temporal-retention", [
            str(VENV_BIN / "temporal"), "operator", "namespace", "update", "-n", s.temporal_namespace,
            "--retention", f"{s.temporal_retention_days * 24}h", "--address", s.temporal_address,
        ], log_path=self._log("temporal")).start().proc.wait()
        return proc

    def seed_salesforce(self, contacts: int) -> None:
        ManagedProcess(
            "salesforce-seed",
            python_module("emulators.salesforce", "seed", "--data-dir", str(self.var / "salesforce"),
                          "--contacts", str(contacts)),
            log_path=self._log("salesforce-seed"), cwd=REPO,
        ).start().proc.wait()

    def start_salesforce(self) -> ManagedProcess:
        s = self.settings
        data = self.var / "salesforce"
        return self._start(ManagedProcess(
            "salesforce-emulator",
            python_module("emulators.salesforce", "serve", "--host", "127.0.0.1",
                          "--port", str(_port(s.salesforce_instance_url, 8443)), "--data-dir", str(data),
                          "--client-id", s.salesforce_client_id,
                          "--client-secret", s.salesforce_client_secret.get_secret_value(),
                          # The Pub/Sub API (Change Data Capture) on the port `callbridge listen` uses.
                          "--pubsub-port", s.salesforce_pubsub_endpoint.rsplit(":", 1)[1]),
            ready_url=f"{s.salesforce_instance_url}/services/data", ca_file=data / "ca.pem",
            log_path=self._log("salesforce-emulator"), cwd=REPO,
        ))

    def start_genesys(self) -> ManagedProcess:
        s = self.settings
        return self._start(ManagedProcess(
            "genesys-emulator",
            python_module("emulators.genesys", "serve", "--host", "127.0.0.1",
                          "--port", str(_port(s.genesys_api_url, 8081)), "--data-dir", str(self.var / "genesys"),
                          "--client-id", s.genesys_client_id,
                          "--client-secret", s.genesys_client_secret.get_secret_value(),
                          "--webhook-url", s.webhook_url,
                          "--webhook-secret", s.webhook_secret.get_secret_value(),
                          *(["--rate-limit", str(self.genesys_rate_limit)] if self.genesys_rate_limit else [])),
            ready_url=f"{s.genesys_api_url}/_emulator/health", log_path=self._log("genesys-emulator"), cwd=REPO,
        ))

    def connect_flow_to_lookup(self) -> None:
        """Point the emulated inbound flow's data action at the starter's screen-pop lookup."""
        s = self.settings
        httpx.post(f"{s.genesys_api_url}/_emulator/config", json={
            "dataActionUrl": f"http://{s.starter_host}:{s.starter_port}/screenpop/lookup",
            "dataActionAuth": {"username": s.screenpop_username,
                               "password": s.screenpop_password.get_secret_value()},
            # Agents sign in on the desktop page and recording links (starter/agent_auth.py).
            "agentRedirectUris": [s.agent_redirect_uri],
        }, timeout=10).raise_for_status()

    def rebuild_caller_index(self) -> int:
        """The whole caller-ID index from the org now (`callbridge index rebuild`'s work), so a
        benchmark's first calls find their callers without waiting for the refresh schedule."""
        from activities.caller_index import rebuild_index
        from callbridge.clients.salesforce.connection import SalesforceConnection

        return rebuild_index(SalesforceConnection(self.settings), self.settings)

    def provision_genesys(self) -> list:
        """What docs/deploy.md has an admin do, on the emulator: `callbridge genesys install`, then
        the shipped workflow published (the emulator's stand-in for `archy publish`), then install
        again so it links the trigger to the workflow. Every call then ends through the trigger."""
        from callbridge.ops.genesys_install import WORKFLOW_FILE, install

        s = self.settings
        install(s)
        httpx.post(f"{s.genesys_api_url}/_emulator/flows/publish",
                   json={"file": str(WORKFLOW_FILE.relative_to(REPO))}, timeout=10).raise_for_status()
        return install(s)

    def stop_relay_webhook(self) -> None:
        """The seed's signed webhook is what a relay could send, not Genesys: off for the demo."""
        httpx.post(f"{self.settings.genesys_api_url}/_emulator/config", json={"webhookUrl": None},
                   timeout=10).raise_for_status()

    def start_worker(self) -> ManagedProcess:
        precompile_workflows()
        return self._start(ManagedProcess(
            "worker", [sys.executable, str(REPO / "worker.py")], env=settings_env(self.settings),
            log_path=self._log("worker"), cwd=REPO,
        ))

    def start_starter(self) -> ManagedProcess:
        s = self.settings
        return self._start(ManagedProcess(
            "starter", python_module("starter.app"), env=settings_env(s),
            ready_url=f"http://{s.starter_host}:{s.starter_port}/healthz", log_path=self._log("starter"), cwd=REPO,
        ))

    def start_listener(self) -> ManagedProcess:
        """`callbridge listen`: Salesforce changes to the index and Genesys in seconds."""
        return self._start(ManagedProcess(
            "listener", python_module("callbridge.cli", "listen"), env=settings_env(self.settings),
            log_path=self._log("listener"), cwd=REPO,
        ))

    def start_all(self, contacts: int) -> None:
        """The whole local product: dev server, a seeded Salesforce org, Genesys, worker, starter."""
        self.start_temporal()
        self.seed_salesforce(contacts)
        self.start_salesforce()
        self.start_genesys()
        self.start_worker()
        self.start_starter()
        self.start_listener()

    def salesforce_client(self):
        """A plain simple-salesforce client (not Callbridge's connector), for seeding and checks."""
        import requests
        from simple_salesforce import Salesforce

        s = self.settings
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
        session.verify = str(s.salesforce_ca_file)
        token = session.post(f"{s.salesforce_login_url}/services/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": s.salesforce_client_id,
            "client_secret": s.salesforce_client_secret.get_secret_value()}).json()["access_token"]
        return Salesforce(instance_url=s.salesforce_instance_url, session_id=token, session=session,
                          version=s.salesforce_api_version)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
