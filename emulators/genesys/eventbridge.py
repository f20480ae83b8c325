"""The Amazon EventBridge path: Genesys's EventBridge integration puts the event on the partner
event bus, a rule sends it to an API destination (an HTTPS endpoint). The emulator plays both
halves: the envelope Genesys puts on the bus and the API destination's delivery of it.

Envelope (as Genesys's EventBridge events look; field notes and GenesysCloudBlueprints samples):
  {"version": "0", "id", "detail-type": "<topic with {id}>",
   "source": "aws.partner/genesys.com/cloud/{orgId}/{eventSourceSuffix}", "account", "time",
   "region", "resources": [], "detail": {"topicName": "<topic with the conversation id>",
   "version": "2", "eventBody": <the event>, "metadata": {"CorrelationId"}}}

Delivery, as the EventBridge user guide documents API destinations (eb-api-destinations.md,
awsdocs/amazon-eventbridge-user-guide; eb-rule-retry-policy):
  - POST (or the configured httpMethod) with User-Agent Amazon/EventBridge/ApiDestinations and
    Content-Type application/json; charset=utf-8, and the connection's authorization: an API key
    header (`auth.apiKey {name, value}`) or HTTP Basic (`auth.basic {username, password}`).
  - 5 s client timeout; a timed-out request is retried.
  - 429 and 5xx are retried; 1xx, 2xx, 3xx and other 4xx aren't. Connection errors are retried
    (the guide's "network conditions").
  - Retry policy: by default 24 hours and up to 185 retries (retryPolicy maximumEventAgeInSeconds
    60-86400, maximumRetryAttempts 0-185), exponential back-off with jitter; a Retry-After header
    is honoured when it asks for longer, and a negative one stops the retries. The back-off's
    base and cap aren't documented: the emulator uses 1 s doubling, capped at 5 minutes, with full
    jitter. Then the event is dropped (no dead-letter queue here).

Configured with POST /_emulator/config {"eventBridge": {...}}; each delivery is stored (kind
eventbridge_delivery) and shown in GET /_emulator/calls/{id} ("eventBridge").
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from .wire import iso, new_id, now, tls

log = logging.getLogger("emulators.genesys.eventbridge")

KIND = "eventbridge_delivery"
ATTEMPT_TIMEOUT = 5.0
BACKOFF_BASE, BACKOFF_CAP = 1.0, 300.0
DEFAULT_POLICY = {"maximumRetryAttempts": 185, "maximumEventAgeInSeconds": 86400}
HEADERS = {"User-Agent": "Amazon/EventBridge/ApiDestinations", "Content-Type": "application/json; charset=utf-8"}
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="eventbridge")
_rng = random.Random()


def check_config(value: Any) -> dict[str, Any] | None:
    """Validate POST /_emulator/config's eventBridge; ValueError names what is wrong."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not value["url"]:
        raise ValueError("eventBridge needs url (the API destination endpoint)")
    known = {"url", "httpMethod", "auth", "account", "region", "eventSourceSuffix", "retryPolicy"}
    if set(value) - known:
        raise ValueError(f"eventBridge: unknown keys {sorted(set(value) - known)}")
    auth = value.get("auth")
    ok_auth = auth is None or (isinstance(auth, dict) and len(auth) == 1 and (
        (isinstance(auth.get("apiKey"), dict) and set(auth["apiKey"]) == {"name", "value"})
        or (isinstance(auth.get("basic"), dict) and set(auth["basic"]) == {"username", "password"})))
    if not ok_auth:
        raise ValueError('eventBridge.auth must be {"apiKey": {"name", "value"}} or {"basic": {"username", "password"}}')
    policy = {**DEFAULT_POLICY, **(value.get("retryPolicy") or {})}
    attempts, age = policy["maximumRetryAttempts"], policy["maximumEventAgeInSeconds"]
    if set(policy) != set(DEFAULT_POLICY) or not isinstance(attempts, int) or not 0 <= attempts <= 185 \
            or not isinstance(age, int) or not 60 <= age <= 86400:
        raise ValueError("eventBridge.retryPolicy: maximumRetryAttempts 0-185, maximumEventAgeInSeconds 60-86400")
    return {**value, "retryPolicy": policy}


