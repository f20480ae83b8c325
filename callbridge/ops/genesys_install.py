"""`callbridge genesys install`: provision a Genesys Cloud org for Callbridge through the Platform API.

Idempotent: everything is found by name and updated in place; a second run changes nothing but
rewrites the two credentials from the settings (their secrets can't be read back to compare).
  1. two Basic Auth credentials (POST/PUT /api/v2/integrations/credentials, type basicAuth):
     the screen pop's (CALLBRIDGE_SCREENPOP_USERNAME/PASSWORD) and the call-ended events'
     (CALLBRIDGE_EVENTS_USERNAME/PASSWORD);
  2. two Web Services Data Actions integrations (POST /api/v2/integrations, integrationType
     custom-rest-actions; PUT …/{id}/config/current with the credential; PATCH intendedState
     ENABLED): "Callbridge Web Services" (the lookups) and "Callbridge Call Events" (call ended).
     Two, because an integration holds one credential;
  3. the data actions of deploy/genesys/data-actions/ (POST /api/v2/integrations/actions, a
     PostActionInput; PATCH config when it changed), their URLs on CALLBRIDGE_PUBLIC_URL;
  4. the Architect flows: Archy is the one step the API can't do, so it prints the
     `archy publish` command for each file under deploy/genesys/flows/;
  5. the Process Automation trigger deploy/genesys/triggers/call-ended.json
     (POST/PUT /api/v2/processautomation/triggers), targeting the published workflow it finds
     with GET /api/v2/flows; until that workflow is published the step waits, and a run after
     `archy publish` links it.

Authenticates with the admin OAuth client (client credentials): CALLBRIDGE_GENESYS_ADMIN_CLIENT_ID /
_SECRET, or the product's own client when those are unset (the demo). Failures are InstallError:
one line naming what Genesys said, never a traceback.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from callbridge.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "genesys"
LOOKUPS_INTEGRATION = "Callbridge Web Services"
EVENTS_INTEGRATION = "Callbridge Call Events"
SCREENPOP_CREDENTIAL = "Callbridge screen pop"
EVENTS_CREDENTIAL = "Callbridge call-ended events"
ACTIONS = {  # export file -> the integration that holds it
    "lookup-contact-by-phone.json": LOOKUPS_INTEGRATION,
    "lookup-contact-by-account.json": LOOKUPS_INTEGRATION,
    "callbridge-call-ended.json": EVENTS_INTEGRATION,
}
WORKFLOW_FILE = DEPLOY / "flows" / "call-ended-workflow.yaml"
TRIGGER_FILE = DEPLOY / "triggers" / "call-ended.json"
PLACEHOLDER_HOST = "https://CALLBRIDGE_HOST"
MAX_429_WAITS = 5


class InstallError(Exception):
    """An expected failure: Genesys unreachable or refusing. str() is the one line to show."""


@dataclass
class Step:
    kind: str     # credential, integration, action, flow, trigger
    name: str
    action: str   # create, update, unchanged, run, waiting
    detail: str = ""


class Admin:
    """The Platform API with the admin client's token; `dry_run` reads but never writes."""

    def __init__(self, settings: Settings, dry_run: bool) -> None:
        self.settings, self.dry_run = settings, dry_run
        self.client = httpx.Client(base_url=settings.genesys_api_url, timeout=30)
        self._token: str | None = None

    def _login(self) -> str:
        s = self.settings
        client_id = s.genesys_admin_client_id or s.genesys_client_id
        secret = (s.genesys_admin_client_secret or s.genesys_client_secret).get_secret_value()
        url = f"{s.genesys_login_url.rstrip('/')}/oauth/token"
        try:
            r = httpx.post(url, data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=30)
        except httpx.HTTPError as exc:
            raise InstallError(f"Genesys login unreachable at {url}: {type(exc).__name__}") from None
        if r.status_code != 200:
            raise InstallError(f"Genesys refused the admin OAuth client {client_id!r} ({r.status_code}): "
                               "check CALLBRIDGE_GENESYS_ADMIN_CLIENT_ID / _SECRET")
        return r.json()["access_token"]

    def call(self, method: str, path: str, body: Any = None, params: dict | None = None,
             missing_ok: bool = False) -> Any:
        if self._token is None:
            self._token = self._login()
        for _ in range(MAX_429_WAITS + 1):
            try:
                r = self.client.request(method, path, json=body, params=params,
                                        headers={"Authorization": f"Bearer {self._token}"})
            except httpx.HTTPError as exc:
                raise InstallError(f"Genesys unreachable at {self.settings.genesys_api_url}: "
                                   f"{type(exc).__name__}") from None
            if r.status_code != 429:
                break
            time.sleep(min(60.0, float(r.headers.get("retry-after", "1") or 1)))
        if r.status_code == 404 and missing_ok:
            return None
        if r.status_code >= 400:
            try:
                message = r.json().get("message") or r.text
            except ValueError:
                message = r.text
            hint = " (the OAuth client lacks a permission; see docs/deploy.md)" if r.status_code == 403 else ""
            raise InstallError(f"Genesys refused {method} {path}: {r.status_code} {message[:200]}{hint}")
        return r.json() if r.content else None

    def write(self, method: str, path: str, body: Any) -> Any:
        return None if self.dry_run else self.call(method, path, body)

    def every(self, path: str, params: dict | None = None) -> list[dict[str, Any]]:
        """All entities of a paged listing (pageNumber paging)."""
        out, page = [], 1
        while True:
            listing = self.call("GET", path, params={**(params or {}), "pageSize": 100, "pageNumber": page})
            out += listing.get("entities") or []
            if page >= (listing.get("pageCount") or 1):
                return out
            page += 1


