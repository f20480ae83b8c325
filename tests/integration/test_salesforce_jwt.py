"""JWT bearer sign-in (issue #16 item 7): a connected app holding a certificate, Callbridge
signing the assertion with its private key; the connection and `callbridge doctor` on it."""

from __future__ import annotations

import datetime as dt
import ssl

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from callbridge.clients.salesforce.connection import SalesforceAuthError, SalesforceConnection
from devstack.processes import ManagedProcess, free_port, python_module
from tests.helpers import stack_settings
from tests.integration.test_doctor import doctor

pytestmark = pytest.mark.integration

USER = "integration@techsupport.example"


def write_key(path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


@pytest.fixture(scope="module")
def jwt_org(tmp_path_factory):
    """An emulator whose connected app holds a self-signed certificate (as uploaded in Setup)."""
    tmp = tmp_path_factory.mktemp("jwt")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "callbridge-integration")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    (tmp / "app.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_key(tmp / "callbridge.key", key)
    data_dir, port, pubsub_port = tmp / "sf", free_port(), free_port()
    proc = ManagedProcess("sf-jwt", python_module(
        "emulators.salesforce", "serve", "--port", str(port), "--data-dir", str(data_dir), "--client-id",
        "jwt-app", "--client-secret", "unused", "--username", USER, "--jwt-public-key", str(tmp / "app.crt"),
        "--pubsub-port", str(pubsub_port)),
        ready_url=f"https://127.0.0.1:{port}/_emulator/health", ca_file=data_dir / "ca.pem",
        log_path=tmp / "sf.log").start()
    url = f"https://127.0.0.1:{port}"
    env = {"CALLBRIDGE_SALESFORCE_AUTH_FLOW": "jwt_bearer", "CALLBRIDGE_SALESFORCE_LOGIN_URL": url,
           "CALLBRIDGE_SALESFORCE_INSTANCE_URL": url, "CALLBRIDGE_SALESFORCE_CLIENT_ID": "jwt-app",
           "CALLBRIDGE_SALESFORCE_CLIENT_SECRET": "not-this-one", "CALLBRIDGE_SALESFORCE_USERNAME": USER,
           "CALLBRIDGE_SALESFORCE_JWT_KEY_FILE": str(tmp / "callbridge.key"),
           "CALLBRIDGE_SALESFORCE_CA_FILE": str(data_dir / "ca.pem"),
           # The doctor also opens the change-event subscriptions: this org's, under its CA.
           "CALLBRIDGE_SALESFORCE_PUBSUB_ENDPOINT": f"127.0.0.1:{pubsub_port}"}
    try:
        yield {"env": env, "url": url, "ca": str(data_dir / "ca.pem"), "dir": tmp}
    finally:
        proc.stop()


def settings_for(stack, env: dict[str, str]):
    return stack_settings(stack, **{k.removeprefix("CALLBRIDGE_").lower(): v for k, v in env.items()})


def test_the_connection_signs_in_with_a_jwt_and_again_when_the_session_expires(stack, jwt_org):
    conn = SalesforceConnection(settings_for(stack, jwt_org["env"]))
    assert conn.query("SELECT Id FROM Account LIMIT 1")["done"] is True
    httpx.post(f"{jwt_org['url']}/_emulator/sessions/expire",
               verify=ssl.create_default_context(cafile=jwt_org["ca"])).raise_for_status()
    assert conn.query("SELECT Id FROM Contact LIMIT 1")["done"] is True  # a new assertion, a new token


def test_a_missing_key_or_a_key_the_app_does_not_know_is_one_clear_line(stack, jwt_org):
    missing = SalesforceConnection(settings_for(stack, {**jwt_org["env"], "CALLBRIDGE_SALESFORCE_JWT_KEY_FILE":
                                                        str(jwt_org["dir"] / "nowhere.key")}))
    with pytest.raises(SalesforceAuthError, match="cannot read the JWT key file"):
        missing.client()
    write_key(jwt_org["dir"] / "other.key", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    stranger = SalesforceConnection(settings_for(stack, {**jwt_org["env"], "CALLBRIDGE_SALESFORCE_JWT_KEY_FILE":
                                                         str(jwt_org["dir"] / "other.key")}))
    with pytest.raises(SalesforceAuthError, match="invalid_grant"):
        stranger.client()
    elsewhere = SalesforceConnection(settings_for(stack, {**jwt_org["env"], "CALLBRIDGE_SALESFORCE_JWT_AUDIENCE":
                                                          "https://example.com"}))
    with pytest.raises(SalesforceAuthError, match="audience is invalid"):
        elsewhere.client()
    sandbox = SalesforceConnection(settings_for(stack, {**jwt_org["env"], "CALLBRIDGE_SALESFORCE_JWT_AUDIENCE":
                                                        "https://test.salesforce.com"}))
    assert sandbox.client() is not None


def test_doctor_checks_the_jwt_sign_in(stack, jwt_org):
    run = doctor({**stack.env, **jwt_org["env"]})
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"salesforce credentials: token from {jwt_org['url']} (JWT bearer as {USER})" in run.stdout
    assert "salesforce Contact permissions: ok" in run.stdout

    bad = doctor({**stack.env, **jwt_org["env"], "CALLBRIDGE_SALESFORCE_USERNAME": "someone.else@example.com"})
    assert bad.returncode == 1
    assert "FAIL salesforce credentials" in bad.stdout and "pre-authorized for the app" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
