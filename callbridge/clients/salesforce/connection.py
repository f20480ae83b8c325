"""A Salesforce REST session for activities: OAuth (client credentials or JWT bearer) + simple-salesforce.

simple-salesforce builds its own login URLs on *.salesforce.com, so Callbridge fetches the
token itself (from `salesforce_login_url`, which may be a My Domain or the emulator) and
hands simple-salesforce the session id; an expired session is refreshed once and retried.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from callbridge.clients.metering import count_salesforce
from callbridge.core.metrics import record_api_response
from callbridge.core.settings import Settings
from callbridge.clients.transport_errors import scrubbed

T = TypeVar("T")


class _PinnedCAAdapter(requests.adapters.HTTPAdapter):
    """Verifies against the configured CA even when REQUESTS_CA_BUNDLE is set in the
    environment (requests lets that variable override `Session.verify`)."""

    def __init__(self, ca_file: str | None, **kwargs: Any) -> None:
        self._ca_file = ca_file
        super().__init__(**kwargs)

    def send(self, request, **kwargs):  # type: ignore[override]
        if self._ca_file:
            kwargs["verify"] = self._ca_file
        return super().send(request, **kwargs)


def _count_response(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
    # The body is only peeked at for Salesforce's limit error code (403 REQUEST_LIMIT_EXCEEDED).
    hint = resp.text[:200] if resp.status_code == 403 else None
    record_api_response("salesforce", resp.status_code, hint)
    count_salesforce(resp.headers.get("Sforce-Limit-Info"))


class SalesforceAuthError(RuntimeError):
    """The token endpoint refused our credentials: retrying won't help until config changes."""


class SalesforceConnection:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._session = requests.Session()
        ca_file = str(settings.salesforce_ca_file) if settings.salesforce_ca_file else None
        # A pool as large as the activity thread pool: activities share the session.
        self._session.mount("https://", _PinnedCAAdapter(ca_file, pool_connections=4, pool_maxsize=64))
        self._session.hooks["response"].append(_count_response)
        # Our writes name us in their change events' changeOrigin: the listener skips its own echo.
        self._session.headers["Sforce-Call-Options"] = f"client={settings.salesforce_call_options_client}"
        self.identity_url = ""  # the token's `id` (…/id/<org id>/<user id>): the Pub/Sub API's tenantid
        self._client: Salesforce | None = None
        self.requests_made = 0

    @property
    def api_version(self) -> str:
        return self._settings.salesforce_api_version

    def _login(self) -> Salesforce:
        s = self._settings
        resp = self._session.post(
            f"{s.salesforce_login_url.rstrip('/')}/services/oauth2/token",
            data=self._grant(),
            timeout=s.salesforce_timeout_seconds,
        )
        if resp.status_code in (400, 401):
            # The body names the reason (invalid_client, ...) and holds no secret.
            raise SalesforceAuthError(f"Salesforce token request refused: {resp.text[:300]}")
        resp.raise_for_status()
        body = resp.json()
        self.identity_url = body.get("id") or ""
        return Salesforce(
            instance_url=body.get("instance_url") or s.salesforce_instance_url,
            session_id=body["access_token"],
            session=self._session,
            version=s.salesforce_api_version,
        )

    def _grant(self) -> dict[str, str]:
        """The token request's form for the configured sign-in flow."""
        s = self._settings
        if s.salesforce_auth_flow == "jwt_bearer":
            from callbridge.clients.salesforce.jwt import GRANT_TYPE, JwtKeyError, assertion

            try:
                signed = assertion(s.salesforce_client_id, s.salesforce_username, s.salesforce_jwt_audience,
                                   s.salesforce_jwt_key_file)
            except JwtKeyError as exc:
                raise SalesforceAuthError(str(exc)) from None
            return {"grant_type": GRANT_TYPE, "assertion": signed}
        return {
            "grant_type": "client_credentials",
            "client_id": s.salesforce_client_id,
            "client_secret": s.salesforce_client_secret.get_secret_value(),
        }

    def client(self, stale: Salesforce | None = None) -> Salesforce:
        with self._lock:
            if self._client is None or self._client is stale:
                try:
                    self._client = self._login()
                except requests.RequestException as exc:
                    raise scrubbed(exc, "Salesforce") from None
            return self._client

    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run fn with a live session; on INVALID_SESSION_ID log in again and retry once.
        A transport error goes on as type and status only: its URL may hold a query's PII."""
        sf = self.client()
        try:
            try:
                return fn(sf)
            except SalesforceExpiredSession:
                return fn(self.client(stale=sf))
        except requests.RequestException as exc:
            raise scrubbed(exc, "Salesforce") from None

    def restful(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        timeout = self._settings.salesforce_timeout_seconds
        return self.call(lambda sf: sf.restful(path, method=method, timeout=timeout, **kwargs))

    def query(self, soql: str) -> dict[str, Any]:
        """One answer page only (totalSize, e.g. for COUNT()): read records with
        callbridge.clients.salesforce.query, which follows every page."""
        return self.restful("query", params={"q": soql})
