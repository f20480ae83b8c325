"""The starter: Genesys's webhook target (and later the screen-pop lookup and admin API)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from callbridge.core.settings import Settings, get_settings
from starter.temporal_link import TemporalLink
from starter import admin, codec, conflicts, desktop, screenpop
from starter import metrics as ops
from starter.webhooks import build_router
from starter.gate import Gate
from starter.listeners import serve, trusted_hosts
from callbridge.core.secrets_policy import demo_mode
from starlette.middleware.trustedhost import TrustedHostMiddleware


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    temporal = TemporalLink(settings)
    # The API docs list every route and its schema: served in the demo only (issue #19).
    docs = {} if demo_mode() else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="Callbridge starter", version="0.1.0", **docs)
    app.state.temporal = temporal
    app.state.drain = ops.Drain()
    app.add_middleware(ops.DrainMiddleware, drain=app.state.drain)
    # Outermost last: the Host header first, then credentials and body caps before any route.
    app.add_middleware(Gate, settings=settings)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts(settings))

    @app.exception_handler(OperationalError)
    async def store_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # The state store is down (the admin pages need it; webhooks and lookups don't): say so.
        return JSONResponse({"detail": "state store unavailable"}, status_code=503, headers={"Retry-After": "5"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(build_router(settings, temporal))
    from starter import events

    app.include_router(events.build_router(settings, temporal))
    app.include_router(screenpop.build_router(settings))
    app.include_router(codec.build_router(settings))
    app.include_router(conflicts.build_router(settings, temporal))
    from starter import privacy

    app.include_router(privacy.build_router(settings, temporal))
    from starter import agent_auth, recordings

    app.state.agents = agent_auth.AgentVerifier(settings)
    app.include_router(agent_auth.build_router(settings))
    app.include_router(recordings.build_router(settings, app.state.agents))
    app.include_router(desktop.build_router(settings, app.state.agents))
    app.include_router(ops.build_router())
    admin.install(app, settings, temporal)  # /admin/ pages and the screen-pop counter flush
    return app


def main() -> None:
    import gc

    import uvicorn

    from callbridge.core.logs import configure_logging
    from callbridge.core.temporal import use_runtime

    from callbridge.core.secrets_policy import refuse_demo_secrets

    settings = get_settings()
    refuse_demo_secrets(settings)  # public demo secrets only in the demo (callbridge/core/secrets_policy.py)
    configure_logging(settings.log_level)
    use_runtime()  # the SDK core's own warnings as JSON log lines too
    app = create_app(settings)
    # Long-lived objects out of the collector's way: fewer, shorter pauses on the lookup path.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app, host=settings.starter_host, port=settings.starter_port,
        log_config=None, access_log=False,
    )
    # SIGTERM drains: new webhooks get 503 while in-flight ones finish starting their workflows.
    serve(ops.DrainingServer(config, app.state.drain, settings.starter_drain_timeout_seconds), settings)


if __name__ == "__main__":
    main()
