"""The test process' own log output, captured to a file like the worker's and starter's, so the
end-of-session PII scan (test_zz_privacy_log_scan) reads everything the suite logged."""

from __future__ import annotations

import logging
from pathlib import Path

_handler: logging.Handler | None = None


def attach(path: Path) -> None:
    """Route structlog and the standard library's loggers through Callbridge's production
    pipeline (PII masking, JSON) into `path`. Called before every test: a test that
    reconfigures logging (test_alerts) drops the handler, and it is put back."""
    global _handler
    root = logging.getLogger()
    if _handler is None:
        from callbridge.core.logs import configure_logging

        configure_logging("INFO")
        _handler = logging.FileHandler(path, encoding="utf-8")
        _handler.setFormatter(root.handlers[0].formatter)
        root.handlers[:] = [_handler]  # pytest still captures records per test with its own handler
    if _handler not in root.handlers:
        root.addHandler(_handler)
