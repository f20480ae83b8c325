"""Architect flows: GET /api/v2/flows (FlowEntityListing) and the control endpoint that stands in
for `archy publish`.

Archy is a command-line tool, not a Platform API call, so the emulator can't be published to by
archy. `POST /_emulator/flows/publish` takes what archy would publish (the flow's YAML, or the
path of a file under the repository) and does what a publish does: it creates the flow, or a new
version of the flow of that name and type, and that published definition is what runs. A
workflow that was never published doesn't exist, and a trigger can't target it: the emulator runs
what an org would have published, not whatever the checkout holds now.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from .context import ctx
from .wire import new_id, now, paged

router = APIRouter()

KIND = "flow"
REPO = Path(__file__).resolve().parent.parent.parent
# Archy YAML's top-level key -> the Flow model's type.
FLOW_TYPES = {"workflow": "WORKFLOW", "inboundCall": "INBOUNDCALL"}


def render(doc: dict[str, Any]) -> dict[str, Any]:
    """A Flow: only the fields the emulator knows."""
    version = str(doc["version"])
    return {
        "id": doc["id"], "name": doc["name"], "description": doc.get("description") or "",
        "type": doc["type"], "active": True, "system": False, "deleted": False,
        "division": {"id": doc["divisionId"], "name": doc["divisionName"],
                     "selfUri": f"/api/v2/authorization/divisions/{doc['divisionId']}"},
        "publishedVersion": {"id": version, "name": version, "type": "PUBLISH",
                             "selfUri": f"/api/v2/flows/{doc['id']}/versions/{version}"},
        "selfUri": f"/api/v2/flows/{doc['id']}",
    }


@router.get("/api/v2/flows")
def get_flows(request: Request, type: list[str] | None = Query(None), name: str | None = Query(None),
              pageSize: int = Query(25), pageNumber: int = Query(1)) -> dict[str, Any]:
    docs = ctx(request).store.all(KIND)
    if type:
        wanted = {t.upper() for raw in type for t in raw.split(",")}
        docs = [d for d in docs if d["type"] in wanted]
    if name is not None:  # the API's name filter takes * wildcards; case-insensitive here
        docs = [d for d in docs if fnmatch.fnmatchcase(d["name"].lower(), name.lower())]
    docs.sort(key=lambda d: d["name"].lower())
    return paged([render(d) for d in docs], pageSize, pageNumber, "/api/v2/flows")


def published(store, flow_id: str) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    return store.get(KIND, flow_id)


def publish(store, text: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What `archy publish` does to the org: raises ValueError on a file it would refuse."""
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not YAML: {exc}") from None
    if not isinstance(parsed, dict) or len(parsed) != 1 or next(iter(parsed)) not in FLOW_TYPES:
        raise ValueError(f"an Archy flow file has one top-level key, one of {sorted(FLOW_TYPES)}")
    key = next(iter(parsed))
    flow = parsed[key]
    if not isinstance(flow, dict) or not isinstance(flow.get("name"), str) or not flow["name"]:
        raise ValueError(f"{key}.name is required")
    division = store.get("division", store.meta_get("home_division"))
    existing = next((d for d in store.all(KIND) if d["name"] == flow["name"] and d["type"] == FLOW_TYPES[key]), None)
    doc = existing or {"id": new_id(), "version": 0}
    doc.update(name=flow["name"], description=flow.get("description"), type=FLOW_TYPES[key],
               version=doc["version"] + 1, definition=parsed, publishedAt=now().isoformat(),
               divisionId=division["id"], divisionName=division["name"])
    store.put(KIND, doc["id"], doc)
    return doc


@router.post("/_emulator/flows/publish")
async def post_publish(request: Request) -> JSONResponse:
    """Body {"yaml": "<archy file>"} or {"file": "deploy/genesys/flows/<name>.yaml"}."""
    try:
        body = await request.json()
        if not isinstance(body, dict) or len({"yaml", "file"} & set(body)) != 1:
            raise ValueError('body must be {"yaml": text} or {"file": path}')
        if "file" in body:
            path = (REPO / str(body["file"])).resolve()
            if REPO not in path.parents or not path.is_file():
                raise ValueError(f"no flow file {body['file']!r} in the repository")
            text = path.read_text(encoding="utf-8")
        else:
            text = str(body["yaml"])
        doc = publish(ctx(request).store, text)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"id": doc["id"], "name": doc["name"], "type": doc["type"], "version": doc["version"]})

