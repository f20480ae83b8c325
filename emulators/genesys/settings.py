"""The emulator's settings: fixed at start from the command line, some changeable at run time."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class EmulatorSettings:
    data_dir: Path
    client_id: str
    client_secret: str
    host: str = "127.0.0.1"
    port: int = 8081
    token_ttl: int = 86400
    rate_limit: int = 300  # requests per minute per token
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # The OAuth client agents sign in with (authorization code + PKCE, agent_login.py) and the
    # password the emulator's login page takes for every seeded user.
    agent_client_id: str = "callbridge-agents"
    agent_password: str = "callbridge-agent"

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


@dataclass
class RuntimeConfig:
    """What POST /_emulator/config may change while running (tests start receivers late).

    dataActionAuth is what the inbound flow's data action sends to dataActionUrl: HTTP Basic
    ({"username", "password"}) or a bearer token ({"token"}), like a Genesys Web Services
    Data Actions integration's credentials. heartbeatSeconds is the notification WebSocket's
    heartbeat period (30 s, as on Genesys; tests shorten it).
    """

    webhook_url: str | None = None
    webhook_secret: str | None = None
    data_action_url: str | None = None
    data_action_auth: dict[str, str] | None = None
    heartbeat_seconds: float = 30.0
    event_bridge_config: dict[str, Any] | None = None  # eventbridge.py: the API destination
    agent_redirect_uris: list[str] = field(default_factory=list)
    media_uri_ttl_seconds: float = 3600.0
    channel_ttl_seconds: float = 86400.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    FIELDS = {"webhookUrl": "webhook_url", "webhookSecret": "webhook_secret", "dataActionUrl": "data_action_url",
              "dataActionAuth": "data_action_auth", "heartbeatSeconds": "heartbeat_seconds",
              "eventBridge": "event_bridge_config",
              "agentRedirectUris": "agent_redirect_uris", "mediaUriTtlSeconds": "media_uri_ttl_seconds",
              "channelTtlSeconds": "channel_ttl_seconds"}

    def update(self, changes: dict[str, Any]) -> None:
        unknown = set(changes) - set(self.FIELDS)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        checked_bridge = None
        for key, value in changes.items():
            if key == "eventBridge":
                from .eventbridge import check_config

                checked_bridge = check_config(value)
            elif key == "dataActionAuth":
                _check_auth(value)
            elif key == "agentRedirectUris":
                if not isinstance(value, list) or not all(isinstance(u, str) and u.startswith(("http://", "https://"))
                                                          for u in value):
                    raise ValueError("agentRedirectUris must be a list of http(s) URLs")
            elif key == "channelTtlSeconds":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 86400:
                    raise ValueError("channelTtlSeconds must be a number of seconds between 1 and 86400")
            elif key == "mediaUriTtlSeconds":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 7 * 86400:
                    raise ValueError("mediaUriTtlSeconds must be a number of seconds between 1 and 604800")
            elif key == "heartbeatSeconds":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.05 <= value <= 3600:
                    raise ValueError("heartbeatSeconds must be a number of seconds between 0.05 and 3600")
            elif value is not None and not isinstance(value, str):
                raise ValueError(f"{key} must be a string or null")
        with self._lock:
            for key, value in changes.items():
                if key in ("heartbeatSeconds", "mediaUriTtlSeconds", "channelTtlSeconds"):
                    setattr(self, self.FIELDS[key], float(value))
                elif key == "agentRedirectUris":
                    self.agent_redirect_uris = list(value)
                elif key == "eventBridge":
                    self.event_bridge_config = checked_bridge
                elif key == "dataActionAuth":
                    self.data_action_auth = dict(value) if value else None
                else:
                    setattr(self, self.FIELDS[key], value or None)

    def snapshot(self) -> tuple[str | None, str | None]:
        with self._lock:
            return self.webhook_url, self.webhook_secret

    def data_action(self) -> tuple[str | None, dict[str, str] | None]:
        with self._lock:
            return self.data_action_url, dict(self.data_action_auth) if self.data_action_auth else None

    def event_bridge(self) -> dict[str, Any] | None:
        with self._lock:
            return dict(self.event_bridge_config) if self.event_bridge_config else None

    def public(self) -> dict[str, Any]:
        from .eventbridge import public as bridge_public

        with self._lock:
            auth = self.data_action_auth
            shown_auth = None
            if auth:
                # Like the secret: the scheme and user name, never the password or token.
                shown_auth = {"username": auth["username"], "password": "*" * 8} if "username" in auth \
                    else {"token": "*" * 8}
            return {
                "webhookUrl": self.webhook_url,
                # Never echo the secret: only whether one is set and its length.
                "webhookSecret": ("*" * 8) if self.webhook_secret else None,
                "webhookSecretSet": bool(self.webhook_secret),
                "dataActionUrl": self.data_action_url,
                "dataActionAuth": shown_auth,
                "heartbeatSeconds": self.heartbeat_seconds,
                "eventBridge": bridge_public(self.event_bridge_config),
                "agentRedirectUris": list(self.agent_redirect_uris),
                "mediaUriTtlSeconds": self.media_uri_ttl_seconds,
                "channelTtlSeconds": self.channel_ttl_seconds,
            }


def _check_auth(value: Any) -> None:
    if value is None:
        return
    ok = isinstance(value, dict) and (
        (set(value) == {"username", "password"} and all(isinstance(v, str) for v in value.values())
         and value["username"] and ":" not in value["username"])
        or (set(value) == {"token"} and isinstance(value["token"], str) and value["token"]))
    if not ok:
        raise ValueError('dataActionAuth must be {"username", "password"}, {"token"} or null')
