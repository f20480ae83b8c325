"""The benches' stack: settings on free ports, the local stack with a seeded org, and the
emulators' side doors (setup and request counters), not Callbridge's connectors."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from devstack.processes import free_port
from callbridge.core.settings import Settings
from devstack.stack import LocalStack

NO_LIMIT = 10**9  # the Genesys emulator's --rate-limit must be positive: "no budget" is a limit never reached
GC_BULK = "/api/v2/externalcontacts/bulk/contacts"


def bench_settings(var: Path, task_queue: str, **overrides: Any) -> Settings:
    """A stack of the bench's own under `var`: every port free (the emulators', the dev server's,
    the starter's, Pub/Sub's, the worker's metrics), so a bench runs beside the tests, the demo
    and another bench."""
    sf, gc, temporal, ui, starter, pubsub, metrics, sdk_metrics = (free_port() for _ in range(8))
    return Settings(**{
        "var_dir": var, "temporal_address": f"127.0.0.1:{temporal}", "temporal_ui_url": f"http://127.0.0.1:{ui}",
        "temporal_task_queue": task_queue,
        "salesforce_instance_url": f"https://127.0.0.1:{sf}", "salesforce_login_url": f"https://127.0.0.1:{sf}",
        "salesforce_ca_file": var / "salesforce" / "ca.pem", "salesforce_pubsub_endpoint": f"127.0.0.1:{pubsub}",
        "genesys_api_url": f"http://127.0.0.1:{gc}", "genesys_login_url": f"http://127.0.0.1:{gc}",
        "starter_port": starter, "webhook_secret": "bench-webhook-secret",
        "database_url": f"sqlite:///{var / 'callbridge.db'}", "log_level": "WARNING",
        "metrics_host": "127.0.0.1", "worker_metrics_port": metrics, "worker_temporal_metrics_port": sdk_metrics,
        **overrides,
    })


class BenchStack(LocalStack):
    """The local stack as the data benches start it."""

    def start_seeded(self, contacts: int) -> None:
        """Temporal, a Salesforce org of `contacts`, an empty Genesys, the worker."""
        self.start_temporal()
        self.seed_salesforce(contacts)
        self.start_salesforce()
        self.start_genesys()
        empty_genesys(self.settings)
        self.start_worker()


def salesforce_verify(settings: Settings) -> ssl.SSLContext:
    """The Salesforce emulator's own CA (it writes it on first start)."""
    return ssl.create_default_context(cafile=str(settings.salesforce_ca_file))


def salesforce_token(settings: Settings) -> str:
    """An access token by the client-credentials flow, as a connected app gets one."""
    resp = httpx.post(f"{settings.salesforce_login_url}/services/oauth2/token", verify=salesforce_verify(settings),
                      data={"grant_type": "client_credentials", "client_id": settings.salesforce_client_id,
                            "client_secret": settings.salesforce_client_secret.get_secret_value()})
    resp.raise_for_status()
    return resp.json()["access_token"]


def genesys_token(settings: Settings) -> str:
    """An access token by the client-credentials grant (POST /oauth/token, Basic client auth)."""
    resp = httpx.post(f"{settings.genesys_login_url}/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(settings.genesys_client_id, settings.genesys_client_secret.get_secret_value()))
    resp.raise_for_status()
    return resp.json()["access_token"]


def genesys_admin(settings: Settings, method: str, path: str, **kw: Any) -> dict[str, Any]:
    """The Genesys emulator's control API (/_emulator/…): stats, faults, resets."""
    resp = httpx.request(method, f"{settings.genesys_api_url}/_emulator/{path}", timeout=30, **kw)
    resp.raise_for_status()
    return resp.json()


def genesys_api_routes(settings: Settings) -> dict[str, int]:
    """Platform API requests (token calls too) the emulator answered since the last reset, by
    route; its control API left out."""
    counts = genesys_admin(settings, "GET", "stats")["requests"]
    return {route: n for route, n in counts.items() if " /api/v2/" in route or " /oauth/" in route}


def genesys_api_requests(settings: Settings) -> int:
    return sum(genesys_api_routes(settings).values())


def empty_genesys(settings: Settings) -> None:
    """The emulator seeds 40 demo external contacts: remove them, so the load starts empty."""
    base = settings.genesys_api_url
    headers = {"Authorization": f"Bearer {genesys_token(settings)}"}
    while True:
        ids = [c["id"] for c in httpx.get(f"{base}/api/v2/externalcontacts/scan/contacts", params={"limit": 200},
                                          headers=headers).json().get("entities", [])]
        if not ids:
            break
        httpx.post(f"{base}{GC_BULK}/remove", json={"entities": [{"id": i} for i in ids]},
                   headers=headers).raise_for_status()
    genesys_admin(settings, "POST", "ratelimit/reset")
