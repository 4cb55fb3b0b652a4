"""Secrets stay out of command lines, logs and world-readable files during and after the deploy."""

from __future__ import annotations

import grp
import json
import os
import secrets
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from deploy_harness import DEFAULT_INVENTORY, CommandLineSampler, default_paths, default_settings, run_deploy

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def app_secrets(deployed) -> dict[str, str]:
    path = Path(default_paths().secrets_file)
    assert path.is_file(), f"no secrets file at {path}"
    values = json.loads(path.read_text())
    for key in ("secret_key", "mysql_password", "pgres_password"):
        assert isinstance(values.get(key), str) and len(values[key]) >= 8, f"{path}: {key} missing or short"
    return values


@pytest.mark.parametrize("key", ["mysql_password", "pgres_password", "secret_key"])
def test_no_secret_on_any_command_line_during_the_deploy(deployed, app_secrets, key: str) -> None:
    sampler = deployed.command_lines
    assert sampler.samples > 10, f"only {sampler.samples} command-line samples during the deploy"
    assert sampler.lines_containing(app_secrets[key]) == [], f"{key} seen on a command line"


@pytest.mark.parametrize("key", ["mysql_password", "pgres_password", "secret_key"])
def test_no_secret_in_the_deploy_output(deployed, app_secrets, key: str) -> None:
    assert app_secrets[key] not in deployed.run.stdout + deployed.run.stderr


def test_secret_files_are_not_world_readable(deployed, app_secrets) -> None:
    paths = default_paths()
    secrets_file = Path(paths.secrets_file)
    mode = secrets_file.stat().st_mode
    assert not mode & stat.S_IROTH and not mode & stat.S_IWOTH, f"{secrets_file}: mode {oct(mode)}"
    assert secrets_file.stat().st_uid == 0
    # Each site's own impots.json (provisioning/site_users.py): no secret in any of them.
    config = "".join(path.read_text() for path in Path(paths.install_root, "instance").glob("*/impots.json"))
    assert config, "no site has its impots.json"
    leaked = [key for key, value in app_secrets.items() if isinstance(value, str) and value in config]
    assert not leaked, f"{paths.config_file} contains {leaked}"


def test_the_deploys_secrets_store_is_root_only(deployed, app_secrets) -> None:
    # Each site reads its own copy (tests/deploy/test_deploy_site_users.py); the store is root's.
    path = default_paths().secrets_file
    info = os.stat(path)
    assert grp.getgrgid(info.st_gid).gr_name == "root", f"{path}: group {info.st_gid}"
    assert stat.S_IMODE(info.st_mode) == 0o640


def mysql_login_works(user: str, password: str) -> bool:
    with tempfile.NamedTemporaryFile("w", suffix=".cnf") as options:
        options.write(f'[client]\npassword="{password}"\n')
        options.flush()
        result = subprocess.run(
            ["mysql", f"--defaults-extra-file={options.name}", "--protocol=TCP", "-h", "127.0.0.1",
             "-u", user, "-e", "SELECT 1"],
            capture_output=True, check=False,
        )  # fmt: skip
    return result.returncode == 0


def pgres_login_works(user: str, password: str) -> bool:
    with tempfile.NamedTemporaryFile("w", suffix=".pgpass") as passfile:
        passfile.write(f"127.0.0.1:*:*:{user}:{password}\n")
        passfile.flush()
        result = subprocess.run(
            ["psql", "-X", "-w", "-h", "127.0.0.1", "-U", user, "-d", "postgres", "-Atc", "SELECT 1"],
            capture_output=True, check=False, cwd="/",
            env={**os.environ, "PGPASSFILE": passfile.name},
        )  # fmt: skip
    return result.returncode == 0


def drift_database_passwords(user: str) -> None:
    """Give both database accounts another password behind the deploy's back (SQL on stdin)."""
    other = secrets.token_hex(16)
    statements = [
        f"ALTER USER '{user}'@'{host}' IDENTIFIED BY '{other}';" for host in ("localhost", "127.0.0.1")
    ]
    subprocess.run(
        ["mysql", "--batch"], input="\n".join(statements) + "\n", text=True, check=True, capture_output=True
    )
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
        input=f'ALTER ROLE "{user}" PASSWORD \'{other}\';\n',
        text=True, check=True, capture_output=True, cwd="/",
    )  # fmt: skip


def test_password_reset_keeps_passwords_off_command_lines(deployed, app_secrets, converge_back) -> None:
    """On a converged machine no password is set at all; make the deploy set both of them again."""
    user = default_settings().database.user
    # Positive control of the login checks below: the converged machine's passwords work.
    assert mysql_login_works(user, app_secrets["mysql_password"]), "MariaDB login fails before the test"
    assert pgres_login_works(user, app_secrets["pgres_password"]), "PostgreSQL login fails before the test"
    drift_database_passwords(user)
    assert not mysql_login_works(user, app_secrets["mysql_password"])
    assert not pgres_login_works(user, app_secrets["pgres_password"])

    with CommandLineSampler() as sampler:
        run = run_deploy(DEFAULT_INVENTORY).check_ok()

    assert run.changed_operations(), f"the deploy did not notice the changed passwords:\n{run.tail()}"
    assert mysql_login_works(user, app_secrets["mysql_password"]), "MariaDB password not set back"
    assert pgres_login_works(user, app_secrets["pgres_password"]), "PostgreSQL password not set back"
    # Positive control: the sampler did see the deploy's own commands that handle the passwords.
    assert sampler.lines_containing("impots-helper.py"), "the sampler saw none of the deploy's commands"
    for key in ("mysql_password", "pgres_password", "secret_key"):
        assert sampler.lines_containing(app_secrets[key]) == [], f"{key} seen on a command line"
        assert app_secrets[key] not in run.stdout + run.stderr, f"{key} in the deploy's output"
