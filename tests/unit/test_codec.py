"""AES-GCM payload codec: round trip, key rotation, tampering, foreign payloads."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload

from callbridge.core.codec import CodecKeyError, EncryptionCodec, new_key_spec, parse_keys

OLD, NEW = new_key_spec("k1"), new_key_spec("k2")


def payload(text: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text)


async def test_round_trip_hides_the_plaintext():
    codec = EncryptionCodec(parse_keys(NEW))
    original = payload(b'{"callerId": "+15125551234"}')
    [sealed] = await codec.encode([original])
    assert b"5125551234" not in sealed.SerializeToString()
    assert sealed.metadata["encryption-key-id"] == b"k2"
    assert await codec.decode([sealed]) == [original]


async def test_rotation_old_payloads_still_decrypt():
    [old_sealed] = await EncryptionCodec(parse_keys(OLD)).encode([payload(b"1")])
    rotated = EncryptionCodec(parse_keys(f"{NEW},{OLD}"))
    assert (await rotated.decode([old_sealed]))[0].data == b"1"
    [new_sealed] = await rotated.encode([payload(b"2")])
    assert new_sealed.metadata["encryption-key-id"] == b"k2"
    with pytest.raises(CodecKeyError):  # a retired key can no longer read new payloads' peers
        await EncryptionCodec(parse_keys(OLD)).decode([new_sealed])


async def test_tampering_is_detected():
    codec = EncryptionCodec(parse_keys(NEW))
    [sealed] = await codec.encode([payload(b"x")])
    sealed.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(InvalidTag):
        await codec.decode([sealed])


async def test_unencrypted_payloads_pass_through():
    plain = payload(b"7")
    assert await EncryptionCodec(parse_keys(NEW)).decode([plain]) == [plain]


@pytest.mark.parametrize("spec", ["", "nokey", "k:not base64!", "k:c2hvcnQ="])
def test_bad_key_specs_name_the_problem(spec):
    with pytest.raises(CodecKeyError):
        parse_keys(spec)
