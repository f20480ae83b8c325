from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from callbridge.domain.signature import SignatureError, sign, verify

BODY = b'{"conversationId":"c-1"}'


def test_sign_is_base64_hmac_sha256_of_timestamp_dot_body():
    expected = base64.b64encode(hmac.new(b"s3cret", b"1700000000." + BODY, hashlib.sha256).digest()).decode()
    assert sign("s3cret", 1700000000, BODY) == expected


def test_verify_accepts_a_fresh_valid_signature():
    verify("s3cret", sign("s3cret", 1700000000, BODY), "1700000000", BODY, now=1700000100, max_skew_seconds=300)


@pytest.mark.parametrize(
    "sig, ts, body, now, reason",
    [
        (None, "1700000000", BODY, 1700000000, "missing"),
        ("x", None, BODY, 1700000000, "missing"),
        (sign("s3cret", 1700000000, BODY), "1700000000", BODY + b" ", 1700000000, "bad signature"),
        (sign("other", 1700000000, BODY), "1700000000", BODY, 1700000000, "bad signature"),
        (sign("s3cret", 1700000000, BODY), "1700000000", BODY, 1700000301, "stale"),
        (sign("s3cret", 1700000000, BODY), "1700000000", BODY, 1699999699, "stale"),
        (sign("s3cret", 1700000000, BODY), "17e8", BODY, 1700000000, "Unix seconds"),
        ("ü", "1700000000", BODY, 1700000000, "bad signature"),
    ],
)
def test_verify_refuses(sig, ts, body, now, reason):
    with pytest.raises(SignatureError, match=reason):
        verify("s3cret", sig, ts, body, now=now, max_skew_seconds=300)
