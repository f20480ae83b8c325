"""`python -m emulators.salesforce serve|seed ...`"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.salesforce")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the REST API over HTTPS")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--data-dir", type=Path, required=True)
    serve.add_argument("--client-id", required=True)
    serve.add_argument("--client-secret", required=True)
    serve.add_argument("--token-ttl", type=int, default=7200, help="seconds")
    serve.add_argument("--daily-api-limit", type=int, default=100_000)
    serve.add_argument("--sosl-lag-seconds", type=float, default=0.0)
    serve.add_argument("--username", help="integration user for the OAuth password and JWT bearer flows")
    serve.add_argument("--password", help="that user's password (password flow)")
    serve.add_argument("--jwt-public-key", type=Path, help="PEM certificate or public key of the connected app")
    seed = sub.add_parser("seed", help="build the TechSupport Inc. demo org if the org is empty")
    seed.add_argument("--data-dir", type=Path, required=True)
    seed.add_argument("--contacts", type=int, default=3000)
    seed.add_argument("--random-seed", type=int, default=42)
    args = parser.parse_args(argv)

    if args.command == "seed":
        from .seed import build_techsupport_org

        started = time.monotonic()
        counts = build_techsupport_org(args.data_dir, args.contacts, args.random_seed)
        reused = counts.pop("reused")
        what = ", ".join(f"{v} {k}" for k, v in counts.items())
        verb = "reused the existing org" if reused else "built TechSupport Inc."
        print(f"salesforce emulator: {verb} in {args.data_dir / 'org.db'} ({what}) "
              f"in {time.monotonic() - started:.1f}s")
        return 0

    import uvicorn

    from .app import Config, create_app
    from .tls import ensure_tls

    tls = ensure_tls(args.data_dir)
    app = create_app(Config(args.data_dir, args.client_id, args.client_secret, args.token_ttl,
                            args.daily_api_limit, args.sosl_lag_seconds, args.username, args.password,
                            args.jwt_public_key))
    uvicorn.run(app, host=args.host, port=args.port, ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key),
                log_level="warning", timeout_graceful_shutdown=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
