"""Integrations: the Web Services Data Actions integration, its credentials and its actions.

Real endpoints and SDK models (PureCloudPlatformClientV2 IntegrationsApi):
  POST/GET /api/v2/integrations                       CreateIntegrationRequest -> Integration,
                                                      IntegrationEntityListing
  GET/PATCH/DELETE /api/v2/integrations/{id}          Integration (PATCH: intendedState)
  GET/PUT /api/v2/integrations/{id}/config/current    IntegrationConfiguration (PUT needs the
                                                      current version; credentials {"basicAuth": {"id"}})
  POST/GET /api/v2/integrations/credentials           Credential -> CredentialInfo, CredentialInfoListing
  GET/PUT/DELETE /api/v2/integrations/credentials/{id}
  POST/GET /api/v2/integrations/actions               PostActionInput -> Action, ActionEntityListing
                                                      (config only with includeConfig=true)
  GET/PATCH/DELETE /api/v2/integrations/actions/{id}  UpdateActionInput (config, name, category; needs
                                                      the current version)
  POST/GET/PATCH/DELETE …/actions/{id}/draft          a draft of the action (UpdateDraftInput: config and
                                                      contract too; the draft's version)
  POST …/actions/{id}/draft/publish                   PublishDraftInput {version}: the draft becomes the
                                                      action (a published contract changes only this way)

Only the type `custom-rest-actions` (Web Services Data Actions) and the credential type
`basicAuth` (fields userName, password; the terraform provider's genesyscloud_integration_credential
example) are known: others are a 400. Credential secrets are never answered back.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from fastapi import APIRouter, Query, Request

from .context import ctx, stored
from .errors import GenesysError, bad_request, not_found
from .wire import iso, new_id, now, paged

router = APIRouter()

INTEGRATION, CREDENTIAL, ACTION = "integration", "integration_credential", "integration_action"
WEB_SERVICES = "custom-rest-actions"
BASIC_AUTH = "basicAuth"
_lock = threading.Lock()  # read-check-write of versions


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def _conflict(what: str) -> GenesysError:
    return GenesysError(409, f"The {what} version does not match the current version", "version.mismatch")


# --- integrations ------------------------------------------------------------------------------


def _render_integration(doc: dict[str, Any], store) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    state = doc["intendedState"]
    return {
        "id": doc["id"], "name": doc["config"]["name"],
        "integrationType": {"id": WEB_SERVICES, "name": "Web Services Data Actions",
                            "selfUri": f"/api/v2/integrations/types/{WEB_SERVICES}"},
        "notes": doc["config"].get("notes") or "", "intendedState": state,
        "config": {"current": _render_config(doc, store)},
        "reportedState": {"code": "ACTIVE" if state == "ENABLED" else "DISABLED", "effective": "",
                          "lastUpdated": doc["updated"]},
        "selfUri": f"/api/v2/integrations/{doc['id']}",
    }


def _render_config(doc: dict[str, Any], store) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    config = doc["config"]
    found = {key: store.get(CREDENTIAL, cid) for key, cid in config["credentials"].items()}
    creds = {key: _credential_info(cred) for key, cred in found.items() if cred is not None}
    return {
        "id": doc["id"], "name": config["name"], "version": config["version"],
        "properties": config["properties"], "advanced": config["advanced"], "notes": config["notes"],
        "credentials": creds, "selfUri": f"/api/v2/integrations/{doc['id']}/config/current",
    }


def _integration(request: Request, integration_id: str) -> dict[str, Any]:
    return stored(request, INTEGRATION, integration_id, "Integration")


@router.post("/api/v2/integrations")
async def post_integration(request: Request) -> dict[str, Any]:
    body = await _body(request)
    kind = (body.get("integrationType") or {}).get("id") if isinstance(body.get("integrationType"), dict) else None
    if kind != WEB_SERVICES:
        raise bad_request(f"integrationType.id must be {WEB_SERVICES!r}: the emulator has no other integration type",
                          "invalid.value")
    stamp = iso(now())
    doc = {"id": new_id(), "intendedState": "DISABLED", "updated": stamp, "config": {
        "name": str(body.get("name") or "Web Services Data Actions"), "version": 1, "properties": {},
        "advanced": {}, "notes": "", "credentials": {}}}
    ctx(request).store.put(INTEGRATION, doc["id"], doc)
    return _render_integration(doc, ctx(request).store)


@router.get("/api/v2/integrations")
def get_integrations(request: Request, pageSize: int = Query(25), pageNumber: int = Query(1)) -> dict[str, Any]:
    if pageSize > 100:
        raise bad_request("pageSize may not exceed 100", "invalid.value")
    docs = sorted(ctx(request).store.all(INTEGRATION), key=lambda d: d["config"]["name"].lower())
    return paged([_render_integration(d, ctx(request).store) for d in docs], pageSize, pageNumber, "/api/v2/integrations")


# --- credentials -------------------------------------------------------------------------------


def _credential_info(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": doc["id"], "name": doc["name"], "createdDate": doc["created"], "modifiedDate": doc["modified"],
            "type": {"name": doc["type"]}, "selfUri": f"/api/v2/integrations/credentials/{doc['id']}"}


def _credential_fields(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    kind = (body.get("type") or {}).get("name") if isinstance(body.get("type"), dict) else None
    if kind != BASIC_AUTH:
        raise bad_request(f"type.name must be {BASIC_AUTH!r}: the emulator has no other credential type",
                          "invalid.value")
    fields = body.get("credentialFields")
    if not isinstance(fields, dict) or not all(isinstance(fields.get(k), str) and fields.get(k)
                                               for k in ("userName", "password")):
        raise bad_request("credentialFields must hold userName and password", "invalid.value")
    if not isinstance(body.get("name"), str) or not body["name"]:
        raise bad_request("name is required", "invalid.value")
    return kind, {"userName": fields["userName"], "password": fields["password"]}


@router.post("/api/v2/integrations/credentials")
async def post_credential(request: Request) -> dict[str, Any]:
    body = await _body(request)
    kind, fields = _credential_fields(body)
    stamp = iso(now())
    doc = {"id": new_id(), "name": body["name"], "type": kind, "fields": fields, "created": stamp, "modified": stamp}
    ctx(request).store.put(CREDENTIAL, doc["id"], doc)
    return _credential_info(doc)


@router.get("/api/v2/integrations/credentials")
def get_credentials(request: Request, pageSize: int = Query(25), pageNumber: int = Query(1)) -> dict[str, Any]:
    docs = sorted(ctx(request).store.all(CREDENTIAL), key=lambda d: d["name"].lower())
    return paged([_credential_info(d) for d in docs], pageSize, pageNumber, "/api/v2/integrations/credentials")


def _credential(request: Request, credential_id: str) -> dict[str, Any]:
    return stored(request, CREDENTIAL, credential_id, "Credential")


@router.get("/api/v2/integrations/credentials/{credentialId}")
def get_credential(request: Request, credentialId: str) -> dict[str, Any]:
    doc = _credential(request, credentialId)
    # A Credential, without its secret fields.
    return {"id": doc["id"], "name": doc["name"], "type": {"name": doc["type"]},
            "selfUri": f"/api/v2/integrations/credentials/{doc['id']}"}


@router.put("/api/v2/integrations/credentials/{credentialId}")
async def put_credential(request: Request, credentialId: str) -> dict[str, Any]:
    body = await _body(request)
    doc = _credential(request, credentialId)
    kind, fields = _credential_fields(body)
    doc.update(name=body["name"], type=kind, fields=fields, modified=iso(now()))
    ctx(request).store.put(CREDENTIAL, doc["id"], doc)
    return _credential_info(doc)


@router.delete("/api/v2/integrations/credentials/{credentialId}", status_code=204)
def delete_credential(request: Request, credentialId: str) -> None:
    ctx(request).store.delete(CREDENTIAL, _credential(request, credentialId)["id"])


# --- actions -----------------------------------------------------------------------------------


def _render_action(doc: dict[str, Any], include_config: bool = True) -> dict[str, Any]:
    out = {"id": doc["id"], "name": doc["name"], "integrationId": doc["integrationId"], "category": doc["category"],
           "contract": {"input": {"inputSchema": doc["contract"]["input"]["inputSchema"]},
                        "output": {"successSchema": doc["contract"]["output"]["successSchema"]}},
           "version": doc["version"], "secure": doc["secure"], "selfUri": f"/api/v2/integrations/actions/{doc['id']}"}
    if include_config:
        out["config"] = doc["config"]
    return out


def _check_config(config: Any) -> dict[str, Any]:
    request = config.get("request") if isinstance(config, dict) else None
    if not isinstance(request, dict) or not isinstance(request.get("requestUrlTemplate"), str) \
            or request.get("requestType") not in ("GET", "PUT", "POST", "PATCH", "DELETE"):
        raise bad_request("config.request needs requestUrlTemplate and requestType", "invalid.value")
    if not isinstance(config.get("response"), dict):
        raise bad_request("config.response is required", "invalid.value")
    return config


def _check_contract(contract: Any) -> dict[str, Any]:
    try:
        schema_in = contract["input"]["inputSchema"]
        schema_out = contract["output"]["successSchema"]
    except (KeyError, TypeError):
        raise bad_request("contract needs input.inputSchema and output.successSchema", "invalid.value") from None
    if not isinstance(schema_in, dict) or not isinstance(schema_out, dict):
        raise bad_request("contract schemas must be JSON objects", "invalid.value")
    return {"input": {"inputSchema": schema_in}, "output": {"successSchema": schema_out}}


def _action(request: Request, action_id: str) -> dict[str, Any]:
    return stored(request, ACTION, action_id, "Action")


@router.post("/api/v2/integrations/actions")
async def post_action(request: Request) -> dict[str, Any]:
    body = await _body(request)
    store = ctx(request).store
    for key in ("name", "integrationId"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise bad_request(f"{key} is required", "invalid.value")
    integration = store.get(INTEGRATION, body["integrationId"])
    if integration is None:
        raise bad_request(f"integrationId {body['integrationId']} is not an integration", "invalid.value")
    if any(a["integrationId"] == integration["id"] and a["name"] == body["name"] for a in store.all(ACTION)):
        raise GenesysError(409, f"An action named {body['name']!r} already exists in this integration", "conflict")
    doc = {"id": f"custom_-_{uuid.uuid4()}", "name": body["name"], "integrationId": integration["id"],
           "category": str(body.get("category") or integration["config"]["name"]),
           "config": _check_config(body.get("config")), "contract": _check_contract(body.get("contract")),
           "secure": bool(body.get("secure", False)), "version": 1}
    store.put(ACTION, doc["id"], doc)
    return _render_action(doc)


@router.get("/api/v2/integrations/actions")
def get_actions(request: Request, pageSize: int = Query(25), pageNumber: int = Query(1),
                category: str | None = Query(None), name: str | None = Query(None),
                includeConfig: bool = Query(False)) -> dict[str, Any]:
    docs = ctx(request).store.all(ACTION)
    if category is not None:
        docs = [d for d in docs if d["category"] == category]
    if name is not None:
        docs = [d for d in docs if d["name"] == name]
    docs.sort(key=lambda d: (d["category"].lower(), d["name"].lower()))
    return paged([_render_action(d, includeConfig) for d in docs], pageSize, pageNumber,
                 "/api/v2/integrations/actions")


@router.get("/api/v2/integrations/actions/{actionId}")
def get_action(request: Request, actionId: str, includeConfig: bool = Query(False)) -> dict[str, Any]:
    return _render_action(_action(request, actionId), includeConfig)


@router.patch("/api/v2/integrations/actions/{actionId}")
async def patch_action(request: Request, actionId: str) -> dict[str, Any]:
    body = await _body(request)
    with _lock:
        doc = _action(request, actionId)
        if body.get("version") != doc["version"]:
            raise _conflict("action")
        if "config" in body:
            doc["config"] = _check_config(body["config"])
        for key in ("name", "category"):
            if isinstance(body.get(key), str) and body[key]:
                doc[key] = body[key]
        doc["version"] += 1
        ctx(request).store.put(ACTION, doc["id"], doc)
    return _render_action(doc)


DRAFT = "integration_action_draft"


def _draft(request: Request, action_id: str) -> dict[str, Any]:
    _action(request, action_id)
    doc = ctx(request).store.get(DRAFT, action_id)
    if doc is None:
        raise not_found(f"Action {action_id} has no draft")
    return doc


@router.post("/api/v2/integrations/actions/{actionId}/draft")
def post_draft(request: Request, actionId: str) -> dict[str, Any]:
    store = ctx(request).store
    with _lock:
        action = _action(request, actionId)
        if store.get(DRAFT, actionId) is not None:
            raise GenesysError(409, f"Action {actionId} already has a draft", "conflict")
        draft = {**action, "version": 1}
        store.put(DRAFT, actionId, draft)
    return _render_action(draft)


@router.get("/api/v2/integrations/actions/{actionId}/draft")
def get_draft(request: Request, actionId: str) -> dict[str, Any]:
    return _render_action(_draft(request, actionId))


@router.patch("/api/v2/integrations/actions/{actionId}/draft")
async def patch_draft(request: Request, actionId: str) -> dict[str, Any]:
    body = await _body(request)
    with _lock:
        draft = _draft(request, actionId)
        if body.get("version") != draft["version"]:
            raise _conflict("draft")
        if "config" in body:
            draft["config"] = _check_config(body["config"])
        if "contract" in body:
            draft["contract"] = _check_contract(body["contract"])
        for key in ("name", "category"):
            if isinstance(body.get(key), str) and body[key]:
                draft[key] = body[key]
        if isinstance(body.get("secure"), bool):
            draft["secure"] = body["secure"]
        draft["version"] += 1
        ctx(request).store.put(DRAFT, actionId, draft)
    return _render_action(draft)


@router.post("/api/v2/integrations/actions/{actionId}/draft/publish")
async def publish_draft(request: Request, actionId: str) -> dict[str, Any]:
    body = await _body(request)
    store = ctx(request).store
    with _lock:
        draft = _draft(request, actionId)
        if body.get("version") != draft["version"]:
            raise _conflict("draft")
        action = _action(request, actionId)
        action.update({k: draft[k] for k in ("name", "category", "config", "contract", "secure")})
        action["version"] += 1
        store.put(ACTION, actionId, action)
        store.delete(DRAFT, actionId)
    return _render_action(action)


@router.delete("/api/v2/integrations/actions/{actionId}/draft", status_code=204)
def delete_draft(request: Request, actionId: str) -> None:
    ctx(request).store.delete(DRAFT, _draft(request, actionId)["id"])


@router.delete("/api/v2/integrations/actions/{actionId}", status_code=204)
def delete_action(request: Request, actionId: str) -> None:
    ctx(request).store.delete(ACTION, _action(request, actionId)["id"])


# --- one integration (after /credentials and /actions, which its path would match) ----------


@router.get("/api/v2/integrations/{integrationId}")
def get_integration(request: Request, integrationId: str) -> dict[str, Any]:
    return _render_integration(_integration(request, integrationId), ctx(request).store)


@router.patch("/api/v2/integrations/{integrationId}")
async def patch_integration(request: Request, integrationId: str) -> dict[str, Any]:
    body = await _body(request)
    with _lock:
        doc = _integration(request, integrationId)
        state = body.get("intendedState")
        if state is not None:
            if state not in ("ENABLED", "DISABLED"):
                raise bad_request("intendedState must be ENABLED or DISABLED", "invalid.value")
            doc.update(intendedState=state, updated=iso(now()))
        ctx(request).store.put(INTEGRATION, doc["id"], doc)
    return _render_integration(doc, ctx(request).store)


@router.delete("/api/v2/integrations/{integrationId}")
def delete_integration(request: Request, integrationId: str) -> dict[str, Any]:
    doc = _integration(request, integrationId)
    ctx(request).store.delete(INTEGRATION, doc["id"])
    return _render_integration(doc, ctx(request).store)


@router.get("/api/v2/integrations/{integrationId}/config/current")
def get_config(request: Request, integrationId: str) -> dict[str, Any]:
    return _render_config(_integration(request, integrationId), ctx(request).store)


@router.put("/api/v2/integrations/{integrationId}/config/current")
async def put_config(request: Request, integrationId: str) -> dict[str, Any]:
    body = await _body(request)
    store = ctx(request).store
    with _lock:
        doc = _integration(request, integrationId)
        if body.get("version") != doc["config"]["version"]:
            raise _conflict("configuration")
        credentials = body.get("credentials") or {}
        if not isinstance(credentials, dict):
            raise bad_request("credentials must be an object", "invalid.value")
        ids = {}
        for key, info in credentials.items():
            cid = info.get("id") if isinstance(info, dict) else None
            if key != BASIC_AUTH or not cid or store.get(CREDENTIAL, cid) is None:
                raise bad_request(f"credentials.{key} must be {{\"id\"}} of an existing basicAuth credential",
                                  "invalid.value")
            ids[key] = cid
        config = doc["config"]
        config.update(name=str(body.get("name") or config["name"]), version=config["version"] + 1,
                      properties=body.get("properties") or {}, advanced=body.get("advanced") or {},
                      notes=str(body.get("notes") or ""), credentials=ids)
        doc["updated"] = iso(now())
        store.put(INTEGRATION, doc["id"], doc)
    return _render_config(doc, store)


# --- what the workflow runner needs --------------------------------------------------------------


def find_action(store, integration_name: str, action_name: str) -> tuple[dict, dict] | None:  # type: ignore[no-untyped-def]
    """The action `action_name` of the integration named `integration_name` (Architect's
    callData category -> integration -> dataAction -> action)."""
    for integration in store.all(INTEGRATION):
        if integration["config"]["name"] != integration_name:
            continue
        for action in store.all(ACTION):
            if action["integrationId"] == integration["id"] and action["name"] == action_name:
                return integration, action
    return None


def basic_credential(store, integration: dict[str, Any]) -> tuple[str, str] | None:  # type: ignore[no-untyped-def]
    cid = integration["config"]["credentials"].get(BASIC_AUTH)
    cred = store.get(CREDENTIAL, cid) if cid else None
    return (cred["fields"]["userName"], cred["fields"]["password"]) if cred else None
