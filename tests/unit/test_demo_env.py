"""var/demo.env is sourced by bash (`set -a; . var/demo.env; set +a`): every value must come back
exactly, whatever characters it holds (issue #17: unquoted values printed "command not found")."""

from __future__ import annotations

import os
import subprocess

from pydantic import SecretStr

from callbridge.core.settings import Settings
from devstack.stack import settings_env, write_env_file


def test_demo_env_sources_cleanly_in_bash_and_gives_every_value_back(tmp_path) -> None:
    settings = Settings(
        var_dir=tmp_path,
        service_consent_type="Data Processing",  # the default has a space: the reported failure
        unknown_caller_account_name="Unknown callers; $(touch pwned) `id` 'quoted' \"double\"",
        admin_password=SecretStr("p@ss word$HOME!*"),
    )
    path = tmp_path / "demo.env"
    write_env_file(settings, path)
    expected = settings_env(settings)

    script = f"set -a; . {path}; set +a; env -0"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": os.environ["PATH"]})  # nothing CALLBRIDGE_* but the file's

    assert done.returncode == 0 and done.stderr == "", done.stderr
    got = dict(item.split("=", 1) for item in done.stdout.split("\0") if item.startswith("CALLBRIDGE_"))
    assert got == expected
    assert not (tmp_path / "pwned").exists()


def test_the_demo_under_another_var_dir_keeps_its_ca_and_state_store_there(tmp_path) -> None:
    """`CALLBRIDGE_VAR_DIR=/tmp/x callbridge-dev demo` used to run its worker and starter with the
    default CA path var/salesforce/ca.pem, a file that isn't there (every Salesforce call failed),
    and its state store in ./var/callbridge.db."""
    from devstack.demo import demo_settings
    from devstack.stack import LocalStack

    settings = demo_settings(Settings(var_dir=tmp_path / "var"))

    assert settings.salesforce_ca_file == tmp_path / "var" / "salesforce" / "ca.pem"
    # where the demo's emulator writes it (LocalStack.start_salesforce's data dir)
    assert settings.salesforce_ca_file.parent == LocalStack(settings).var / "salesforce"
    assert settings_env(settings)["CALLBRIDGE_SALESFORCE_CA_FILE"] == str(settings.salesforce_ca_file)
    assert settings.public_url == settings.public_base_url
    # The state store too (it was var/callbridge.db under the working directory), unless chosen.
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'callbridge.db'}"
    chosen = "postgresql://callbridge@127.0.0.1/callbridge"
    assert demo_settings(Settings(var_dir=tmp_path, database_url=chosen)).database_url == chosen
