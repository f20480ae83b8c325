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

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


@dataclass
class RuntimeConfig:
    """What POST /_emulator/config may change while running (tests start receivers late)."""

    webhook_url: str | None = None
    webhook_secret: str | None = None
    data_action_url: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    FIELDS = {"webhookUrl": "webhook_url", "webhookSecret": "webhook_secret", "dataActionUrl": "data_action_url"}

    def update(self, changes: dict[str, Any]) -> None:
        unknown = set(changes) - set(self.FIELDS)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        for key, value in changes.items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key} must be a string or null")
        with self._lock:
            for key, value in changes.items():
                setattr(self, self.FIELDS[key], value or None)

    def snapshot(self) -> tuple[str | None, str | None]:
        with self._lock:
            return self.webhook_url, self.webhook_secret

    def public(self) -> dict[str, Any]:
        with self._lock:
            return {
                "webhookUrl": self.webhook_url,
                # Never echo the secret: only whether one is set and its length.
                "webhookSecret": ("*" * 8) if self.webhook_secret else None,
                "webhookSecretSet": bool(self.webhook_secret),
                "dataActionUrl": self.data_action_url,
            }
