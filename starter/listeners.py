"""The starter's listeners: the public one, and an optional internal one (loopback by default).

Both serve the same app; starter/gate.py tells them apart by the local port a request came in
on. The internal listener serves /metrics without credentials and, with
CALLBRIDGE_STARTER_INTERNAL_ROUTES, the admin UI, GDPR API and codec, which the public
listener then answers 404.
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import uvicorn

from callbridge.core.settings import Settings

_ANY = {"0.0.0.0", "::", ""}


def trusted_hosts(settings: Settings) -> list[str]:
    """Host header values the starter answers to (else 400): loopback, its own names, the list."""
    hosts = {"127.0.0.1", "localhost", "::1"}
    if settings.starter_host not in _ANY:
        hosts.add(settings.starter_host)
    if settings.public_url and urlparse(settings.public_url).hostname:
        hosts.add(urlparse(settings.public_url).hostname)
    hosts.update(h.strip() for h in settings.trusted_hosts.split(",") if h.strip())
    return sorted(hosts)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(server: uvicorn.Server, settings: Settings) -> None:
    if not settings.starter_internal_port:
        return server.run()
    sockets = [_bind(settings.starter_host, settings.starter_port),
               _bind(settings.starter_internal_host, settings.starter_internal_port)]
    server.run(sockets=sockets)
