"""What every `callbridge` command prints with."""

from __future__ import annotations

import json

from rich.console import Console

console = Console(highlight=False)


def print_json(data) -> None:
    console.print_json(json.dumps(data, default=str))
