"""`callbridge doctor`: connectivity, credentials, fields and permissions, with what to fix."""

from __future__ import annotations

import typer

from callbridge.cli.output import console
from callbridge.core.settings import get_settings


def doctor() -> None:
    """Check connectivity, credentials, custom fields and permissions; say what to fix."""
    from callbridge.ops.doctor import run_checks

    checks = run_checks(get_settings())
    for c in checks:
        mark = "[green]OK  [/green]" if c.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {c.system:<10} {c.name}: {c.detail}")
        if not c.ok and c.fix:
            console.print(f"     fix: {c.fix}")
    failed = sum(not c.ok for c in checks)
    console.print(f"{len(checks) - failed} passed, {failed} failed.")
    raise typer.Exit(1 if failed else 0)
