"""Callbridge reaches a Temporal that demands TLS and a client certificate (issue #17).

The dev server speaks plaintext only, so a TLS terminator in front of it stands in for a real
cluster's frontend: it presents a certificate from a test CA, requires a client certificate from
that CA (mTLS) and negotiates HTTP/2, then passes the bytes through.
"""

from __future__ import annotations

import asyncio
import ssl
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme

from callbridge.core.settings import Settings
from callbridge.core.temporal import TemporalSettingsError, connect

pytestmark = pytest.mark.integration


@asynccontextmanager
async def mtls_frontend(target: str, ca: trustme.CA, server_name: str):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(server_name).configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED  # mTLS: no client certificate, no connection
    context.set_alpn_protocols(["h2"])
    host, port = target.rsplit(":", 1)

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def _tls_settings(tmp_path: Path, address: str, ca: trustme.CA, *, client_cert: bool, server_name: str | None) -> Settings:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    extra = {}
    if client_cert:
        issued = ca.issue_cert("callbridge-worker")
        cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
        issued.cert_chain_pems[0].write_to_path(cert_file)
        issued.private_key_pem.write_to_path(key_file)
        extra = {"temporal_tls_cert_file": cert_file, "temporal_tls_key_file": key_file}
    return Settings(temporal_address=address, temporal_tls=True, temporal_tls_ca_file=ca_file,
                    temporal_tls_server_name=server_name, **extra)


async def test_connects_with_mtls_and_a_server_name_other_than_the_address(temporal_env, tmp_path) -> None:
    ca = trustme.CA()
    target = temporal_env.client.service_client.config.target_host
    async with mtls_frontend(target, ca, "temporal.internal") as address:
        settings = _tls_settings(tmp_path, address, ca, client_cert=True, server_name="temporal.internal")
        client = await asyncio.wait_for(connect(settings), 20)
        assert (await client.count_workflows()).count >= 0  # a real round trip through the TLS frontend


async def test_without_a_client_certificate_the_frontend_refuses(temporal_env, tmp_path) -> None:
    ca = trustme.CA()
    target = temporal_env.client.service_client.config.target_host
    async with mtls_frontend(target, ca, "temporal.internal") as address:
        settings = _tls_settings(tmp_path, address, ca, client_cert=False, server_name="temporal.internal")
        with pytest.raises(RuntimeError, match="Failed client connect"):
            await asyncio.wait_for(connect(settings), 30)


async def test_a_certificate_without_its_key_is_a_settings_error(tmp_path) -> None:
    cert = tmp_path / "client.pem"
    trustme.CA().issue_cert("x").cert_chain_pems[0].write_to_path(cert)
    with pytest.raises(TemporalSettingsError, match="go together"):
        await connect(Settings(temporal_tls_cert_file=cert))
    with pytest.raises(TemporalSettingsError, match="cannot read"):
        await connect(Settings(temporal_tls_ca_file=tmp_path / "missing.pem"))
