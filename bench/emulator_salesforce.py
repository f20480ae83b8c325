"""python -m bench.emulator_salesforce: the Salesforce emulator at the issue's scale.

Builds a TechSupport Inc. org of --contacts contacts (default 1,000,000) in a temporary
directory with the real CLI and times it, starts the emulator on a free port, then measures
over HTTPS with one keep-alive client:

- a query for one contact by an indexed field (Id, Email, Genesys_Contact_Id__c), p50/p99
  over --queries queries each;
- a 2,000-row page: the first page of a query over all contacts (p50/p99 over --pages
  runs), and nextRecordsUrl pages: following nextRecordsUrl through the whole result (or
  --walk-pages pages of it), as a client reading every contact does;

and prints a table with the issue's targets (<5 ms, <50 ms, <2 min) and pass/fail. Exits 1
if a target is missed.

    .venv/bin/python -m bench.emulator_salesforce                   # 1,000,000 contacts
    .venv/bin/python -m bench.emulator_salesforce --contacts 50000  # a quick run
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from devstack.processes import ManagedProcess, free_port, python_module

V = "/services/data/v62.0"
FIELDS = "Id, Name, FirstName, LastName, Email, Phone, MobilePhone, AccountId, Account.Name, Custom_Tier__c"


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(client: httpx.Client, url: str, **kw) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    r = client.get(url, **kw)
    elapsed = (time.perf_counter() - started) * 1000
    r.raise_for_status()
    return elapsed, r


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300, help="single-contact queries per indexed field")
    parser.add_argument("--pages", type=int, default=30, help="first pages to time")
    parser.add_argument("--walk-pages", type=int, default=0, help="nextRecordsUrl pages to follow (0: all)")
    parser.add_argument("--keep", type=Path, help="build the org here and keep it (default: a temp dir)")
    args = parser.parse_args()
    console = Console(width=120)

    work = args.keep or Path(tempfile.mkdtemp(prefix="sf-bench-"))
    data_dir = work / "salesforce"
    proc = None
    try:
        console.print(f"Seeding {args.contacts:,} contacts into {data_dir} ...")
        started = time.monotonic()
        subprocess.run(python_module("emulators.salesforce", "seed", "--data-dir", str(data_dir),
                                     "--contacts", str(args.contacts)), check=True)
        seed_seconds = time.monotonic() - started

        rng = random.Random(7)
        with sqlite3.connect(data_dir / "org.db") as conn:
            total = conn.execute("SELECT MAX(rid) FROM Contact").fetchone()[0]
            picks = [rng.randint(1, total) for _ in range(args.queries)]
            rows = [conn.execute("SELECT Id, Email FROM Contact WHERE rid = ?", (rid,)).fetchone() for rid in picks]
        ids = [r[0] for r in rows]
        emails = [r[1] for r in rows if r[1]]

        port = free_port()
        proc = ManagedProcess("sf-bench", python_module(
            "emulators.salesforce", "serve", "--port", str(port), "--data-dir", str(data_dir), "--client-id",
            "bench", "--client-secret", "bench", "--daily-api-limit", "10000000"),
            ready_url=f"https://127.0.0.1:{port}/_emulator/health", ca_file=data_dir / "ca.pem",
            log_path=work / "salesforce.log").start(timeout=120)
        ctx = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=60) as c:
            token = c.post("/services/oauth2/token", data={"grant_type": "client_credentials", "client_id": "bench",
                                                           "client_secret": "bench"}).json()["access_token"]
            c.headers["Authorization"] = f"Bearer {token}"
            # Genesys ids as the integration writes them: upserted onto existing contacts.
            gids = []
            for i, cid in enumerate(ids):
                gid = f"gc-bench-{i:06d}"
                c.patch(f"{V}/sobjects/Contact/{cid}", json={"Genesys_Contact_Id__c": gid}).raise_for_status()
                gids.append(gid)

            def one_contact(where: str) -> float:
                ms, r = timed(c, f"{V}/query", params={"q": f"SELECT {FIELDS} FROM Contact WHERE {where}"})
                assert r.json()["totalSize"] >= 1, where
                return ms

            lookups = {
                "Id": [f"Id = '{v}'" for v in ids],
                "Email": [f"Email = '{v}'" for v in emails],
                "Genesys_Contact_Id__c": [f"Genesys_Contact_Id__c = '{v}'" for v in gids],
            }
            for wheres in lookups.values():  # warm up caches and the connection
                for w in wheres[:20]:
                    one_contact(w)
            lookup_ms = {name: [one_contact(w) for w in wheres] for name, wheres in lookups.items()}

            page_query = {"q": f"SELECT {FIELDS} FROM Contact"}
            first_ms, next_ms = [], []
            for i in range(args.pages + 2):
                ms, r = timed(c, f"{V}/query", params=page_query)
                body = r.json()
                assert len(body["records"]) == min(2000, args.contacts) and body["totalSize"] == args.contacts
                if i >= 2:  # the first two warm up
                    first_ms.append(ms)
            seen = len(body["records"])
            url = body.get("nextRecordsUrl")
            while url and (not args.walk_pages or len(next_ms) < args.walk_pages):
                ms, r = timed(c, url)
                page = r.json()
                next_ms.append(ms)
                seen += len(page["records"])
                url = page.get("nextRecordsUrl")
            if not args.walk_pages:
                assert seen == args.contacts, (seen, args.contacts)
    finally:
        if proc:
            proc.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    table = Table(title=f"Salesforce emulator, {args.contacts:,} contacts (HTTPS, keep-alive client)")
    for col in ("measure", "n", "p50", "p99", "target", "result"):
        table.add_column(col, justify="left" if col in ("measure", "result") else "right")
    failed = False

    def row(name: str, samples: list[float], target_ms: float) -> None:
        nonlocal failed
        ok = pct(samples, 99) < target_ms
        failed |= not ok
        table.add_row(name, str(len(samples)), f"{pct(samples, 50):.2f} ms", f"{pct(samples, 99):.2f} ms",
                      f"< {target_ms:g} ms", "[green]pass[/]" if ok else "[red]FAIL[/]")

    for name, samples in lookup_ms.items():
        row(f"one contact by {name}", samples, 5)
    row("2,000-row page: first page", first_ms, 50)
    if next_ms:
        row("2,000-row page: nextRecordsUrl (walk)", next_ms, 50)
    seed_ok = seed_seconds < 120
    failed |= not seed_ok
    table.add_row("seed build (CLI, whole process)", "1", f"{seed_seconds:.1f} s", "", "< 2 min",
                  "[green]pass[/]" if seed_ok else "[red]FAIL[/]")
    console.print(table)
    console.print(f"mean single-contact query: {statistics.mean(sum(lookup_ms.values(), [])):.2f} ms")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