# --- the request bodies (SDK models: Credential, CreateIntegrationRequest, IntegrationConfiguration,
# Integration, PostActionInput, UpdateActionInput, CreateTriggerRequest, UpdateTriggerRequest) ------


def credential_body(name: str, username: str, password: str) -> dict[str, Any]:
    return {"name": name, "type": {"name": "basicAuth"}, "credentialFields": {"userName": username, "password": password}}


def integration_body(name: str) -> dict[str, Any]:
    return {"name": name, "integrationType": {"id": "custom-rest-actions"}}


def config_body(name: str, current: dict[str, Any], credential_id: str | None) -> dict[str, Any]:
    return {"name": name, "version": current["version"], "properties": current.get("properties") or {},
            "advanced": current.get("advanced") or {}, "notes": current.get("notes") or "",
            "credentials": {"basicAuth": {"id": credential_id}}}


def trigger_body(shipped: dict[str, Any], workflow_id: str, version: int | None = None) -> dict[str, Any]:
    body = {**shipped, "target": {**shipped["target"], "id": workflow_id}}
    return body if version is None else {**body, "version": version}


def _credential(admin: Admin, steps: list[Step], name: str, username: str, password: str) -> str | None:
    body = credential_body(name, username, password)
    found = next((c for c in admin.every("/api/v2/integrations/credentials") if c["name"] == name), None)
    if found is None:
        steps.append(Step("credential", name, "create", f"basicAuth, user {username}"))
        return (admin.write("POST", "/api/v2/integrations/credentials", body) or {}).get("id")
    # Secrets can't be read back to compare: the credential is rewritten with the settings' values.
    steps.append(Step("credential", name, "update", f"basicAuth, user {username}"))
    admin.write("PUT", f"/api/v2/integrations/credentials/{found['id']}", body)
    return found["id"]


def _integration(admin: Admin, steps: list[Step], name: str, credential_id: str | None) -> str | None:
    found = next((i for i in admin.every("/api/v2/integrations") if i["name"] == name
                  and (i.get("integrationType") or {}).get("id") == "custom-rest-actions"), None)
    if found is None:
        steps.append(Step("integration", name, "create", "Web Services Data Actions, enabled"))
        created = admin.write("POST", "/api/v2/integrations", integration_body(name))
        if created is None:
            return None
        integration_id, config = created["id"], admin.call("GET", f"/api/v2/integrations/{created['id']}/config/current")
        state = "DISABLED"
    else:
        integration_id = found["id"]
        config = admin.call("GET", f"/api/v2/integrations/{integration_id}/config/current")
        state = found.get("intendedState")
    current = ((config.get("credentials") or {}).get("basicAuth") or {}).get("id")
    changes = []
    if config.get("name") != name or (credential_id and current != credential_id):
        changes.append("credential")
        admin.write("PUT", f"/api/v2/integrations/{integration_id}/config/current",
                    config_body(name, config, credential_id))
    if state != "ENABLED":
        changes.append("enabled")
        admin.write("PATCH", f"/api/v2/integrations/{integration_id}", {"intendedState": "ENABLED"})
    if found is not None:
        steps.append(Step("integration", name, "update" if changes else "unchanged", ", ".join(changes)))
    return integration_id


def action_body(export: dict[str, Any], integration_name: str, integration_id: str, public_url: str) -> dict[str, Any]:
    """The PostActionInput for a data-action export, its URL on the starter's public URL."""
    config = json.loads(json.dumps(export["config"]))
    request = config["request"]
    request["requestUrlTemplate"] = request["requestUrlTemplate"].replace(PLACEHOLDER_HOST, public_url.rstrip("/"))
    return {"category": integration_name, "name": export["name"], "integrationId": integration_id,
            "config": config, "contract": export["contract"], "secure": export.get("secure", False)}


