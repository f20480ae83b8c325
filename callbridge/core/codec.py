"""AES-GCM payload codec: Temporal stores call payloads (caller numbers, names) encrypted.

Keys come from settings as `key_id:base64(32 bytes)` pairs; the first encrypts, every one of
them decrypts, so a key is rotated by putting a new one first and keeping the old behind it.
The key id travels in each payload's metadata.
"""

from __future__ import annotations

import base64
import os
from typing import Iterable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


class CodecKeyError(ValueError):
    pass


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    """`kid1:base64,kid2:base64` -> [(kid, key)], first one current."""
    keys = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, encoded = part.partition(":")
        if not sep or not kid:
            raise CodecKeyError("each payload key must be written key_id:base64")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise CodecKeyError(f"payload key {kid!r} is not base64") from None
        if len(key) != 32:
            raise CodecKeyError(f"payload key {kid!r} must be 32 bytes (AES-256)")
        keys.append((kid, key))
    if not keys:
        raise CodecKeyError("no payload key configured")
    return keys


def new_key_spec(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class PlaintextPayloadError(CodecKeyError):
    """A payload that isn't encrypted reached a strict codec (the worker's, the starter's)."""


class EncryptionCodec(PayloadCodec):
    """`require_encrypted`: refuse plaintext payloads instead of passing them through. The
    worker and the starter use it, so whoever can reach Temporal without the key cannot start,
    signal or query a workflow with input of their own; the codec endpoint (for the UI) doesn't."""

    def __init__(self, keys: Sequence[tuple[str, bytes]], *, require_encrypted: bool = False) -> None:
        self._require_encrypted = require_encrypted
        self._current_id, current = keys[0]
        self._current = AESGCM(current)
        self._by_id = {kid: AESGCM(key) for kid, key in keys}

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        nonce = os.urandom(12)
        sealed = self._current.encrypt(nonce, payload.SerializeToString(), self._current_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self._current_id.encode()}, data=nonce + sealed)

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            if self._require_encrypted:
                raise PlaintextPayloadError(
                    "refused a payload that is not encrypted with a Callbridge payload key "
                    "(started or signalled by a client without CALLBRIDGE_PAYLOAD_KEYS?)")
            return payload
        kid = payload.metadata.get(KEY_ID, b"").decode()
        aes = self._by_id.get(kid)
        if aes is None:
            raise CodecKeyError(f"no key {kid!r} to decrypt this payload")
        return Payload.FromString(aes.decrypt(payload.data[:12], payload.data[12:], kid.encode()))
