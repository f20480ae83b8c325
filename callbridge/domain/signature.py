"""Relay webhook signatures: base64(HMAC-SHA256(secret, "{timestamp}.{raw body}")).

The seed's shape (X-Genesys-Webhook-*): Genesys itself signs nothing and has no such webhook;
a relay of your own can send it (docs/deploy.md).

Always computed over the raw request bytes (never re-serialised JSON) and compared in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_HEADER = "X-Genesys-Webhook-Signature"
TIMESTAMP_HEADER = "X-Genesys-Webhook-Timestamp"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


class SignatureError(ValueError):
    """Why a webhook was refused: the reason is safe to log and to answer with."""


def verify(
    secret: str,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: float,
    max_skew_seconds: int,
) -> None:
    if not signature or not timestamp:
        raise SignatureError("missing signature or timestamp header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("timestamp is not Unix seconds")
    if abs(now - int(timestamp)) > max_skew_seconds:
        raise SignatureError("stale timestamp")
    expected = sign(secret, timestamp, body).encode("ascii")
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        raise SignatureError("bad signature")
