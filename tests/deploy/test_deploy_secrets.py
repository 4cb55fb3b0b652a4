"""Secrets stay out of command lines, logs and world-readable files during and after the deploy."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from deploy_harness import default_paths

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def secrets(deployed) -> dict[str, str]:
    path = Path(default_paths().secrets_file)
    assert path.is_file(), f"no secrets file at {path}"
    values = json.loads(path.read_text())
    for key in ("secret_key", "mysql_password", "pgres_password"):
        assert isinstance(values.get(key), str) and len(values[key]) >= 8, f"{path}: {key} missing or short"
    return values


@pytest.mark.parametrize("key", ["mysql_password", "pgres_password", "secret_key"])
def test_no_secret_on_any_command_line_during_the_deploy(deployed, secrets, key: str) -> None:
    sampler = deployed.command_lines
    assert sampler.samples > 10, f"only {sampler.samples} samples of `ps` during the deploy"
    assert sampler.lines_containing(secrets[key]) == [], f"{key} seen on a command line"


@pytest.mark.parametrize("key", ["mysql_password", "pgres_password", "secret_key"])
def test_no_secret_in_the_deploy_output(deployed, secrets, key: str) -> None:
    assert secrets[key] not in deployed.run.stdout + deployed.run.stderr


def test_secret_files_are_not_world_readable(deployed, secrets) -> None:
    paths = default_paths()
    secrets_file = Path(paths.secrets_file)
    mode = secrets_file.stat().st_mode
    assert not mode & stat.S_IROTH and not mode & stat.S_IWOTH, f"{secrets_file}: mode {oct(mode)}"
    assert secrets_file.stat().st_uid == 0
    config = Path(paths.config_file).read_text()
    leaked = [key for key, value in secrets.items() if isinstance(value, str) and value in config]
    assert not leaked, f"{paths.config_file} contains {leaked}"


def test_apache_user_can_read_the_secrets(deployed, secrets) -> None:
    # Mode 0640 with group www-data (Contract 1): the app, run by www-data, reads its secrets.
    import grp

    path = default_paths().secrets_file
    info = os.stat(path)
    assert grp.getgrgid(info.st_gid).gr_name == "www-data", f"{path}: group {info.st_gid}"
    assert info.st_mode & stat.S_IRGRP
