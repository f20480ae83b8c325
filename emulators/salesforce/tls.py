"""A local CA and a server certificate for 127.0.0.1/localhost, made once and reused."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class TlsFiles:
    ca: Path  # the CA certificate only: what clients pass as verify=
    cert: Path  # server certificate chain
    key: Path  # server private key


def ensure_tls(data_dir: Path) -> TlsFiles:
    files = TlsFiles(data_dir / "ca.pem", data_dir / "server-cert.pem", data_dir / "server-key.pem")
    if files.ca.exists() and files.cert.exists() and files.key.exists():
        return files
    data_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Callbridge Salesforce emulator CA")
    server = ca.issue_cert("127.0.0.1", "localhost", "::1")
    server.private_key_pem.write_to_path(str(files.key))
    os.chmod(files.key, 0o600)
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(str(files.cert), append=True)
    # The CA file goes last, atomically: its presence tells waiting clients TLS is ready.
    tmp = files.ca.with_suffix(".tmp")
    ca.cert_pem.write_to_path(str(tmp))
    tmp.replace(files.ca)
    return files
