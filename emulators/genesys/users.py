"""Users, queues and the token's identity: /api/v2/users, /api/v2/routing/queues, /api/v2/tokens/me."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from .context import ctx
from .errors import GenesysError, bad_request, not_found
from .wire import paged

router = APIRouter()


def user_ref(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "name": user["name"], "selfUri": user["selfUri"]}


@router.get("/api/v2/users/me")
def get_users_me(request: Request) -> dict[str, Any]:
    # A token from an agent's sign-in (authorization code grant) is that user's. Client
    # credentials tokens have no user behind them and Genesys refuses /users/me with this 400
    # (use /api/v2/tokens/me to check a token instead).
    user_id = ctx(request).tokens.user_of(getattr(request.state, "token", ""))
    user = ctx(request).store.get("user", user_id) if user_id else None
    if user is None:
        raise GenesysError(
            400,
            "This request requires a user context. Client credentials cannot be used for requests to this resource.",
            "bad.request",
        )
    return user


@router.get("/api/v2/users/{userId}")
def get_user(request: Request, userId: str) -> dict[str, Any]:
    user = ctx(request).store.get("user", userId)
    if user is None:
        raise not_found(f"User {userId} not found")  # Genesys names the id in its 404 message
    return user


@router.get("/api/v2/users")
def get_users(
    request: Request,
    pageSize: int = Query(25),
    pageNumber: int = Query(1),
    id: list[str] | None = Query(None),
    state: str | None = Query(None),
) -> dict[str, Any]:
    if pageSize > 500:
        raise bad_request("pageSize may not exceed 500", "invalid.value")
    users = ctx(request).store.all("user")
    if id:
        wanted = {i for raw in id for i in raw.split(",")}
        users = [u for u in users if u["id"] in wanted]
    if state:
        users = [u for u in users if u["state"] == state]
    users.sort(key=lambda u: u["name"])
    return paged(users, pageSize, pageNumber, "/api/v2/users")


def render_queue(queue: dict[str, Any], store) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    division = store.get("division", queue["divisionId"])
    members = len(queue["memberIds"])
    return {
        "id": queue["id"],
        "name": queue["name"],
        "division": division,
        "description": f"{queue['site']} support line",
        "dateCreated": queue["dateCreated"],
        "dateModified": queue["dateCreated"],
        "memberCount": members,
        "userMemberCount": members,
        "joinedMemberCount": members,
        "defaultMediaLanguage": queue["language"],
        "scoringMethod": "TimestampAndPriority",
        "selfUri": f"/api/v2/routing/queues/{queue['id']}",
    }


@router.get("/api/v2/routing/queues/{queueId}")
def get_routing_queue(request: Request, queueId: str) -> dict[str, Any]:
    store = ctx(request).store
    queue = store.get("queue", queueId)
    if queue is None:
        raise not_found(f"Queue {queueId} not found")
    return render_queue(queue, store)


@router.get("/api/v2/routing/queues")
def get_routing_queues(
    request: Request,
    pageSize: int = Query(25),
    pageNumber: int = Query(1),
    name: str | None = Query(None),
) -> dict[str, Any]:
    if pageSize > 500:
        raise bad_request("pageSize may not exceed 500", "invalid.value")
    store = ctx(request).store
    queues = store.all("queue")
    if name:
        # Genesys: exact name match, case-insensitive; leading/trailing '*' are wildcards.
        needle = name.lower()
        starts, ends = needle.endswith("*"), needle.startswith("*")
        needle = needle.strip("*")

        def match(q: dict[str, Any]) -> bool:
            text = q["name"].lower()
            if starts and ends:
                return needle in text
            if starts:
                return text.startswith(needle)
            if ends:
                return text.endswith(needle)
            return text == needle

        queues = [q for q in queues if match(q)]
    queues.sort(key=lambda q: q["name"].lower())
    return paged([render_queue(q, store) for q in queues], pageSize, pageNumber, "/api/v2/routing/queues")


@router.get("/api/v2/tokens/me")
def get_tokens_me(request: Request) -> dict[str, Any]:
    settings = ctx(request).settings
    org = {"id": ctx(request).store.meta_get("org_id") or "", "name": "Tech Support Example"}
    return {
        "organization": org,
        "homeOrganization": org,
        "authorizedScope": ["conversations", "recordings", "users", "routing", "external-contacts",
                            "notifications"],
        "OAuthClient": {"id": settings.client_id, "name": "Callbridge", "authorizedGrantType": "CLIENT-CREDENTIALS",
                        "organization": org},
    }
