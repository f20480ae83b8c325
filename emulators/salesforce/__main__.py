"""`python -m emulators.salesforce serve|seed ...`, or the issue's form `--seed techsupport --contacts N`.

`callbridge-dev emulate salesforce ARGS` runs this module with ARGS, so both
`callbridge-dev emulate salesforce --seed techsupport --contacts 1000000` and
`callbridge-dev emulate salesforce serve ...` work.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path


DEFAULT_DATA_DIR = Path("var/salesforce")
SEEDS = ("techsupport",)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("--seed"):
        # The form: `--seed techsupport --contacts N [--data-dir DIR]` means `seed`.
        argv = ["seed", *argv]
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
    serve.add_argument("--pubsub-port", type=int,
                       help="also serve the Pub/Sub API (Change Data Capture, gRPC over TLS) on this port")
    serve.add_argument("--username", help="integration user for the OAuth password and JWT bearer flows")
    serve.add_argument("--password", help="that user's password (password flow)")
    serve.add_argument("--jwt-public-key", type=Path, help="PEM certificate or public key of the connected app")
    faults = serve.add_argument_group("faults in force from the start (also settable at run time: "
                                      "POST /_emulator/faults)")
    faults.add_argument("--latency-ms", type=float, help="fixed added latency per API request")
    faults.add_argument("--latency", metavar="JSON",
                        help='latency distribution, e.g. \'{"distribution": "lognormal", "median": 150, "p99": 600}\' '
                             'or \'{"distribution": "uniform", "min": 50, "max": 200}\'')
    faults.add_argument("--fault-error-rate", type=float, help="share of API requests answered with an error")
    faults.add_argument("--fault-error-status", type=int, choices=(500, 503), help="that error's status")
    faults.add_argument("--unable-to-lock-row-rate", type=float, help="share of writes failing UNABLE_TO_LOCK_ROW")
    faults.add_argument("--request-limit-exceeded", action="store_true", help="answer 403 REQUEST_LIMIT_EXCEEDED")
    faults.add_argument("--fault-seed", type=int, help="seed of the random faults")
    faults.add_argument("--faults", metavar="JSON", help="a whole /_emulator/faults body")
    seed = sub.add_parser("seed", help="build the TechSupport Inc. demo org if the org is empty")
    seed.add_argument("--seed", default="techsupport", choices=SEEDS, help="which org to build")
    seed.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
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

    try:
        start_faults = _start_faults(args)
        from .faults import Faults

        Faults().merge(start_faults)  # refuse a bad fault configuration before starting
    except (ValueError, KeyError, TypeError) as exc:
        parser.error(f"bad fault configuration: {exc}")
    tls = ensure_tls(args.data_dir)
    app = create_app(Config(args.data_dir, args.client_id, args.client_secret, args.token_ttl,
                            args.daily_api_limit, args.sosl_lag_seconds, args.username, args.password,
                            args.jwt_public_key, start_faults or None))
    # Fewer, later collections: a 2,000-record page allocates ~30k objects, and default
    # thresholds run full collections over the long-lived app mid-request (p99 spikes).
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    if args.pubsub_port:
        import asyncio

        asyncio.run(_serve_with_pubsub(app, args, tls))
        return 0
    uvicorn.run(app, host=args.host, port=args.port, ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key),
                log_level="warning", timeout_graceful_shutdown=1)
    return 0


async def _serve_with_pubsub(app, args: argparse.Namespace, tls) -> None:
    """REST and the Pub/Sub API in one event loop: they share the org, its write lock and its events."""
    import uvicorn

    from .app import _ORG_ID
    from .pubsub import server as pubsub_server

    grpc_server = await pubsub_server.start(app.state.emulator, _ORG_ID, args.host, args.pubsub_port,
                                            tls.cert.read_bytes(), tls.key.read_bytes())
    config = uvicorn.Config(app, host=args.host, port=args.port, ssl_certfile=str(tls.cert),
                            ssl_keyfile=str(tls.key), log_level="warning", timeout_graceful_shutdown=1)
    try:
        await uvicorn.Server(config).serve()
    finally:
        await grpc_server.stop(1)


def _start_faults(args: argparse.Namespace) -> dict:
    out: dict = json.loads(args.faults) if args.faults else {}
    if args.latency:
        out["latency_ms"] = json.loads(args.latency)
    elif args.latency_ms is not None:
        out["latency_ms"] = args.latency_ms
    for key, value in (("error_rate", args.fault_error_rate), ("error_status", args.fault_error_status),
                       ("unable_to_lock_row_rate", args.unable_to_lock_row_rate), ("seed", args.fault_seed)):
        if value is not None:
            out[key] = value
    if args.request_limit_exceeded:
        out["request_limit_exceeded"] = True
    return out


if __name__ == "__main__":
    sys.exit(main())
