"""Figures as the benches print them: percentiles and measure/value tables."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank below; NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def measure_table(title: str, rows: Iterable[tuple[str, str]] = ()) -> Table:
    """Two columns, what was measured and its value; more rows can be added to the table after."""
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for row in rows:
        table.add_row(*row)
    return table