def _action(admin: Admin, steps: list[Step], export: dict[str, Any], integration_name: str,
            integration_id: str | None) -> None:
    name = export["name"]
    body = action_body(export, integration_name, integration_id or "(new)", admin.settings.public_base_url)
    found = None
    if integration_id is not None:
        found = next((a for a in admin.every("/api/v2/integrations/actions", {"name": name, "includeConfig": "true"})
                      if a["integrationId"] == integration_id), None)
    url = body["config"]["request"]["requestUrlTemplate"]
    if found is None:
        steps.append(Step("action", name, "create", url))
        if integration_id is not None:
            admin.write("POST", "/api/v2/integrations/actions", body)
        return
    if found.get("contract", {}).get("input", {}).get("inputSchema") != body["contract"]["input"]["inputSchema"] \
            or found.get("contract", {}).get("output", {}).get("successSchema") != body["contract"]["output"]["successSchema"]:
        # A published action's contract changes only through a draft, then its publication.
        steps.append(Step("action", name, "update", f"{url} (new contract: draft, then publish)"))
        if not admin.dry_run:
            path = f"/api/v2/integrations/actions/{found['id']}/draft"
            draft = admin.call("GET", path, missing_ok=True) or admin.call("POST", path)
            draft = admin.call("PATCH", path, {k: body[k] for k in ("category", "name", "config", "contract", "secure")}
                               | {"version": draft["version"]})
            admin.call("POST", f"{path}/publish", {"version": draft["version"]})
        return
    if found.get("config") != body["config"]:
        steps.append(Step("action", name, "update", url))
        admin.write("PATCH", f"/api/v2/integrations/actions/{found['id']}",
                    {"config": body["config"], "version": found["version"]})
    else:
        steps.append(Step("action", name, "unchanged", url))


def _workflow_id(admin: Admin, name: str) -> str | None:
    flows = admin.call("GET", "/api/v2/flows", params={"type": "workflow", "name": name, "pageSize": 25})
    found = next((f for f in flows.get("entities") or [] if f["name"] == name and f.get("publishedVersion")), None)
    return found["id"] if found else None


def _trigger(admin: Admin, steps: list[Step], workflow_name: str) -> None:
    shipped = json.loads(TRIGGER_FILE.read_text(encoding="utf-8"))
    name = shipped["name"]
    workflow_id = _workflow_id(admin, workflow_name)
    if workflow_id is None:
        steps.append(Step("trigger", name, "waiting", f"publish the workflow {workflow_name!r} "
                          "(archy publish, above), then run `callbridge genesys install` again"))
        return
    wanted = trigger_body(shipped, workflow_id)
    listing = admin.call("GET", "/api/v2/processautomation/triggers", params={"topicName": shipped["topicName"]})
    found = next((t for t in listing.get("entities") or [] if t["name"] == name), None)
    if found is None:
        steps.append(Step("trigger", name, "create", f"-> workflow {workflow_id}"))
        admin.write("POST", "/api/v2/processautomation/triggers", wanted)
        return
    same = all(found.get(k) == v for k, v in wanted.items())
    steps.append(Step("trigger", name, "unchanged" if same else "update", f"-> workflow {workflow_id}"))
    if not same:
        admin.write("PUT", f"/api/v2/processautomation/triggers/{found['id']}",
                    trigger_body(shipped, workflow_id, found["version"]))


def install(settings: Settings, dry_run: bool = False) -> list[Step]:
    """Provision (or, dry_run, plan) the org; returns the steps. Raises InstallError."""
    admin = Admin(settings, dry_run)
    steps: list[Step] = []
    try:
        lookups_cred = _credential(admin, steps, SCREENPOP_CREDENTIAL, settings.screenpop_username,
                                   settings.screenpop_password.get_secret_value())
        events_cred = _credential(admin, steps, EVENTS_CREDENTIAL, settings.events_username,
                                  settings.events_password.get_secret_value())
        integration_ids = {LOOKUPS_INTEGRATION: _integration(admin, steps, LOOKUPS_INTEGRATION, lookups_cred),
                           EVENTS_INTEGRATION: _integration(admin, steps, EVENTS_INTEGRATION, events_cred)}
        for filename, integration_name in ACTIONS.items():
            export = json.loads((DEPLOY / "data-actions" / filename).read_text(encoding="utf-8"))
            _action(admin, steps, export, integration_name, integration_ids[integration_name])
        for flow in sorted((DEPLOY / "flows").glob("*.yaml")):
            steps.append(Step("flow", flow.name, "run", f"archy publish --file {flow.relative_to(REPO)}"))
        import yaml

        workflow_name = yaml.safe_load(WORKFLOW_FILE.read_text(encoding="utf-8"))["workflow"]["name"]
        _trigger(admin, steps, workflow_name)
    finally:
        admin.client.close()
    return steps


def print_steps(console, steps: list[Step], dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    """One line per step; the archy commands and a waiting trigger stand out."""
    verb = {"create": "would create" if dry_run else "created", "update": "would update" if dry_run else "updated",
            "unchanged": "unchanged", "waiting": "waiting", "run": "run"}
    if dry_run:
        console.print("Plan (--dry-run: nothing changed):")
    for step in steps:
        console.print(f"  {step.kind:<11} {step.name:<32} {verb[step.action]:<13} {step.detail}", soft_wrap=True)
