"""The long-running processes: `callbridge worker`, `starter`, `listen`."""

from __future__ import annotations


from callbridge.cli.output import console
from callbridge.core.settings import get_settings


def worker() -> None:
    """Run the worker: every workflow and activity on the task queue."""
    import worker as worker_module

    worker_module.main()


def starter() -> None:
    """Run the webhook starter (FastAPI) on CALLBRIDGE_STARTER_HOST:PORT."""
    from starter.app import main

    main()


def listen() -> None:
    """Act on Salesforce changes in seconds: Change Data Capture through the Pub/Sub API (until Ctrl-C)."""
    import asyncio

    from callbridge.cdc.listener import TOPICS, listen as run_listener
    from callbridge.core.logs import configure_logging
    from callbridge.core.secrets_policy import refuse_demo_secrets

    settings = get_settings()
    refuse_demo_secrets(settings)  # it holds the same Salesforce and Genesys secrets as the worker
    configure_logging(settings.log_level)
    console.print(f"listening to {', '.join(TOPICS)} at {settings.salesforce_pubsub_endpoint}")
    try:
        asyncio.run(run_listener(settings))
    except KeyboardInterrupt:
        pass
