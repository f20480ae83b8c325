"""The FastAPI application: routers, the request pipeline, and the /_emulator control API.

Pipeline for every request: a fresh inin-correlation-id; for /api/v2 and /oauth the
injected faults; for /api/v2 the bearer token and then the per-token budget. Errors are
rendered as Genesys's ErrorBody on /api/v2 and /oauth-free control routes answer plain JSON.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import (conversations, customer_end, externalcontacts, flows, identifiers, integrations, notifications,
               processautomation, recordings, simulator, users)
from .agent_login import AgentLogin
from .auth import RateLimiter, TokenService
from .context import Context, Stats, ctx
from .errors import CORRELATION_HEADER, GenesysError, error_response
from .faults import Faults
from .seed import seed, seed_external_contacts
from .settings import EmulatorSettings, RuntimeConfig
from .store import Store
from .wire import new_id

log = logging.getLogger("emulators.genesys")


def create_app(settings: EmulatorSettings) -> FastAPI:
    store = Store(settings.data_dir)
    if seed(store):
        log.info("seeded a new org in %s", settings.data_dir)
    elif seed_external_contacts(store):
        log.info("seeded the demo's external contacts in %s", settings.data_dir)
    context = Context(
        settings=settings,
        store=store,
        runtime=RuntimeConfig(webhook_url=settings.webhook_url, webhook_secret=settings.webhook_secret),
        tokens=TokenService(store, settings, AgentLogin(settings.agent_client_id, settings.agent_password)),
        limiter=RateLimiter(settings.rate_limit),
        faults=Faults(),
        stats=Stats(),
    )
    app = FastAPI(title="Genesys Cloud emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = context
    app.state.hub = notifications.Hub()
    app.state.agents = simulator.Agents()
    app.state.calls = set()  # live simulated calls (asyncio tasks)
    interrupted = simulator.end_interrupted_calls(store)
    if interrupted:
        log.info("ended %d simulated calls that were live when the emulator stopped", interrupted)

    @app.middleware("http")
    async def pipeline(request: Request, call_next):  # type: ignore[no-untyped-def]
        cid = new_id()
        request.state.correlation_id = cid
        path, method = request.url.path, request.method
        context.stats.hit(f"{method} {_route_template(templates, method, path)}")
        after = 0.0
        try:
            if path.startswith(("/api/v2", "/oauth")):
                delay, fault, after = context.faults.plan(method, path)
                if delay:
                    await asyncio.sleep(delay)
                if fault:
                    raise fault
            if path.startswith("/api/v2"):
                token = context.tokens.authenticate(request.headers.get("authorization"))
                context.limiter.check(token)
                request.state.token = token
            response = await call_next(request)
            if after:
                await asyncio.sleep(after)  # done, and the answer is late
        except GenesysError as exc:
            response = error_response(exc, cid)
        except Exception:  # an emulator bug still answers like Genesys's 500, with a log line
            log.exception("unhandled error on %s %s", method, path)
            response = error_response(GenesysError(500), cid)
        response.headers[CORRELATION_HEADER] = cid
        return response

    @app.exception_handler(GenesysError)
    async def genesys_error(request: Request, exc: GenesysError) -> Response:
        return error_response(exc, getattr(request.state, "correlation_id", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in exc.errors())
        if request.url.path.startswith("/api/v2"):
            return error_response(GenesysError(400, f"Invalid value for {fields}", "bad.request"),
                                  getattr(request.state, "correlation_id", None))
        return JSONResponse({"error": f"invalid {fields}"}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/v2"):
            return error_response(GenesysError(exc.status_code), getattr(request.state, "correlation_id", None))
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.post("/oauth/token")
    async def oauth_token(request: Request) -> Response:
        return await context.tokens.token_endpoint(request)

    @app.get("/oauth/authorize")
    def oauth_authorize(request: Request) -> Response:
        return context.tokens.agents.authorize_page(dict(request.query_params), context.runtime.agent_redirect_uris)

    @app.post("/oauth/authorize")
    async def oauth_sign_in(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        return context.tokens.agents.sign_in(form, context.runtime.agent_redirect_uris, store.all("user"))

    routers = [users.router, conversations.router, recordings.router, externalcontacts.router,
               identifiers.router, notifications.router, simulator.router, integrations.router,
               processautomation.router, flows.router]
    for router in routers:
        app.include_router(router)
    _control_routes(app)
    templates = [(r.methods, r.path_regex, r.path) for router in [*routers, app.router]
                 for r in router.routes if hasattr(r, "path_regex") and getattr(r, "methods", None)]
    return app


def _route_template(templates: list, method: str, path: str) -> str:
    """The matched route's path template (so stats group /users/{userId}, not each id)."""
    for methods, regex, template in templates:
        if method in methods and regex.match(path):
            return template
    return path


def _control_routes(app: FastAPI) -> None:
    @app.get("/_emulator/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_emulator/config")
    def get_config(request: Request) -> dict[str, Any]:
        return ctx(request).runtime.public()

    @app.post("/_emulator/config")
    async def post_config(request: Request) -> Response:
        context = ctx(request)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            context.runtime.update(body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(context.runtime.public())

    @app.get("/_emulator/faults")
    def get_faults(request: Request) -> dict[str, Any]:
        return ctx(request).faults.public()

    @app.post("/_emulator/faults")
    async def post_faults(request: Request) -> Response:
        context = ctx(request)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            context.faults.merge(body)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(context.faults.public())

    @app.delete("/_emulator/faults")
    def delete_faults(request: Request) -> dict[str, Any]:
        ctx(request).faults.clear()
        return ctx(request).faults.public()

    @app.get("/_emulator/stats")
    def get_stats(request: Request) -> dict[str, Any]:
        return {"requests": ctx(request).stats.snapshot()}

    @app.post("/_emulator/stats/reset")
    def reset_stats(request: Request) -> dict[str, Any]:
        ctx(request).stats.reset()
        return {"requests": {}}

    @app.post("/_emulator/tokens/expire")
    def expire_tokens(request: Request) -> dict[str, Any]:
        """Make every issued token invalid now (tests of the connector's token refresh)."""
        return {"expired": ctx(request).tokens.expire_all()}

    @app.get("/_emulator/triggers/invocations")
    def get_trigger_invocations(request: Request, conversationId: str | None = None) -> dict[str, Any]:
        """What each trigger invocation did (customer_end.py): the workflow's steps, the data
        action's request and answer, the exit reason."""
        return {"invocations": customer_end.invocations(ctx(request).store, conversationId)}

    @app.post("/_emulator/ratelimit/reset")
    def reset_rate_limit(request: Request) -> dict[str, Any]:
        ctx(request).limiter.reset()
        return {"ok": True}