def public(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The config without secrets."""
    if not config:
        return None
    shown = {k: v for k, v in config.items() if k != "auth"}
    auth = config.get("auth") or {}
    if "apiKey" in auth:
        shown["auth"] = {"apiKey": {"name": auth["apiKey"]["name"], "value": "*" * 8}}
    elif "basic" in auth:
        shown["auth"] = {"basic": {"username": auth["basic"]["username"], "password": "*" * 8}}
    return shown


def envelope(context, detail_type: str, topic: str, event: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    org = context.store.meta_get("org_id")
    return {
        "version": "0", "id": new_id(), "detail-type": detail_type,
        "source": f"aws.partner/genesys.com/cloud/{org}/{config.get('eventSourceSuffix', 'callbridge')}",
        "account": config.get("account", "123456789012"), "time": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": config.get("region", "us-east-1"), "resources": [],
        "detail": {"topicName": topic, "version": "2", "eventBody": event, "metadata": {"CorrelationId": new_id()}},
    }


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def deliver(context, config: dict[str, Any], env: dict[str, Any], conversation_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Deliver one envelope with the retry policy; record and return the delivery."""
    store = context.store
    policy = config["retryPolicy"]
    status: dict[str, Any] = {"id": env["id"], "conversationId": conversation_id, "url": config["url"],
                              "state": "delivering", "attempts": 0, "log": []}
    headers = dict(HEADERS)
    auth = config.get("auth") or {}
    if "apiKey" in auth:
        headers[auth["apiKey"]["name"]] = auth["apiKey"]["value"]
    basic = (auth["basic"]["username"], auth["basic"]["password"]) if "basic" in auth else None
    body = httpx.Request("POST", "http://x", json=env).content  # the JSON as httpx encodes it
    started = time.monotonic()
    with httpx.Client(timeout=ATTEMPT_TIMEOUT, verify=tls()) as client:
        while True:
            status["attempts"] += 1
            wait = None
            try:
                r = client.request(config.get("httpMethod", "POST"), config["url"], content=body, headers=headers,
                                   auth=basic)
                entry = {"at": iso(now()), "status": r.status_code, "error": None}
                retry = r.status_code == 429 or r.status_code >= 500
                wait = _retry_after(r) if retry else None
                done = "delivered" if 200 <= r.status_code < 300 else None
            except httpx.HTTPError as exc:
                entry = {"at": iso(now()), "status": None, "error": type(exc).__name__}
                retry, done = True, None
            status["log"].append(entry)
            store.put(KIND, env["id"], status)
            if done:
                status["state"] = done
                break
            retries = status["attempts"] - 1
            backoff = _rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** retries))
            if wait is not None and wait < 0:
                retry = False
            delay = max(backoff, wait or 0.0)
            out_of_time = time.monotonic() - started + delay > policy["maximumEventAgeInSeconds"]
            if not retry or retries >= policy["maximumRetryAttempts"] or out_of_time:
                status["state"] = "failed" if not retry else "dropped"
                break
            time.sleep(delay)
    store.put(KIND, env["id"], status)
    return status


def _deliver_logged(context, config, env, conversation_id) -> None:  # type: ignore[no-untyped-def]
    try:
        deliver(context, config, env, conversation_id)
    except Exception:  # a background thread has no caller to raise to
        log.exception("EventBridge delivery for %s crashed", conversation_id)


def submit(context, detail_type: str, topic: str, event: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """When an API destination is configured: deliver the event's envelope in the background."""
    config = context.runtime.event_bridge()
    if not config:
        return
    env = envelope(context, detail_type, topic, event, config)
    _executor.submit(_deliver_logged, context, config, env, event["conversationId"])


def deliveries(store, conversation_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [d for d in store.containing(KIND, conversation_id) if d["conversationId"] == conversation_id]
