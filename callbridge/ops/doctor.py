"""`callbridge doctor`: can this configuration work? Each check says what to fix.

Checks the state store, Temporal (namespace, search attributes), Salesforce (token, object
permissions, the custom fields Callbridge writes and reads) and Genesys Cloud (token, access
to recordings). Read-only everywhere: it never creates or changes a record.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Callable

from callbridge.core.settings import Settings

# What Callbridge needs per object: permissions, and custom fields with the access they need.
SALESFORCE_OBJECTS: dict[str, dict] = {
    "Task": {"permissions": ("createable", "updateable", "queryable"),
             "fields": {"Genesys_Conversation_Id__c": ("createable", "updateable", "externalId")}},
    "Contact": {"permissions": ("queryable", "updateable", "createable"),
                "fields": {"Custom_Tier__c": (), "Last_Call_Date__c": ("updateable",),
                           "Last_Call_Duration__c": ("updateable",)}},
    "Account": {"permissions": ("queryable", "createable"), "fields": {}},
}


@dataclass
class Check:
    system: str
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_store(settings: Settings) -> list[Check]:
    from sqlalchemy import text

    from callbridge.store.db import get_engine

    try:
        with get_engine(settings.database_url).connect() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:
        return [Check("store", "state store", False, f"{type(exc).__name__}: {str(exc)[:200]}",
                      "Set CALLBRIDGE_DATABASE_URL to a reachable SQLite path or PostgreSQL URL "
                      "(postgresql+psycopg://user:password@host:5432/db) the user may create tables in.")]
    return [Check("store", "state store", True, f"reachable, schema at revision {head}")]


async def check_temporal(settings: Settings) -> list[Check]:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from callbridge.core.temporal import SEARCH_ATTRIBUTES, connect

    try:
        client = await asyncio.wait_for(connect(settings), 10)
    except Exception as exc:
        return [Check("temporal", "connection", False, f"{type(exc).__name__}: {str(exc)[:200]}",
                      f"Check CALLBRIDGE_TEMPORAL_ADDRESS ({settings.temporal_address}) and "
                      f"CALLBRIDGE_TEMPORAL_NAMESPACE ({settings.temporal_namespace}); the namespace must exist.")]
    checks = [Check("temporal", "connection", True, f"{settings.temporal_address}, namespace {settings.temporal_namespace}")]
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=settings.temporal_namespace))
        missing = sorted(set(SEARCH_ATTRIBUTES) - set(resp.custom_attributes))
    except Exception as exc:
        checks.append(Check("temporal", "search attributes", False, f"cannot list: {type(exc).__name__}",
                            "Grant the client operator access, or check the attributes by hand."))
        return checks
    if missing:
        cmds = "; ".join(f"temporal operator search-attribute create --name {n} --type {SEARCH_ATTRIBUTES[n]}"
                         for n in missing)
        checks.append(Check("temporal", "search attributes", False, f"missing: {', '.join(missing)}", f"Run: {cmds}"))
    else:
        checks.append(Check("temporal", "search attributes", True, "all registered"))
    return checks


def check_salesforce(settings: Settings) -> list[Check]:
    from callbridge.clients.salesforce.connection import SalesforceConnection

    sf = SalesforceConnection(settings)
    jwt = settings.salesforce_auth_flow == "jwt_bearer"
    try:
        sf.client()
    except Exception as exc:
        fix = ("Check CALLBRIDGE_SALESFORCE_LOGIN_URL, CLIENT_ID (the connected app's consumer key), USERNAME "
               "(the integration user, pre-authorized for the app: admin-approved users, its profile or "
               "permission set) and JWT_KEY_FILE (the private key of the certificate uploaded to the app)."
               if jwt else
               "Check CALLBRIDGE_SALESFORCE_LOGIN_URL, CLIENT_ID and CLIENT_SECRET: the connected app "
               "needs the client credentials flow enabled with a run-as integration user.")
        return [Check("salesforce", "credentials", False, f"{type(exc).__name__}: {str(exc)[:200]}", fix)]
    how = f"JWT bearer as {settings.salesforce_username}" if jwt else "client credentials"
    checks = [Check("salesforce", "credentials", True, f"token from {settings.salesforce_login_url} ({how})")]
    for obj, need in SALESFORCE_OBJECTS.items():
        try:
            desc = sf.restful(f"sobjects/{obj}/describe")
        except Exception as exc:
            checks.append(Check("salesforce", f"{obj} access", False, f"describe failed: {type(exc).__name__}",
                                f"Give the integration user's permission set read access to {obj}."))
            continue
        lacking = [p for p in need["permissions"] if not desc.get(p)]
        checks.append(Check(
            "salesforce", f"{obj} permissions", not lacking,
            "ok" if not lacking else f"the integration user lacks: {', '.join(lacking)}",
            "" if not lacking else f"Grant {', '.join(lacking)} on {obj} in the integration user's permission set."))
        fields = {f["name"]: f for f in desc.get("fields", [])}
        for name, access in need["fields"].items():
            field = fields.get(name)
            if field is None:
                checks.append(Check("salesforce", f"{obj}.{name}", False, "missing or not visible",
                                    "Deploy deploy/salesforce (sf project deploy start) and grant field-level "
                                    f"security on {obj}.{name} to the integration user."))
                continue
            lacking = [a for a in access if not field.get(a)]
            checks.append(Check(
                "salesforce", f"{obj}.{name}", not lacking,
                "ok" if not lacking else f"not {', '.join(lacking)}",
                "" if not lacking else f"Make {obj}.{name} {', '.join(lacking)} for the integration user "
                "(field-level security; the conversation id must be an External ID)."))
    return checks


async def check_genesys(settings: Settings) -> list[Check]:
    import httpx

    from callbridge.clients.genesys.connection import GenesysConnection

    genesys = GenesysConnection(settings)
    try:
        try:
            me = await genesys.get("/api/v2/tokens/me", timeout=10)
        except httpx.HTTPStatusError as exc:  # the token endpoint refused the client
            return [Check("genesys", "credentials", False, f"token refused ({exc.response.status_code})",
                          "Check CALLBRIDGE_GENESYS_CLIENT_ID and CLIENT_SECRET (a Client Credentials OAuth client).")]
        except Exception as exc:
            return [Check("genesys", "credentials", False, f"{type(exc).__name__}: {str(exc)[:200]}",
                          "Check CALLBRIDGE_GENESYS_LOGIN_URL / API_URL for your region and the OAuth client.")]
        if me.status_code in (400, 401):
            return [Check("genesys", "credentials", False, f"token refused ({me.status_code})",
                          "Check CALLBRIDGE_GENESYS_CLIENT_ID and CLIENT_SECRET (a Client Credentials OAuth client).")]
        if me.status_code >= 400:
            return [Check("genesys", "credentials", False, f"/api/v2/tokens/me answered {me.status_code}",
                          "Check the OAuth client and the API region.")]
        checks = [Check("genesys", "credentials", True, "token accepted")]
        # A conversation that cannot exist: 404 means we may read recordings, 403 that we may not.
        probe = await genesys.get(f"/api/v2/conversations/{uuid.uuid4()}/recordings", timeout=10)
        if probe.status_code == 403:
            checks.append(Check("genesys", "recordings access", False, "403 on conversation recordings",
                                "Give the OAuth client a role with recording:recording:view and "
                                "conversation:communication:view (Admin > Roles, then the client's Roles tab)."))
        else:
            checks.append(Check("genesys", "recordings access", probe.status_code < 500,
                                f"probe answered {probe.status_code}",
                                "" if probe.status_code < 500 else "Genesys answered a server error: retry later."))
        return checks
    finally:
        await genesys.aclose()


def check_secrets(settings: Settings) -> list[Check]:
    """The same rule the worker and the starter refuse to start on (callbridge/core/secrets_policy.py)."""
    from callbridge.core.secrets_policy import DEMO_ENV, demo_mode, weak_secrets

    found = weak_secrets(settings)
    if not found:
        return [Check("secrets", "secrets", True, "no demo value, none too short")]
    if demo_mode():
        return [Check("secrets", "secrets", True, f"{len(found)} demo value(s): fine in demo mode ({DEMO_ENV}=1) only")]
    return [Check("secrets", secret.variable, False, why, secret.generate[0].upper() + secret.generate[1:])
            for secret, why in found]


async def _change_events(settings: Settings) -> list[Check]:
    from callbridge.ops.doctor_cdc import check_change_events

    return await check_change_events(settings)


def run_checks(settings: Settings) -> list[Check]:
    async def _async_checks() -> list[Check]:
        return [*(await check_temporal(settings)), *(await check_genesys(settings))]

    checks: list[Check] = []
    guarded: list[tuple[str, Callable[[], list[Check]]]] = [
        ("secrets", lambda: check_secrets(settings)),
        ("store", lambda: check_store(settings)),
        ("salesforce", lambda: check_salesforce(settings)),
        ("temporal+genesys", lambda: asyncio.run(_async_checks())),
        ("salesforce", lambda: asyncio.run(_change_events(settings))),
    ]
    for system, fn in guarded:
        try:
            checks += fn()
        except Exception as exc:  # one broken check must not hide the others' answers
            checks.append(Check(system, "check", False, f"{type(exc).__name__}: {str(exc)[:200]}", "See the error."))
    order = {"secrets": -1, "store": 0, "temporal": 1, "salesforce": 2, "genesys": 3}
    return sorted(checks, key=lambda c: order.get(c.system, 9))
