"""The Genesys emulator's outgoing requests (data actions, webhooks, EventBridge) share one TLS
context: building one per request loaded the CA bundle each time, most of the emulator's CPU
per simulated call, which the benches on the same machine charged to the product."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import httpx

EMULATORS = Path(__file__).resolve().parents[2] / "emulators"


def test_every_outgoing_client_of_the_emulators_uses_the_shared_tls_context():
    unshared = []
    for path in sorted(EMULATORS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("Client", "AsyncClient")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "httpx"
                    and not any(k.arg == "verify" for k in node.keywords)):
                unshared.append(f"{path.relative_to(EMULATORS.parent)}:{node.lineno}")
    assert unshared == []


def test_the_shared_context_is_built_once_and_verifies(monkeypatch):
    from emulators.genesys import wire

    built = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **kw: built.append(1) or real(*a, **kw))
    wire.tls.cache_clear()
    for _ in range(3):
        with httpx.Client(verify=wire.tls()):
            pass
    assert len(built) == 1
    assert wire.tls().verify_mode == ssl.CERT_REQUIRED and wire.tls().check_hostname
