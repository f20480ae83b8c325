"""Callbridge's settings: `CALLBRIDGE_*` environment variables and a `.env` file.

Every default points at the embedded local stack that `make demo` starts, so the same
code runs against a real org by configuration alone.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from callbridge.domain.models import UnknownCallerPolicy  # noqa: E402  (the policy is the domain's word)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLBRIDGE_", env_file=".env", extra="ignore", validate_default=True
    )

    var_dir: Path = Path("var")
    log_level: str = "INFO"

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "callbridge"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    temporal_retention_days: int = 7
    # Beyond the dev server (docs/deploy.md): TLS with the server's CA (empty: the system CAs),
    # mTLS with a client certificate and key (PEM files), or a Temporal Cloud API key.
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    temporal_tls_server_name: str | None = None  # when the address's host is not the certificate's name
    temporal_api_key: SecretStr | None = None
    # AES-GCM keys for Temporal payloads, "key_id:base64(32 bytes)", newest first. The demo key
    # is public: set your own (`callbridge keys new`) anywhere real data flows.
    payload_keys: SecretStr = SecretStr("demo-1:Y2FsbGJyaWRnZS1kZW1vLWtleS1ub3Qtc2VjcmV0ISE=")
    codec_token: SecretStr = SecretStr("callbridge-demo-codec")

    # Salesforce (the emulator serves TLS from a local CA kept under var/)
    salesforce_instance_url: str = "https://127.0.0.1:8443"
    salesforce_login_url: str = "https://127.0.0.1:8443"
    salesforce_api_version: str = "62.0"
    salesforce_client_id: str = "callbridge-demo"
    salesforce_client_secret: SecretStr = SecretStr("callbridge-demo-secret")
    salesforce_ca_file: Path | None = Path("var/salesforce/ca.pem")
    salesforce_timeout_seconds: float = 10.0
    # How Callbridge signs in: the connected app's client credentials (a run-as user), or the
    # OAuth 2.0 JWT bearer flow (the app holds a certificate; Callbridge signs an assertion
    # for the integration user with the matching private key). docs/deploy.md, "Signing in".
    salesforce_auth_flow: Literal["client_credentials", "jwt_bearer"] = "client_credentials"
    salesforce_username: str = ""
    salesforce_jwt_key_file: Path | None = None
    salesforce_jwt_audience: str = "https://login.salesforce.com"

    # Genesys Cloud
    genesys_api_url: str = "http://127.0.0.1:8081"
    genesys_login_url: str = "http://127.0.0.1:8081"
    genesys_client_id: str = "callbridge-demo"
    genesys_client_secret: SecretStr = SecretStr("callbridge-demo-secret")
    # `callbridge genesys install` only: an OAuth client with the admin roles docs/deploy.md lists
    # (unset: the client above, as in the demo).
    genesys_admin_client_id: str | None = None
    genesys_admin_client_secret: SecretStr | None = None
    # Genesys's per-token budget (requests per minute; 0: don't pace) and how many 429s one
    # request waits out (Retry-After) before its activity sees the error and retries.
    genesys_requests_per_minute: int = 300
    genesys_max_429_retries: int = 5

    # Webhook starter
    starter_host: str = "127.0.0.1"
    starter_port: int = 8000
    webhook_secret: SecretStr = SecretStr("callbridge-demo-webhook-secret")
    webhook_max_skew_seconds: int = 300
    webhook_max_body_bytes: int = 64 * 1024
    # Call-ended events (POST /webhooks/genesys/events): the call-ended data action's integration
    # credential (HTTP Basic), or an EventBridge API destination's API-key header (or Basic).
    events_username: str = "genesys-call-ended"
    events_password: SecretStr = SecretStr("callbridge-demo-events")
    events_api_key: SecretStr | None = SecretStr("callbridge-demo-events-api-key")
    events_api_key_header: str = "x-api-key"
    # The starter's base URL as Genesys reaches it (the data actions' request URLs); default:
    # http://{starter_host}:{starter_port}, right for the demo only.
    public_url: str | None = None

    # Call logging
    default_region: str = Field("US", pattern=r"^[A-Z]{2}$")
    unknown_caller_policy: UnknownCallerPolicy = "skip"
    unknown_caller_account_name: str = "Unknown callers"
    recording_budget_seconds: float = 3.0
    # A recording still transcoding at call end is linked from its Task when ready, checked
    # with backoff from this many seconds, for at most this many hours.
    recording_first_check_seconds: float = Field(10.0, ge=1, le=3600)
    recording_follow_up_hours: float = Field(6.0, gt=0, le=72)
    # The OAuth client (authorization code grant with PKCE) agents sign in with on the desktop
    # page and the recording links; its redirect URI is {public URL}/agent/signed-in.
    genesys_agent_client_id: str = "callbridge-agents"

    # Screen pop: the caller-ID index and the data action's lookup service
    index_refresh_seconds: int = 60
    index_lookback_seconds: int = 120
    screenpop_username: str = "genesys-data-action"
    screenpop_password: SecretStr = SecretStr("callbridge-demo-lookup")
    screenpop_bearer_token: SecretStr | None = None
    screenpop_live_budget_seconds: float = 1.5
    # Where the desktop pops records; default: the instance's Lightning record page.
    salesforce_record_url: str | None = None
    salesforce_search_url: str | None = None

    # Contact sync
    sync_config_path: str | None = None  # YAML mapping; default callbridge/domain/sync/default_mapping.yaml
    genesys_external_source_id: str = "salesforce"  # the External Source holding Contact ids
    sync_schedule_enabled: bool = False

    # Change Data Capture (`callbridge listen`, docs/change-data-capture.md): the Pub/Sub API's
    # host:port (real orgs: api.pubsub.salesforce.com:7443; TLS verified with salesforce_ca_file
    # when set, else the system roots), how many events to ask for at a time (at most 100), and
    # whether changed contacts start their pair's sync. Callbridge's own Salesforce writes carry
    # `Sforce-Call-Options: client=<salesforce_call_options_client>` so their events aren't synced back.
    salesforce_pubsub_endpoint: str = "127.0.0.1:7443"
    salesforce_call_options_client: str = Field("callbridge", pattern=r"^[A-Za-z0-9_.-]+$")
    listen_batch_size: int = Field(100, ge=1, le=100)
    listen_sync_enabled: bool = True

    # Callbridge's own state store
    database_url: str = "sqlite:///var/callbridge.db"

    # Privacy (GDPR erasure, consent, retention, masked export): see docs/privacy.md.
    # HMAC key for tombstones, certificates, audit entries and export join keys. The demo key
    # is public: set your own anywhere real data flows (changing it orphans old tombstones).
    privacy_hash_key: SecretStr = SecretStr("callbridge-demo-privacy-hash-key")
    admin_username: str = "admin"
    admin_password: SecretStr = SecretStr("callbridge-demo-admin")
    alert_webhook_url: str | None = None  # Slack-compatible {"text": ...}; alerts are logged anyway
    erasure_deadline_days: int = 30
    erasure_reminder_days: int = 20
    erasure_escalation_days: int = 28
    sync_requires_service_consent: bool = True
    service_consent_type: str = "Data Processing"
    recording_retention_days: int = 7 * 365 + 2  # 7 years, leap days included
    retention_hour_utc: int = Field(3, ge=0, le=23)

    # Operations: metrics, alert rules, graceful shutdown (docs/operations.md). A port of 0
    # turns that endpoint off. The alert channel is `alert_webhook_url` (or the log only).
    metrics_host: str = "0.0.0.0"
    worker_metrics_port: int = 9464  # Callbridge's own metrics of the worker
    worker_temporal_metrics_port: int = 9465  # the Temporal SDK's metrics of the worker
    alert_dedup_seconds: float = 900.0  # one message per rule per window: a storm sends one
    alert_check_seconds: float = 30.0
    alert_call_logging_failure_rate: float = 0.05
    alert_call_logging_window_seconds: float = 900.0
    alert_call_logging_min_executions: int = 20
    alert_sync_max_seconds: float = 600.0
    alert_sync_max_conflicts: int = 10
    starter_drain_timeout_seconds: float = 30.0  # SIGTERM: finish in-flight webhooks at most this long

    # The starter facing the internet (issue #19, starter/gate.py): a body cap for every route
    # (the webhook has its own), failed-authentication backoff per client address, an internal
    # listener for /metrics (and, with starter_internal_routes, admin, GDPR and the codec), the
    # hosts the starter answers to besides loopback and public_url's, and who may frame the desktop
    # (default: the Genesys Cloud apps origin of genesys_api_url).
    starter_max_body_bytes: int = 256 * 1024
    auth_failures_before_backoff: int = 5
    auth_backoff_first_seconds: float = 1.0  # then doubled per further failure
    auth_backoff_max_seconds: float = 300.0
    starter_internal_host: str = "127.0.0.1"
    starter_internal_port: int = 0  # 0: no internal listener; /metrics then needs the admin credential
    starter_internal_routes: bool = False
    trusted_hosts: str = ""  # comma-separated host names (no port), e.g. callbridge.example.com
    desktop_frame_ancestors: str | None = None

    @property
    def record_url_template(self) -> str:
        return self.salesforce_record_url or f"{self.salesforce_instance_url.rstrip('/')}/lightning/r/Contact/{{id}}/view"

    @property
    def search_url_template(self) -> str:
        return self.salesforce_search_url or (
            f"{self.salesforce_instance_url.rstrip('/')}/_ui/search/ui/UnifiedSearchResults?str={{number}}"
        )

    @property
    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.starter_host}:{self.starter_port}").rstrip("/")

    @property
    def call_logging_policy(self) -> dict[str, object]:
        """The settings every CallLoggingInput carries (so a replay never reads config), whichever
        way the call arrives: unknown callers, the recording's budget and lasting link."""
        return {"unknown_caller_policy": self.unknown_caller_policy,
                "unknown_caller_account_name": self.unknown_caller_account_name,
                "recording_budget_seconds": self.recording_budget_seconds,
                "recording_link_base": self.public_base_url,
                "recording_follow_up_hours": self.recording_follow_up_hours,
                "recording_first_check_seconds": self.recording_first_check_seconds}

    @property
    def agent_redirect_uri(self) -> str:
        return f"{self.public_base_url}/agent/signed-in"

    @property
    def events_url(self) -> str:
        return f"{self.public_base_url}/webhooks/genesys/events"

    @property
    def webhook_url(self) -> str:
        return f"http://{self.starter_host}:{self.starter_port}/webhooks/genesys/conversation-ended"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
