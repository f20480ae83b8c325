"""python -m emulators.genesys serve --host H --port P --data-dir DIR --client-id ID --client-secret S
[--webhook-url URL] [--webhook-secret S] [--token-ttl SECONDS] [--rate-limit N]"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from .app import create_app
from .settings import EmulatorSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.genesys", description="Genesys Cloud emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Platform API v2 emulator over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081)
    serve.add_argument("--data-dir", type=Path, required=True)
    serve.add_argument("--client-id", required=True)
    serve.add_argument("--client-secret", required=True)
    serve.add_argument("--webhook-url")
    serve.add_argument("--webhook-secret")
    serve.add_argument("--token-ttl", type=int, default=86400, help="token lifetime in seconds")
    serve.add_argument("--rate-limit", type=int, default=300, help="requests per minute per token")
    args = parser.parse_args(argv)
    if args.token_ttl < 1 or args.rate_limit < 1:
        parser.error("--token-ttl and --rate-limit must be positive")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = EmulatorSettings(
        data_dir=args.data_dir, client_id=args.client_id, client_secret=args.client_secret,
        host=args.host, port=args.port, token_ttl=args.token_ttl, rate_limit=args.rate_limit,
        webhook_url=args.webhook_url, webhook_secret=args.webhook_secret,
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
