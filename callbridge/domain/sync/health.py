"""Sync health: the seed's score over the last runs, and its per-run alerts (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

RECENT_RUNS = 10


def health_score(runs: Iterable[tuple[int, float]]) -> int:
    """The seed's SyncMonitor.getHealthScore: over the last 10 runs, 100 minus 5 per average
    error minus 1 per average second of duration, never below 0. `runs`: (errors, seconds),
    oldest first."""
    recent = list(runs)[-RECENT_RUNS:]
    if not recent:
        return 100
    avg_errors = sum(e for e, _ in recent) / len(recent)
    avg_seconds = sum(s for _, s in recent) / len(recent)
    return max(0, round(100 - avg_errors * 5 - avg_seconds))


@dataclass(frozen=True)
class Alert:
    rule: str
    text: str
    level: str = "warning"


def run_alerts(errors: int, duration_seconds: float, conflicts: int, *, max_errors: int = 10,
               max_seconds: float = 300.0, max_conflicts: int = 10) -> list[Alert]:
    """The seed's alerts for one run: errors > 10, duration > 5 min, conflicts > 10 (configurable)."""
    alerts = []
    if errors > max_errors:
        alerts.append(Alert("contact_sync_errors", f"contact sync run had {errors} errors (limit {max_errors})",
                            "error"))
    if duration_seconds > max_seconds:
        alerts.append(Alert("contact_sync_duration",
                            f"contact sync run took {duration_seconds:.0f} s (limit {max_seconds:.0f} s)"))
    if conflicts > max_conflicts:
        alerts.append(Alert("contact_sync_conflicts",
                            f"contact sync run met {conflicts} conflicts (limit {max_conflicts})"))
    return alerts
