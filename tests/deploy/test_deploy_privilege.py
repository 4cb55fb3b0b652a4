"""Least privilege of the database accounts (issue "Hardening" point 10), on the deployed machine: the
app's accounts only read; the seeding account, whose passwords only root can read, writes the data."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from deploy_harness import DEFAULT_INVENTORY, CommandLineSampler, default_paths, default_settings, run_deploy

pytestmark = pytest.mark.deploy

WRITES = (
    "INSERT INTO tbconstantes SELECT * FROM tbconstantes",
    "UPDATE tbtranches SET coeffn = coeffn + 1 WHERE id = 2",
    "DELETE FROM tbtranches",
    "CREATE TABLE impots_intruder (id int)",
    "DROP TABLE tbtranches",
)


@pytest.fixture(scope="module")
def accounts(deployed) -> dict:
    paths, settings = default_paths(), default_settings()
    app = json.loads(Path(paths.secrets_file).read_text())
    seeder_file = Path("/var/lib/impots-provisioning/seeder-secrets.json")
    return {
        "database": settings.database.name,
        "user": settings.database.user,
        "app": app,
        "seeder_file": seeder_file,
        "seeder": json.loads(seeder_file.read_text()),
    }


def mysql_as(user: str, password: str, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    command = ["mysql", "--protocol=TCP", "-h", "127.0.0.1", "-u", user, "-D", database, "-N", "-e", sql]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MYSQL_PWD": password})


def psql_as(user: str, password: str, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    command = ["psql", "-X", "-w", "-At", "-h", "127.0.0.1", "-U", user, "-d", database, "-c", sql]
    environment = {**os.environ, "PGPASSWORD": password}
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd="/")


CLIENTS = {"mysql": mysql_as, "pgres": psql_as}


@pytest.mark.parametrize("dbms", ["mysql", "pgres"])
def test_the_app_account_reads_the_tax_data_and_writes_nothing(accounts, dbms: str) -> None:
    client, password = CLIENTS[dbms], accounts["app"][f"{dbms}_password"]
    read = client(accounts["user"], password, accounts["database"], "SELECT count(*) FROM tbtranches")
    assert read.returncode == 0 and int(read.stdout.strip()) > 0, read.stderr
    for sql in WRITES:
        refused = client(accounts["user"], password, accounts["database"], sql)
        assert refused.returncode != 0, f"{dbms}: the app's account could run {sql!r}"
        assert "denied" in refused.stderr or "owner" in refused.stderr, refused.stderr


@pytest.mark.parametrize("dbms", ["mysql", "pgres"])
def test_the_seeding_account_owns_the_writes(accounts, dbms: str) -> None:
    client, password = CLIENTS[dbms], accounts["seeder"][f"{dbms}_password"]
    seeder = f"{accounts['user']}_seed"
    # A write that changes nothing: the data stays as seeded.
    same = "UPDATE tbtranches SET coeffn = coeffn WHERE id = 2"
    done = client(seeder, password, accounts["database"], same)
    assert done.returncode == 0, done.stderr


def test_seeding_passwords_are_root_only_and_apart_from_the_app_s(accounts) -> None:
    info = os.stat(accounts["seeder_file"])
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600)
    assert stat.S_IMODE(os.stat(accounts["seeder_file"].parent).st_mode) == 0o700
    app_values = set(accounts["app"].values())
    assert not app_values & set(accounts["seeder"].values()), "a seeding password is in the app's secrets"


def test_seeding_passwords_never_on_a_command_line_or_in_the_output(accounts, converge_back) -> None:
    """A run that re-seeds (a tampered bracket) uses the seeding account: none of its passwords may
    show on a command line (sampled from /proc while it runs) or in pyinfra's output."""
    tamper = "UPDATE tbtranches SET coeffn = coeffn + 1000 WHERE id = 2"
    subprocess.run(["mysql", accounts["database"], "-e", tamper], check=True)
    with CommandLineSampler() as sampler:
        run = run_deploy(DEFAULT_INVENTORY).check_ok()
    assert any(name.endswith("Schema and data (impots.db.seed)") for name in run.changed_operations())
    assert sampler.samples > 10
    for value in accounts["seeder"].values():
        assert sampler.lines_containing(value) == []
        assert value not in run.stdout + run.stderr
