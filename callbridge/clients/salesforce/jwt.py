"""The OAuth 2.0 JWT bearer flow: how most production orgs connect a server integration.

The connected app holds a certificate; Callbridge signs a short-lived assertion for the
integration user with the certificate's private key and trades it for an access token at
`/services/oauth2/token` (grant_type urn:ietf:params:oauth:grant-type:jwt-bearer). Claims, per
Salesforce Help "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration": iss = the
connected app's consumer key, sub = the user's username, aud = the authorization server
(https://login.salesforce.com, https://test.salesforce.com for a sandbox), exp = at most
3 minutes ahead; signed RS256. No refresh token is issued: a new assertion signs in again.
"""

from __future__ import annotations

import time
from pathlib import Path

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIFETIME_SECONDS = 180


class JwtKeyError(ValueError):
    """The private key file is missing or holds no RSA private key: one line for the operator."""


def load_private_key(path: Path | None):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if path is None:
        raise JwtKeyError("CALLBRIDGE_SALESFORCE_JWT_KEY_FILE is not set (the JWT bearer flow signs with it)")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise JwtKeyError(f"cannot read the JWT key file {path}: {exc.strerror}") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise JwtKeyError(f"{path} holds no unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise JwtKeyError(f"{path} holds no RSA private key (Salesforce signs and checks RS256)")
    return key


def assertion(client_id: str, username: str, audience: str, key_file: Path | None) -> str:
    import jwt

    if not username:
        raise JwtKeyError("CALLBRIDGE_SALESFORCE_USERNAME is not set (the JWT bearer flow signs in as that user)")
    claims = {"iss": client_id, "sub": username, "aud": audience, "exp": int(time.time()) + LIFETIME_SECONDS}
    return jwt.encode(claims, load_private_key(key_file), algorithm="RS256")
