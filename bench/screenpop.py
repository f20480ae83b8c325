"""python -m bench.screenpop: the screen-pop lookup service under load, and the seed's way.

For each org size (default 100k and 1M contacts): seeds the Salesforce emulator, builds the
caller-ID index from it over the REST API (time and peak RSS), starts the starter, then
measures POST /screenpop/lookup over HTTP at 1, 15 and 50 concurrent requests (every request
a different caller, so no answer comes from the cache) and the sustained lookups/s. Then the
seed's way — live exact-match SOQL per call, with 150 ms added to every Salesforce request —
its latency and its match rate on the accuracy corpus (tests/data/phone_formats.csv).

    .venv/bin/python -m bench.screenpop [--sizes 100000 1000000] [--seconds 10]

The load comes from wrk (`apt-get install wrk`), a C client on the same machine.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import subprocess
import os
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bench.stack import bench_settings, salesforce_token, salesforce_verify
from bench.tables import pct
from devstack.processes import ManagedProcess, python_module
from callbridge.core.settings import Settings
from devstack.stack import REPO, settings_env
from callbridge.store.db import get_engine
from callbridge.store.tables import caller_index as index_table

console = Console(width=150)
CORPUS = REPO / "tests" / "data" / "phone_formats.csv"


def settings_for(var: Path) -> Settings:
    return bench_settings(var, "callbridge-bench-screenpop", screenpop_live_budget_seconds=0)


def start_salesforce(settings: Settings, latency_ms: int = 0) -> ManagedProcess:
    data = settings.var_dir / "salesforce"
    proc = ManagedProcess(
        "salesforce", python_module("emulators.salesforce", "serve", "--port",
                                    settings.salesforce_instance_url.rsplit(":", 1)[1], "--data-dir", str(data),
                                    "--client-id", settings.salesforce_client_id,
                                    "--client-secret", settings.salesforce_client_secret.get_secret_value()),
        ready_url=f"{settings.salesforce_instance_url}/services/data", ca_file=data / "ca.pem",
        log_path=settings.var_dir / "salesforce.log", cwd=REPO,
    ).start(120)
    if latency_ms:
        httpx.post(f"{settings.salesforce_instance_url}/_emulator/faults", json={"latency_ms": latency_ms},
                   verify=salesforce_verify(settings)).raise_for_status()
    return proc


def measure(url: str, auth: tuple[str, str], numbers_file: Path, offset: int, concurrency: int,
            seconds: int) -> tuple[float, float, float, float, int]:
    """wrk (Debian's package) as the load: a C client, so the figures are the server's."""
    import base64

    header = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", str(REPO / "bench" / "lookup.lua"), url],
        env={"NUMBERS_FILE": str(numbers_file), "OFFSET": str(offset), "AUTH_HEADER": header, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    ).stdout
    requests, duration_us, p50, p99, p999, errors = map(float, out.split("RESULT", 1)[1].split())
    return p50 / 1000, p99 / 1000, p999 / 1000, requests / (duration_us / 1e6), int(errors)


def bench_size(contacts: int, seconds: int, table: Table) -> None:
    var = Path(f"var/bench-screenpop-{contacts}").resolve()
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    settings = settings_for(var)
    procs: list[ManagedProcess] = []
    try:
        t = time.perf_counter()
        subprocess.run(python_module("emulators.salesforce", "seed", "--data-dir", str(var / "salesforce"),
                                     "--contacts", str(contacts)), check=True, cwd=REPO, capture_output=True)
        seed_s = time.perf_counter() - t
        procs.append(start_salesforce(settings))
        t = time.perf_counter()
        # `callbridge index rebuild`, as an operator runs it; its own peak RSS from wait4.
        build = subprocess.Popen(python_module("callbridge.cli", "index", "rebuild"), cwd=REPO,
                                 env=settings_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(build.pid, 0)
        build.returncode = os.waitstatus_to_exitcode(status)
        if build.returncode:
            raise RuntimeError(f"callbridge index rebuild failed: {build.stderr.read().decode()[-500:]}")
        build_s = time.perf_counter() - t
        build_rss_mb = usage.ru_maxrss / 1024
        db_mb = (var / "callbridge.db").stat().st_size / 2**20
        with get_engine(settings.database_url).connect() as conn:
            numbers = sorted({r[0] for r in conn.execute(select(index_table.c.e164))})
        random.Random(1).shuffle(numbers)
        numbers_file = var / "numbers.txt"
        numbers_file.write_text("\n".join(numbers) + "\n")
        procs.append(ManagedProcess(
            "starter", python_module("starter.app"), env=settings_env(settings),
            ready_url=f"http://127.0.0.1:{settings.starter_port}/healthz", log_path=var / "starter.log", cwd=REPO,
        ).start())
        url = f"http://127.0.0.1:{settings.starter_port}/screenpop/lookup"
        auth = (settings.screenpop_username, settings.screenpop_password.get_secret_value())
        rows = []
        offset = 0
        for concurrency in (1, 15, 50):
            p50, p99, p999, rate, failures = measure(url, auth, numbers_file, offset, concurrency, seconds)
            offset += int(rate * seconds) + 1  # the next level starts with callers not yet asked for
            rows.append((concurrency, p50, p99, p999, rate, failures))
        for concurrency, p50, p99, p999, rate, failures in rows:
            table.add_row(
                f"{contacts:,}", str(concurrency), f"{p50:.1f}", f"{p99:.1f}", f"{p999:.1f}",
                f"{rate:,.0f}", str(failures),
                f"{build_s:.0f} s, {build_rss_mb:.0f} MB RSS, {db_mb:.0f} MB db" if concurrency == 1 else "",
                f"{seed_s:.0f} s" if concurrency == 1 else "",
            )
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(var, ignore_errors=True)


def seeds_way(table: Table) -> None:
    """Live exact-match SOQL on the raw ANI, as the seed's webhook handler and Apex do."""
    var = Path("var/bench-screenpop-seed").resolve()
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    settings = settings_for(var)
    proc = start_salesforce(settings)
    try:
        # Salesforce's REST API as any client calls it: a connected app's token, then JSON.
        api = httpx.Client(base_url=f"{settings.salesforce_instance_url}/services/data/v{settings.salesforce_api_version}",
                           headers={"Authorization": f"Bearer {salesforce_token(settings)}"},
                           verify=salesforce_verify(settings))
        with CORPUS.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        ids: dict[str, str] = {}
        for row in rows:
            key = row["contact"]
            if key not in ids:
                ids[key] = api.post("/sobjects/Contact", json={
                    "LastName": key, "MailingCountry": row["mailing_country"] or None}).raise_for_status().json()["id"]
            api.patch(f"/sobjects/Contact/{ids[key]}", json={row["field"]: row["stored"]}).raise_for_status()
        httpx.post(f"{settings.salesforce_instance_url}/_emulator/faults", json={"latency_ms": 150},
                   verify=salesforce_verify(settings)).raise_for_status()
        from simple_salesforce.format import format_soql

        latencies, found = [], 0
        for row in rows:
            t = time.perf_counter()
            records = api.get("/query", params={"q": format_soql(
                "SELECT Id FROM Contact WHERE Phone = {n} OR MobilePhone = {n} LIMIT 1", n=row["ani"])}
            ).raise_for_status().json()["records"]
            latencies.append(time.perf_counter() - t)
            found += bool(records) and records[0]["Id"] == ids[row["contact"]]
        table.add_row("seed's way (exact SOQL, +150 ms)", f"{pct(latencies, .5)*1000:.0f} ms",
                      f"{pct(latencies, .99)*1000:.0f} ms", f"{found}/{len(rows)} ({found / len(rows):.0%})")
    finally:
        proc.stop()
        shutil.rmtree(var, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seconds", type=int, default=10, help="load per concurrency level")
    args = parser.parse_args()
    table = Table(title="Screen-pop lookup over HTTP (each request a different caller; load from wrk)")
    for col in ("contacts", "concurrent", "p50 ms", "p99 ms", "p99.9 ms", "lookups/s", "failed",
                "index build (REST), peak RSS, size", "org seed"):
        table.add_column(col, justify="right")
    for size in args.sizes:
        with console.status(f"{size:,} contacts…"):
            bench_size(size, args.seconds, table)
    console.print(table)
    seed = Table(title="The seed's way on the accuracy corpus")
    for col in ("lookup", "p50", "p99", "right contact found"):
        seed.add_column(col)
    with console.status("the seed's way…"):
        seeds_way(seed)
    console.print(seed)


if __name__ == "__main__":
    main()
