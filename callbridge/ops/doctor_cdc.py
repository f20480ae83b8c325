"""`callbridge doctor`: can the listener subscribe to Contact and Account change events?"""

from __future__ import annotations

import asyncio

import grpc

from callbridge.core.settings import Settings

FIX = ("Enable Change Data Capture for Contact and Account (deploy/salesforce: ChangeEvents channel "
       "members), give the integration user the permissions in docs/deploy.md (\"Change Data Capture\"), "
       "and check CALLBRIDGE_SALESFORCE_PUBSUB_ENDPOINT.")


async def check_change_events(settings: Settings) -> list:
    from callbridge.clients.salesforce.connection import SalesforceConnection
    from callbridge.clients.salesforce.pubsub import TOPICS, PubSubClient
    from callbridge.ops.doctor import Check

    pubsub = PubSubClient(settings, SalesforceConnection(settings))
    checks = []
    try:
        try:
            meta = await pubsub.metadata()
        except Exception as exc:  # the credentials check above says what is wrong with the login
            return [Check("salesforce", f"subscription {topic}", False, f"no session: {type(exc).__name__}",
                          "Fix the Salesforce credentials first.") for topic in TOPICS]
        for topic in TOPICS:
            name = f"subscription {topic}"
            try:
                info = await asyncio.wait_for(pubsub.topic(topic, meta), 10)
                if not info.can_subscribe:
                    checks.append(Check("salesforce", name, False, "the user may not subscribe", FIX))
                    continue
                stream = pubsub.subscribe(topic, None, meta).__aiter__()
                try:
                    # An open stream with nothing to deliver yet is a working subscription.
                    await asyncio.wait_for(stream.__anext__(), 2.0)
                except asyncio.TimeoutError:
                    pass
                finally:
                    await stream.aclose()
                checks.append(Check("salesforce", name, True, f"subscribed at {settings.salesforce_pubsub_endpoint}"))
            except (grpc.aio.AioRpcError, asyncio.TimeoutError) as exc:
                detail = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) \
                    else "no answer within 10 s"
                checks.append(Check("salesforce", name, False, detail[:200], FIX))
    finally:
        await pubsub.close()
    return checks
