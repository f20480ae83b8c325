"""Everything Callbridge's processes logged during the suite holds none of the privacy tests'
own PII (their emails, names). Runs after test_gdpr_erasure and test_privacy_features."""

from __future__ import annotations

import pytest

from tests.test_gdpr_erasure import TEST_EMAIL_DOMAIN

pytestmark = pytest.mark.integration


def test_no_test_pii_in_callbridge_logs(stack, test_var_dir):
    logs = [stack.log_dir / "worker.log", stack.log_dir / "starter.log"]
    text = "".join(p.read_text(errors="replace") for p in logs if p.exists())
    assert text  # the processes did log
    for pii in (TEST_EMAIL_DOMAIN, "Mustermann", "Maskme"):
        assert pii not in text
