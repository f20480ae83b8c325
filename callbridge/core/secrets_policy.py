"""No public demo secret outside the demo: the one list of secret settings and their rules.

The demo defaults in callbridge/core/settings.py are public (they are in this repository). A
worker or starter running with one of them, or with a secret too short to resist guessing,
refuses to start unless demo mode is explicit: CALLBRIDGE_DEMO=1, which only `callbridge-dev demo`
and the test stack set. `callbridge doctor` reports the same findings.
"""

from __future__ import annotations

import base64
import os
import sys
from dataclasses import dataclass

from callbridge.core.settings import Settings

DEMO_ENV = "CALLBRIDGE_DEMO"
MIN_SECRET_CHARS = 16  # tokens and passwords (OWASP ASVS 2.1.1 asks 12+ of people; these are machines')
PAYLOAD_KEY_BYTES = 32

_TOKEN = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
_PAYLOAD_KEY = "generate one with: python3 -c 'import os,base64; print(\"k1:\"+base64.b64encode(os.urandom(32)).decode())'"


@dataclass(frozen=True)
class SecretSetting:
    name: str  # the Settings field; its variable is CALLBRIDGE_<NAME>
    generate: str = _TOKEN  # how to get a good value, for the refusal and the doctor

    @property
    def variable(self) -> str:
        return f"CALLBRIDGE_{self.name.upper()}"


# Every secret Callbridge holds. A new secret setting goes here, and into docker-compose.yml
# (${VAR:?}) and docs/deploy.md's generator table.
SECRETS: tuple[SecretSetting, ...] = (
    SecretSetting("payload_keys", _PAYLOAD_KEY),
    SecretSetting("codec_token"),
    SecretSetting("privacy_hash_key"),
    SecretSetting("webhook_secret"),
    SecretSetting("events_password"),
    SecretSetting("events_api_key"),
    SecretSetting("screenpop_password"),
    SecretSetting("screenpop_bearer_token"),
    SecretSetting("admin_password"),
    SecretSetting("salesforce_client_secret", "use the Connected App's consumer secret (Salesforce Setup)"),
    SecretSetting("genesys_client_secret", "use the OAuth client's secret (Genesys Cloud Admin > OAuth)"),
    SecretSetting("genesys_admin_client_secret", "use the admin OAuth client's secret (Genesys Cloud Admin > OAuth)"),
    SecretSetting("temporal_api_key", "create one in Temporal Cloud (Settings > API keys)"),
)
# Optional secrets: unset or empty means the feature is off, not a weak secret.
_OPTIONAL = {"screenpop_bearer_token", "events_api_key", "genesys_admin_client_secret", "temporal_api_key"}


def demo_mode() -> bool:
    return os.environ.get(DEMO_ENV) == "1"


def _value(settings: Settings, name: str) -> str | None:
    value = getattr(settings, name)
    return None if value is None else value.get_secret_value()


def _payload_key_problem(spec: str) -> str | None:
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, _, encoded = part.partition(":")
        try:
            if len(base64.b64decode(encoded, validate=True)) < PAYLOAD_KEY_BYTES:
                return f"key {kid!r} is shorter than {PAYLOAD_KEY_BYTES} bytes"
        except ValueError:
            return f"key {kid!r} is not base64"
    return None


def weak_secrets(settings: Settings) -> list[tuple[SecretSetting, str]]:
    """(setting, why) for every secret that equals its public demo default or is too short."""
    defaults = Settings.model_fields
    found = []
    for secret in SECRETS:
        value = _value(settings, secret.name)
        if not value and secret.name in _OPTIONAL:
            continue
        default = defaults[secret.name].default
        default = default.get_secret_value() if default is not None else None
        if value is None or value == "":
            found.append((secret, "is not set"))
        elif value == default or any(value == d for d in _PUBLIC_DEMO_VALUES):
            found.append((secret, "is the public demo value"))
        elif secret.name == "payload_keys":
            if (why := _payload_key_problem(value)) is not None:
                found.append((secret, why))
        elif len(value) < MIN_SECRET_CHARS:
            found.append((secret, f"is shorter than {MIN_SECRET_CHARS} characters"))
    return found


# Demo values that appear elsewhere in the repository (compose's emulators, demo scripts).
_PUBLIC_DEMO_VALUES = frozenset({"callbridge-demo-secret", "callbridge-demo-webhook-secret"})


def refusal(found: list[tuple[SecretSetting, str]]) -> str:
    lines = [f"Refusing to start: {len(found)} secret setting(s) are public demo values or too weak "
             f"(set {DEMO_ENV}=1 only for the local demo):"]
    for secret, why in found:
        lines.append(f"  {secret.variable} {why}; {secret.generate}")
    lines.append("See docs/deploy.md, \"Secrets\".")
    return "\n".join(lines)


def refuse_demo_secrets(settings: Settings) -> None:
    """Exit with one clear message (no traceback) unless every secret is real or this is the demo."""
    if demo_mode():
        return
    found = weak_secrets(settings)
    if found:
        print(refusal(found), file=sys.stderr)
        raise SystemExit(2)
