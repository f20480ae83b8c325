"""Start and stop the local stack's processes (used by `callbridge-dev demo`, tests and bench)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PR_SET_PDEATHSIG = 1


def _own_group_dies_with_parent() -> None:
    """Child setup: a session of its own (Ctrl-C reaches only the parent, which stops the
    children in order) and SIGTERM when the parent dies, so a killed test run or demo never
    leaves emulators, workers or servers behind."""
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the explicit stop() still runs
        pass


@dataclass
class ManagedProcess:
    """A child process with a readiness URL; its output goes to a log file."""

    name: str
    argv: list[str]
    ready_url: str | None = None
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    ca_file: Path | None = None
    cwd: Path | None = None
    proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "ManagedProcess":
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            preexec_fn=_own_group_dies_with_parent,
        )
        if self.ready_url:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                verify: ssl.SSLContext | bool = True
                if self.ca_file and self.ca_file.exists():
                    verify = ssl.create_default_context(cafile=str(self.ca_file))
                r = httpx.get(self.ready_url, timeout=2.0, verify=verify)
                if r.status_code < 500:
                    return
            except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready at {self.ready_url}: {last}; see {self.log_path}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the way a worker really dies."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
