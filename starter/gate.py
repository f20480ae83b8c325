"""Auth and limits before work: every request is checked here before any route reads its body.

Pure ASGI (nothing buffers the body): the route is looked up in RULES (unknown paths: 404),
a client that failed authentication too often waits (429 with backoff), credentials are
checked (401), Content-Length is capped (413), all without reading a byte of the body; then
the body is capped again while it streams, and browser protections are added to the answer.
OWASP ASVS 4.0 level 2: V2.2.1 (anti-automation), V4.1.1 (access control on a trusted
service layer), V13.1.5 (content types), V14.4 (security headers).

To add a route: a `Rule` in `rules()` naming a credential scheme, and (for a new scheme) a
checker in `schemes()`, e.g. for issue #14's call-ended events:
    Rule("/webhooks/genesys/events", "events")  with
    "events": any_of(basic(s.events_username, s.events_password), api_key(s.events_api_key_header, s.events_api_key))
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlparse

import structlog

from callbridge.core import metrics
from callbridge.core.secrets_policy import demo_mode
from callbridge.core.settings import Settings
from callbridge.domain.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from starter.auth import events_credentials
from starter.credentials import Check, Headers, any_of, basic, bearer

log = structlog.get_logger("callbridge.starter")


@dataclass(frozen=True)
class Rule:
    path: str  # exact, or a prefix when it ends with "/"
    scheme: str  # a key of schemes(): which credential this route takes
    internal: bool = False  # admin, GDPR, codec, metrics: movable to the internal listener
    max_body: int | None = None  # default: settings.starter_max_body_bytes

    def matches(self, path: str) -> bool:
        if self.path.endswith("/"):
            return path.startswith(self.path) or path == self.path[:-1]
        return path in (self.path, self.path + "/")


def rules(settings: Settings) -> list[Rule]:
    """Route -> credential scheme. First match wins; a path no rule names is 404."""
    table = [
        Rule("/healthz", "none"),
        Rule("/webhooks/genesys/conversation-ended", "genesys_signature", max_body=settings.webhook_max_body_bytes),
        Rule("/webhooks/genesys/events", "events", max_body=settings.webhook_max_body_bytes),
        Rule("/screenpop/", "data_action"),
        Rule("/desktop/", "agent"),
        Rule("/recordings/", "agent"),
        Rule("/agent/", "none"),  # the sign-in's public config, script and callback page
        Rule("/admin/", "admin", internal=True),
        Rule("/gdpr/", "admin", internal=True),
        Rule("/codec/", "codec", internal=True),
        Rule("/metrics", "metrics", internal=True),
    ]
    if demo_mode():  # the API docs describe every route: for the demo only
        table += [Rule(p, "none") for p in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")]
    return table


# --- credential schemes ---------------------------------------------------------------------------

def signed(headers: Headers, scope: dict) -> bool:
    # The relay's HMAC covers the body, so the route verifies it; without its headers the
    # request is not even a candidate and nothing is read.
    return bool(headers.get(SIGNATURE_HEADER.lower())) and bool(headers.get(TIMESTAMP_HEADER.lower()))


def schemes(settings: Settings) -> dict[str, Check]:
    s = settings
    admin = basic(s.admin_username, s.admin_password)
    codec_token = bearer(s.codec_token)
    ui = _origin(s.temporal_ui_url)

    def codec(headers: Headers, scope: dict) -> bool:
        if scope["method"] == "OPTIONS":  # a CORS preflight carries no credentials by design
            return True
        # The local Temporal UI cannot send a token: its origin suffices in the demo only.
        demo_ui = demo_mode() and s.starter_host in ("127.0.0.1", "localhost", "::1") and headers.get("origin") == ui
        return codec_token(headers, scope) or demo_ui

    return {
        "none": lambda headers, scope: True,
        "genesys_signature": signed,
        "events": events_credentials(s),
        "data_action": any_of(basic(s.screenpop_username, s.screenpop_password), bearer(s.screenpop_bearer_token)),
        # Agents sign in with Genesys (starter/agent_auth.py): the pages are public shells that
        # sign in first; every API call carries the agent's bearer token, which the route verifies
        # with Genesys. Here: nothing without one.
        "agent": lambda headers, scope: _agent_page(scope["path"]) or _has_bearer(headers),
        "admin": admin,
        "codec": codec,
        # On the internal listener Prometheus scrapes without credentials; on the public one, admin's.
        "metrics": lambda headers, scope: _internal(scope, s) or admin(headers, scope),
    }


_RECORDING_PAGE = re.compile(r"^/recordings/[A-Za-z0-9-]{1,64}/[A-Za-z0-9-]{1,64}/?$")


def _agent_page(path: str) -> bool:
    return path in ("/desktop", "/desktop/", "/desktop/app.js") or bool(_RECORDING_PAGE.match(path))


def _has_bearer(headers: Headers) -> bool:
    kind, _, value = headers.get("authorization", "").partition(" ")
    return kind.lower() == "bearer" and bool(value.strip())


REALMS = {"admin": "callbridge-admin", "metrics": "callbridge-admin"}


def _origin(url: str) -> str:
    u = urlparse(url)
    return f"{u.scheme}://{u.netloc}"


def _internal(scope: dict, settings: Settings) -> bool:
    server = scope.get("server")
    return bool(settings.starter_internal_port) and bool(server) and server[1] == settings.starter_internal_port


# --- failed-authentication throttle ---------------------------------------------------------------

class Throttle:
    """Per client address: after `free` failures it waits `first` s, doubled per further failure (to `cap`)."""

    def __init__(self, free: int, first: float, cap: float, max_clients: int = 10_000) -> None:
        self.free, self.first, self.cap, self.max_clients = free, first, cap, max_clients
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address -> (count, until)

    def wait(self, address: str, now: float) -> float:
        _, until = self._failures.get(address, (0, 0.0))
        return max(0.0, until - now)

    def failed(self, address: str, now: float) -> None:
        count, _ = self._failures.pop(address, (0, 0.0))
        count += 1
        until = now + min(self.cap, self.first * 2.0 ** (count - self.free)) if count >= self.free else 0.0
        self._failures[address] = (count, until)
        while len(self._failures) > self.max_clients:  # bounded memory under a spray of addresses
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


# --- the middleware -------------------------------------------------------------------------------

class BodyTooLarge(Exception):
    pass


_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Gate:
    def __init__(self, app, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.rules = rules(settings)
        self.schemes = schemes(settings)
        self.throttle = Throttle(settings.auth_failures_before_backoff, settings.auth_backoff_first_seconds,
                                 settings.auth_backoff_max_seconds)
        self.desktop_ancestors = settings.desktop_frame_ancestors or _genesys_apps_origin(settings.genesys_api_url)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":  # no route takes one: refused before any handshake
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        rule = next((r for r in self.rules if r.matches(path)), None)
        if rule is None or (rule.internal and self._public_only_here(scope)):
            return await _answer(send, 404, b'{"detail":"Not Found"}')
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:  # the first of a repeated header, as Starlette's routes read it
            headers.setdefault(k.decode("latin-1"), v.decode("latin-1"))
        address = (scope.get("client") or ("?",))[0]
        now = time.monotonic()
        if rule.scheme != "none":
            wait = self.throttle.wait(address, now)
            if wait > 0:
                metrics.AUTH_THROTTLED.labels(rule.scheme).inc()
                return await _answer(send, 429, b'{"error":"too many failed authentications"}',
                                     [(b"retry-after", str(int(wait) + 1).encode())])
            if not self.schemes[rule.scheme](headers, scope):
                metrics.AUTH_FAILURES.labels(rule.scheme).inc()
                self.throttle.failed(address, now)
                log.info("authentication failed", scheme=rule.scheme)
                realm = REALMS.get(rule.scheme, "callbridge")
                kind = "Bearer" if rule.scheme == "agent" else "Basic"  # agents bring a Genesys token
                return await _answer(send, 401, b'{"error":"unauthorized"}',
                                     [(b"www-authenticate", f'{kind} realm="{realm}"'.encode())])
            if "authorization" in headers:
                self.throttle.succeeded(address)
        if method not in _SAFE_METHODS and rule.scheme == "admin" and not self._same_site(headers, path):
            return await _answer(send, 403, b'{"error":"cross-site request"}')
        limit = rule.max_body or self.settings.starter_max_body_bytes
        declared = headers.get("content-length", "")
        if declared and (not declared.isdigit() or int(declared) > limit):
            return await _answer(send, 413, b'{"error":"payload too large"}')
        return await self._pass(scope, receive, send, limit, self._security_headers(path))

    def _public_only_here(self, scope) -> bool:
        """With internal routes moved (a setting), the public listener doesn't serve them."""
        s = self.settings
        return bool(s.starter_internal_port) and s.starter_internal_routes and not _internal(scope, s)

    @staticmethod
    def _same_site(headers: Headers, path: str) -> bool:
        """Browsers resend Basic credentials on cross-site form posts: only our own pages may post."""
        if headers.get("sec-fetch-site") == "cross-site":
            return False
        origin = headers.get("origin")
        if origin is None:
            # API clients (curl, scripts) send no Origin; a browser posting a form always does.
            return path.startswith(("/admin/api/", "/gdpr/"))
        return origin != "null" and urlparse(origin).netloc == headers.get("host")

    def _security_headers(self, path: str) -> list[tuple[bytes, bytes]]:
        # Referrer-Policy "same-origin", not "no-referrer": under no-referrer Chromium sends
        # `Origin: null` on our own form posts (Fetch: serializing a request origin), which are refused.
        out = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
        if path.startswith(("/desktop", "/agent/")):  # Genesys frames the desktop and its sign-in
            out.append((b"content-security-policy", f"frame-ancestors {self.desktop_ancestors}".encode()))
        else:  # admin pages and everything else: never framed
            out += [(b"content-security-policy", b"frame-ancestors 'none'"), (b"x-frame-options", b"DENY")]
        return out

    async def _pass(self, scope, receive, send, limit: int, extra: list[tuple[bytes, bytes]]) -> None:
        received = 0
        started = refused = False

        async def capped_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answered here: a route may turn the exception into its own 400 (FastAPI
                    # does, for bodies it parses), which send_with_headers then drops.
                    if not started and not refused:
                        refused = True
                        await _answer(send, 413, b'{"error":"payload too large"}')
                    raise BodyTooLarge()
            return message

        async def send_with_headers(message):
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, capped_receive, send_with_headers)
        except BodyTooLarge:
            pass


def _genesys_apps_origin(api_url: str) -> str:
    """Genesys Cloud serves its apps (where the desktop is framed) on apps.<region domain>."""
    u = urlparse(api_url)
    host = u.hostname or ""
    if host.startswith("api."):
        return f"https://apps.{host[4:]}"
    return f"{u.scheme}://{u.netloc}"


async def _answer(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = ()) -> None:
    # Answered without reading the request body; the connection closes (the unread body with it).
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"x-content-type-options", b"nosniff"), *headers]})
    await send({"type": "http.response.body", "body": body})
