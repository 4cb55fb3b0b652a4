"""The Windows database steps: facts (exact scripts, parsing), operations with given facts (exact
PowerShell, uploads, no-ops), the administrator data helper, the prerequisite errors through the
connector, and the SQL the scripts send, run for real against this machine's MariaDB and PostgreSQL
followed by the app's own seed command (as the Windows scripts run it)."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from ps_grammar import grammar_errors
from ps_lint import lint
from pyinfra.api.util import get_kwargs_str
from test_win_grammar import AWKWARD
from win_fakes import (
    ACCOUNTS_IN_PLACE,
    ALL_ENDPOINTS,
    LARAGON_APACHE,
    MARIADB_MYSQL,
    admin_logins,
    apache_lounge_machine,
    database_servers,
    dry_run,
    laragon_machine,
)
from win_optest import run_op

from provisioning.plan import host_plan
from provisioning.remote.sql import (
    mysql_split_accounts_sql,
    pg_split_grants_sql,
    pg_split_grants_state_sql,
    pg_split_roles_sql,
    pg_split_state_sql,
    seeder_name,
)
from provisioning.settings import SettingsError, parse_settings
from provisioning.windows import databases, facts
from provisioning.windows.databases import (
    DatabaseAdmins,
    DatabaseDataError,
    choose_program,
    client_patterns,
    database_admins,
    mysql_ensure_sql,
    pgres_statements,
)
from provisioning.windows.deploy import WindowsDeployError
from provisioning.windows.platforms import apache_lounge_platform, laragon_platform
from provisioning.windows.powershell import ps_quote, wrap_script

REPO = Path(__file__).resolve().parents[2]
PATHS = {
    "python": "C:/impots/venv/Scripts/python.exe",
    "app": "C:/impots/app",
    "instance": "C:/impots/instance",
}
ACCOUNT = {
    "admin_dir": "C:/impots/admin",
    "secrets": "C:/impots/instance/secrets.json",
    "database": "dbimpots-2019",
    "user": "admimpots",
    "seeder_secrets": "C:/impots/state/seeder-secrets.json",
    **PATHS,
}
MYSQL = "C:/Program Files/MariaDB 11.4/bin/mysql.exe"
PSQL = "C:/Program Files/PostgreSQL/16/bin/psql.exe"
LARAGON = laragon_platform("C:/laragon", LARAGON_APACHE)
LOUNGE = apache_lounge_platform(None)


pytestmark = pytest.mark.usefixtures("clean_environment")


def seed_facts(**codes) -> dict:
    """The SeedStatus answers for each dbms: an exit code, or None (no venv/app yet)."""
    return {
        get_kwargs_str({"dbms": dbms, **PATHS}): (None if code is None else {"code": code, "stderr": ""})
        for dbms, code in codes.items()
    }


def assigned(script: str, variable: str) -> str:
    for line in script.splitlines():
        if line.startswith(f"${variable} = '"):
            return line[len(variable) + 5 : -1].replace("''", "'")
    raise AssertionError(variable)


# --- facts -----------------------------------------------------------------------------------------------


def parse(fact_cls, stdout: str):
    return fact_cls().process(stdout.splitlines())


def test_program_search_script_exact():
    script = facts.ProgramSearch().command(
        program="mysql.exe",
        patterns=["C:/laragon/bin/mysql/*/bin/mysql.exe", "C:/Program Files/MariaDB */bin/mysql.exe"],
    )
    assert script.startswith(
        "$name = 'mysql.exe'\n"
        "$patterns = @('C:\\laragon\\bin\\mysql\\*\\bin\\mysql.exe', "
        "'C:\\Program Files\\MariaDB *\\bin\\mysql.exe')\n"
        "$onpath = $null\n"
    )
    assert "Get-Item -Path $pattern -ErrorAction SilentlyContinue" in script
    assert lint(script) == []


def test_program_search_parsing():
    out = (
        '{"on_path":"C:\\\\Program Files\\\\MariaDB 10.6\\\\bin\\\\mysql.exe","found":['
        '{"pattern":"C:\\\\laragon\\\\bin\\\\mysql\\\\*\\\\bin\\\\mysql.exe","files":'
        '["C:\\\\laragon\\\\bin\\\\mysql\\\\mysql-8.0.30-winx64\\\\bin\\\\mysql.exe"]},'
        '{"pattern":"C:\\\\Program Files\\\\MariaDB *\\\\bin\\\\mysql.exe","files":[]}]}'
    )
    assert parse(facts.ProgramSearch, out) == {
        "on_path": "C:/Program Files/MariaDB 10.6/bin/mysql.exe",
        "found": {
            "C:/laragon/bin/mysql/*/bin/mysql.exe": [
                "C:/laragon/bin/mysql/mysql-8.0.30-winx64/bin/mysql.exe"
            ],
            "C:/Program Files/MariaDB */bin/mysql.exe": [],
        },
    }
    assert parse(facts.ProgramSearch, '{"on_path":null,"found":[]}') == {"on_path": None, "found": {}}


def test_tcp_ports_open_script_and_parsing():
    script = facts.TcpPortsOpen().command(endpoints=["127.0.0.1:3306", "127.0.0.1:6379"])
    assert script.startswith("$timeout = '1500'\n$endpoints = @('127.0.0.1:3306', '127.0.0.1:6379')\n")
    # A TcpClient connect with a deadline, never the slow Test-NetConnection.
    assert "New-Object Net.Sockets.TcpClient" in script and "Test-NetConnection" not in script
    assert lint(script) == []
    assert parse(facts.TcpPortsOpen, '{"127.0.0.1:3306":true,"127.0.0.1:6379":false}') == {
        "127.0.0.1:3306": True,
        "127.0.0.1:6379": False,
    }


def test_seed_status_script_exact_and_parsing():
    script = databases.SeedStatus().command(dbms="pgres", **PATHS)
    assert script.startswith(
        "$python = 'C:\\impots\\venv\\Scripts\\python.exe'\n"
        "$app = 'C:\\impots\\app'\n"
        "$instance = 'C:\\impots\\instance'\n"
        "$arguments = '-m impots.db.seed pgres --check'\n"
        "function Invoke-Program("
    )
    assert (
        "$run = Invoke-Program $python $arguments @{ IMPOTS_INSTANCE_PATH = $instance } '' $app\n" in script
    )
    assert script.endswith("ConvertTo-Json -InputObject $result -Compress -Depth 5")
    assert lint(script) == []
    assert parse(databases.SeedStatus, '{"code":3,"stderr":""}') == {"code": 3, "stderr": ""}
    assert parse(databases.SeedStatus, "null") is None


# --- choosing clients ----------------------------------------------------------------------------------


def test_client_patterns_per_layout():
    assert client_patterns("mysql", LARAGON, "C:/laragon/") == [
        "C:/laragon/bin/mysql/*/bin/mysql.exe",
        "C:/Program Files/MariaDB */bin/mysql.exe",
        "C:/Program Files/MySQL/MySQL Server */bin/mysql.exe",
    ]
    assert client_patterns("pgres", LOUNGE, "C:/laragon") == ["C:/Program Files/PostgreSQL/*/bin/psql.exe"]


def test_choose_program_prefers_first_pattern_then_newest_version_then_path():
    patterns = ["C:/l/*/mysql.exe", "C:/P/MariaDB */mysql.exe"]
    search = {
        "on_path": "C:/x/mysql.exe",
        "found": {
            patterns[0]: [],
            patterns[1]: ["C:/P/MariaDB 10.6/mysql.exe", "C:/P/MariaDB 10.11/mysql.exe"],
        },
    }
    assert choose_program(search, patterns) == "C:/P/MariaDB 10.11/mysql.exe"
    search["found"][patterns[0]] = ["C:/l/mysql-5.7.9/mysql.exe", "C:/l/mysql-8.0.30/mysql.exe"]
    assert choose_program(search, patterns) == "C:/l/mysql-8.0.30/mysql.exe"
    assert choose_program({"on_path": "C:/x/mysql.exe", "found": {}}, patterns) == "C:/x/mysql.exe"
    assert choose_program({"on_path": None, "found": {}}, patterns) is None


# --- administrator data ---------------------------------------------------------------------------------


def test_database_admins_defaults_data_and_environment():
    assert database_admins("h", {}, {}) == DatabaseAdmins("root", None, "postgres", None)
    admins = database_admins(
        "h",
        {"impots_pgres_admin_user": "pgadmin", "impots_mysql_admin_password": "from-data"},
        {"IMPOTS_MYSQL_ADMIN_PASSWORD": "ignored", "IMPOTS_PGRES_ADMIN_PASSWORD": "root"},
    )
    assert admins.user("pgres") == "pgadmin" and admins.password("pgres") == "root"
    assert admins.password("mysql") == "from-data" and admins.user("mysql") == "root"
    assert "from-data" not in repr(admins)


def test_database_admins_bad_values_name_the_key_not_the_secret():
    with pytest.raises(
        DatabaseDataError, match=r"^h: impots_mysql_admin_user: 'root; drop' is not an account"
    ):
        database_admins("h", {"impots_mysql_admin_user": "root; drop"}, {})
    with pytest.raises(DatabaseDataError) as error:
        database_admins("h", {}, {"IMPOTS_PGRES_ADMIN_PASSWORD": "sec\nret"})
    assert str(error.value) == (
        "h: impots_pgres_admin_password: must be a string without line breaks or NUL "
        "(from environment variable IMPOTS_PGRES_ADMIN_PASSWORD)"
    )
    assert "sec" not in str(error.value)


# --- operations -----------------------------------------------------------------------------------------


SEEDER_SECRETS = "C:/impots/state/seeder-secrets.json"
STATE_QUERY = {
    "database": "dbimpots-2019",
    "user": "admimpots",
    "secrets": "C:/impots/instance/secrets.json",
    "seeder_secrets": SEEDER_SECRETS,
}


def account_facts(dbms: str, client: str, state) -> dict:
    """The AccountState answer for ``dbms``."""
    return {
        "databases.AccountState": {get_kwargs_str({"dbms": dbms, "client": client, **STATE_QUERY}): state}
    }


def answer(stdout: str, code: int = 0) -> dict:
    return {"code": code, "stdout": stdout}


# An older deploy's account: ALL on the database (MariaDB lists each right), or the owner (PostgreSQL).
MYSQL_OLD = {"app": answer("1\t17\t1"), "seeder": None}
PG_OLD = {"app": answer("1|0|1|0\n2|0|2|1|0"), "seeder": None}


def test_accounts_in_place_only_when_both_accounts_are_right():
    assert databases.accounts_in_place("mysql", ACCOUNTS_IN_PLACE["mysql"])
    assert databases.accounts_in_place("pgres", ACCOUNTS_IN_PLACE["pgres"])
    for dbms, state in (("mysql", MYSQL_OLD), ("pgres", PG_OLD), ("mysql", None), ("pgres", {})):
        assert not databases.accounts_in_place(dbms, state)
    wrong = {
        "mysql": [
            {"app": answer("1\t1\t0"), "seeder": answer("1\t17\t1")},  # the app may also INSERT
            {"app": answer("1\t0\t0"), "seeder": answer("", 1)},  # the seeder cannot log in
            {"app": answer("", 1), "seeder": answer("1\t17\t1")},  # the app cannot log in
            {"app": answer("0\t0\t0"), "seeder": answer("1\t17\t1")},  # the app cannot read
        ],
        "pgres": [
            {"app": answer("1|1|1|0\n0|0|0|0|1"), "seeder": answer("")},  # the app's role owns the db
            {"app": answer("1|1|1|1\n2|0|0|0|1"), "seeder": answer("")},  # ... or tables
            {"app": answer("1|1|1|1\n0|0|2|0|1"), "seeder": answer("")},  # it may change rows
            {"app": answer("1|1|1|1\n0|0|0|1|1"), "seeder": answer("")},  # it may create in public
            {"app": answer("1|1|1|1\n0|0|0|0|0"), "seeder": answer("")},  # no default privileges
            {"app": answer("1|1|1|1\n0|0|0|0|1"), "seeder": answer("", 2)},  # the seeder cannot log in
        ],
    }
    for dbms, states in wrong.items():
        for state in states:
            assert not databases.accounts_in_place(dbms, state), (dbms, state)


def test_account_state_script_exact_and_no_password():
    script = databases.AccountState().command(dbms="mysql", client=MYSQL, **STATE_QUERY)
    assert script.startswith(
        "$client = 'C:\\Program Files\\MariaDB 11.4\\bin\\mysql.exe'\n"
        "$apparguments = '--protocol=TCP --host=127.0.0.1 --port=3306 --user=admimpots "
        "--database=dbimpots-2019 --default-character-set=utf8mb4 --batch --skip-column-names "
        "--connect-timeout=10'\n"
        "$seederarguments = '--protocol=TCP --host=127.0.0.1 --port=3306 --user=admimpots_seed "
        "--database=dbimpots-2019 --default-character-set=utf8mb4 --batch --skip-column-names "
        "--connect-timeout=10'\n"
        "$secretsfile = 'C:\\impots\\instance\\secrets.json'\n"
        "$seedersecrets = 'C:\\impots\\state\\seeder-secrets.json'\n"
        "$secretkey = 'mysql_password'\n"
        "$passwordvariable = 'MYSQL_PWD'\n"
        "$statesql = " + ps_quote(databases.mysql_self_state_sql("dbimpots-2019")) + "\n"
        "function Invoke-Program("
    )
    assert script.endswith(
        "$result = @{\n"
        "    app = Get-Answer $apparguments (Read-Password $secretsfile $secretkey)\n"
        "    seeder = Get-Answer $seederarguments (Read-Password $seedersecrets $secretkey)\n"
        "}\nConvertTo-Json -InputObject $result -Compress -Depth 5"
    )
    pg = databases.AccountState().command(dbms="pgres", client=PSQL, **STATE_QUERY)
    # PostgreSQL: the Linux deploy's own state queries (the catalogs are readable by every role).
    statesql = pg_split_state_sql("dbimpots-2019", "admimpots") + pg_split_grants_state_sql("admimpots")
    assert f"\n$statesql = {ps_quote(statesql)}\n" in pg
    assert (
        "$seederarguments = '-X -q -A -t -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U admimpots_seed "
        "-d dbimpots-2019'\n"
    ) in pg
    for text in (script, pg):
        assert lint(text) == []
        assert grammar_errors(wrap_script(text)) == []


def test_mysql_self_state_sql_exact():
    assert databases.mysql_self_state_sql("dbimpots-2019") == (
        "SELECT (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE "
        "TABLE_SCHEMA='dbimpots-2019' AND PRIVILEGE_TYPE='SELECT'), (SELECT COUNT(*) FROM "
        "information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA='dbimpots-2019' AND "
        "PRIVILEGE_TYPE<>'SELECT'), (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE "
        "TABLE_SCHEMA='dbimpots-2019' AND PRIVILEGE_TYPE='CREATE');\n"
    )


def test_mysql_account_noop_when_both_accounts_are_right():
    commands, noop = run_op(
        databases.mysql_account,
        account_facts("mysql", MYSQL, ACCOUNTS_IN_PLACE["mysql"]),
        client=MYSQL,
        admin_user="root",
        admin_password=None,
        **ACCOUNT,
    )
    assert commands == []
    assert (
        noop == "MariaDB/MySQL database dbimpots-2019, reader admimpots and its seeder are already in place"
    )


SEEDER_LINES = (
    "$seedersecrets = 'C:\\impots\\state\\seeder-secrets.json'",
    "$userkey = 'mysql_user'",
    "$seeder = 'admimpots_seed'",
    "$grants = @('*S-1-5-32-544:F', '*S-1-5-18:F')",
    # made on the host, once; the file restricted while still empty, then written
    "        [Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)",
    "    & { $ErrorActionPreference = 'Continue'; & icacls.exe $seedersecrets /inheritance:r /grant:r "
    "@grants /Q }",
    "    [IO.File]::WriteAllText($seedersecrets, $json, (New-Object System.Text.UTF8Encoding $false))",
)


@pytest.mark.parametrize("state", [None, MYSQL_OLD, {"app": answer("1\t0\t0"), "seeder": answer("", 1)}])
def test_mysql_account_made_or_reduced_without_admin_password(state):
    commands, _ = run_op(
        databases.mysql_account,
        account_facts("mysql", MYSQL, state),
        client=MYSQL,
        admin_user="root",
        admin_password=None,
        **ACCOUNT,
    )
    assert len(commands) == 1  # no administrator password: nothing uploaded
    script = commands[0]
    assert "\n$sql = " + ps_quote(mysql_ensure_sql("dbimpots-2019", "admimpots")) + "\n" in script
    assert script.startswith(
        "$client = 'C:\\Program Files\\MariaDB 11.4\\bin\\mysql.exe'\n"
        "$arguments = '--protocol=TCP --host=127.0.0.1 --port=3306 --user=root "
        "--default-character-set=utf8mb4 --batch --skip-column-names --connect-timeout=10'\n"
        "$adminfile = ''\n"
        "$secretsfile = 'C:\\impots\\instance\\secrets.json'\n"
        "$seedersecrets = 'C:\\impots\\state\\seeder-secrets.json'\n"
        "$secretkey = 'mysql_password'\n"
        "$userkey = 'mysql_user'\n"
        "$seeder = 'admimpots_seed'\n"
        "$where = 'cannot create the database and users on MariaDB/MySQL at 127.0.0.1:3306 as root with "
        "C:/Program Files/MariaDB 11.4/bin/mysql.exe (administrator password: IMPOTS_MYSQL_ADMIN_PASSWORD, "
        "none given)'\n"
        "$grants = @('*S-1-5-32-544:F', '*S-1-5-18:F')\n"
        "$sql = "
    )
    for line in SEEDER_LINES:
        assert line in script.splitlines(), line
    assert "$environment['MYSQL_PWD'] = [string]$admin.password" in script
    # Both placeholders are replaced on the host, the seeding one first.
    assert (
        "$sql = $sql.Replace('@SEEDER_PASSWORD@', $seederquoted).Replace('@PASSWORD@', $quoted)\n"
        "$run = Invoke-Program $client $arguments $environment $sql $null"
    ) in script
    assert lint(script) == []
    assert grammar_errors(wrap_script(script)) == []


def test_mysql_ensure_sql_is_the_split_builder_with_placeholders():
    sql = mysql_ensure_sql("dbimpots-2019", "admimpots")
    assert sql == mysql_split_accounts_sql("dbimpots-2019", "admimpots", "@PASSWORD@", "@SEEDER_PASSWORD@")
    assert "GRANT SELECT ON `dbimpots-2019`.* TO 'admimpots'@'127.0.0.1';" in sql.splitlines()
    assert "REVOKE ALL PRIVILEGES ON `dbimpots-2019`.* FROM 'admimpots'@'localhost';" in sql.splitlines()
    assert "ALTER USER 'admimpots_seed'@'localhost' IDENTIFIED BY @SEEDER_PASSWORD@;" in sql.splitlines()


def test_postgresql_account_uploads_admin_password_and_never_scripts_it():
    password = "Postgres-root-pw'1"
    commands, _ = run_op(
        databases.postgresql_account,
        account_facts("pgres", PSQL, PG_OLD),
        client=PSQL,
        admin_user="postgres",
        admin_password=password,
        **ACCOUNT,
    )
    assert commands[0] == (
        "upload",
        json.dumps({"password": password}).encode(),
        "C:/impots/admin/pgres-admin.json",
    )
    script = commands[1]
    assert password not in script
    roles = pg_split_roles_sql("dbimpots-2019", "admimpots", "@PASSWORD@", "@SEEDER_PASSWORD@")
    assert f"\n$rolessql = {ps_quote(roles)}\n" in script
    assert f"\n$grantssql = {ps_quote(pg_split_grants_sql('admimpots'))}\n" in script
    for line in (
        "$client = 'C:\\Program Files\\PostgreSQL\\16\\bin\\psql.exe'",
        "$arguments = '-X -q -A -t -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres -d postgres'",
        "$grantsarguments = '-X -q -A -t -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres "
        "-d dbimpots-2019'",
        "$adminfile = 'C:\\impots\\admin\\pgres-admin.json'",
        "$secretkey = 'pgres_password'",
        "$userkey = 'pgres_user'",
        "$environment = @{ PGCLIENTENCODING = 'UTF8'; PGCONNECT_TIMEOUT = '10' }",
        "if ($admin -and $admin.password) { $environment['PGPASSWORD'] = [string]$admin.password }",
        "$sql = $rolessql.Replace('@SEEDER_PASSWORD@', $seederquoted).Replace('@PASSWORD@', $quoted)",
        "$run = Invoke-Program $client $grantsarguments $environment $grantssql $null",
        # the administrator password file is deleted whatever happens
        "    finally { Remove-Item -LiteralPath $adminfile -Force -ErrorAction SilentlyContinue }",
        *(line for line in SEEDER_LINES if "mysql" not in line),
    ):
        assert line in script.splitlines(), line
    assert lint(script) == []
    assert grammar_errors(wrap_script(script)) == []


def test_postgresql_account_noop():
    commands, noop = run_op(
        databases.postgresql_account,
        account_facts("pgres", PSQL, ACCOUNTS_IN_PLACE["pgres"]),
        client=PSQL,
        admin_user="postgres",
        admin_password="whatever",
        **ACCOUNT,
    )
    assert commands == []
    assert noop == "PostgreSQL database dbimpots-2019 owned by admimpots_seed, admimpots reads only"


def test_database_seeded_runs_only_the_stale_dbms_as_the_seeding_account_then_noop():
    commands, _ = run_op(
        databases.database_seeded,
        {"databases.SeedStatus": seed_facts(mysql=0, pgres=3)},
        dbms=["mysql", "pgres"],
        seeder_secrets=SEEDER_SECRETS,
        **PATHS,
    )
    assert len(commands) == 1
    script = commands[0]
    assert script.startswith(
        "$python = 'C:\\impots\\venv\\Scripts\\python.exe'\n$app = 'C:\\impots\\app'\n"
        "$instance = 'C:\\impots\\instance'\n$arguments = '-m impots.db.seed pgres'\nfunction Invoke-Program("
    )
    for line in (
        "$dbms = 'pgres'",
        "$seedersecrets = 'C:\\impots\\state\\seeder-secrets.json'",
        "$secretkey = 'pgres_password'",
        "$userkey = 'pgres_user'",
        "$grants = @('*S-1-5-32-544:F', '*S-1-5-18:F')",
        # a private instance folder, restricted before anything is written in it, removed afterwards
        "    & { $ErrorActionPreference = 'Continue'; & icacls.exe $seedinstance /inheritance:r "
        "/grant:r @grants /Q }",
        "    $config.databases.$dbms.user = $seeder",
        "    $run = Invoke-Program $python $arguments @{ IMPOTS_INSTANCE_PATH = $seedinstance } '' $app",
        "finally { Remove-Item -LiteralPath $seedinstance -Recurse -Force -ErrorAction SilentlyContinue }",
    ):
        assert line in script.splitlines(), line
    assert script.index("icacls.exe $seedinstance") < script.index("WriteAllText((Join-Path $seedinstance")
    assert script.endswith(
        "if ($run.code -ne 0) { throw ('python -m impots.db.seed failed (exit ' + $run.code + '): ' "
        "+ $run.stderr) }"
    )
    assert lint(script) == []
    assert grammar_errors(wrap_script(script)) == []
    commands, _ = run_op(
        databases.database_seeded,
        {"databases.SeedStatus": seed_facts(mysql=None)},
        dbms=["mysql"],
        seeder_secrets=SEEDER_SECRETS,
        **PATHS,
    )
    assert [assigned(c, "arguments") for c in commands] == ["-m impots.db.seed mysql"]
    commands, noop = run_op(
        databases.database_seeded,
        {"databases.SeedStatus": seed_facts(mysql=0, pgres=0)},
        dbms=["mysql", "pgres"],
        seeder_secrets=SEEDER_SECRETS,
        **PATHS,
    )
    assert commands == [] and noop == "mysql, pgres schema and data are already up to date"


@pytest.mark.parametrize("path", AWKWARD)
def test_every_database_script_parses_with_awkward_paths(path):
    query = {**STATE_QUERY, "secrets": f"{path}/s.json", "seeder_secrets": f"{path}/state/seeder.json"}
    account = {**ACCOUNT, "admin_dir": f"{path}/admin", "secrets": query["secrets"]}
    account |= {"seeder_secrets": query["seeder_secrets"], "instance": f"{path}/instance"}
    built = []
    for dbms, op, client in (
        ("mysql", databases.mysql_account, f"{path}/mysql.exe"),
        ("pgres", databases.postgresql_account, f"{path}/psql.exe"),
    ):
        built.append(databases.AccountState().command(dbms=dbms, client=client, **query))
        state = {"databases.AccountState": {get_kwargs_str({"dbms": dbms, "client": client, **query}): None}}
        commands, _ = run_op(op, state, client=client, admin_user="root", admin_password="x", **account)

        built += [c for c in commands if isinstance(c, str)]
    stale = {
        "databases.SeedStatus": {
            get_kwargs_str({"dbms": dbms, "python": f"{path}/python.exe", "app": f"{path}/app",
                            "instance": f"{path}/instance"}): None
            for dbms in ("mysql", "pgres")
        }
    }  # fmt: skip
    commands, _ = run_op(
        databases.database_seeded,
        stale,
        dbms=["mysql", "pgres"],
        python=f"{path}/python.exe",
        app=f"{path}/app",
        instance=f"{path}/instance",
        seeder_secrets=query["seeder_secrets"],
    )
    built += commands
    assert len(built) == 6
    for script in built:
        assert lint(script) == [], script
        assert grammar_errors(wrap_script(script)) == [], script


def test_seed_check_paths_name_the_plan_s_seeding_file():
    settings = parse_settings("@winssh/lab-pc", {}, environ={}, default_os="windows")
    plan = host_plan("@winssh/lab-pc", settings, LARAGON)
    assert databases.seed_check_paths(settings)["seeder_secrets"] == plan.paths.seeder_secrets


def plan_error(monkeypatch, windows, data) -> str:
    with pytest.raises(WindowsDeployError) as error:
        dry_run(monkeypatch, windows, data)
    assert all("ConvertTo-Json -InputObject" in script for script in windows.seen)
    return str(error.value)


def test_database_server_down_and_client_missing(monkeypatch):
    windows = laragon_machine()
    database_servers(
        windows,
        "laragon",
        found={
            "C:/laragon/bin/mysql/*/bin/mysql.exe": [
                "C:\\laragon\\bin\\mysql\\mysql-8.0.30-winx64\\bin\\mysql.exe"
            ]
        },
        listening={"127.0.0.1:3306": False, "127.0.0.1:5432": True, "127.0.0.1:6379": True},
    )
    message = plan_error(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert message.split("\n") == [
        "@winssh/lab-pc: site flask-impots-withmysql uses mysql (MariaDB/MySQL) but nothing answers on "
        "127.0.0.1:3306: start it from Laragon's menu (Start All)",
        "@winssh/lab-pc: site flask-impots-withpgres uses pgres (PostgreSQL) but its client psql.exe was not "
        "found (looked on PATH and in C:/laragon/bin/postgresql/*/bin/psql.exe, "
        "C:/Program Files/PostgreSQL/*/bin/psql.exe): install it, or put its bin folder on the system PATH",
    ]


def test_only_the_dbms_in_use_is_required(monkeypatch):
    """A host serving the MariaDB site only needs no PostgreSQL (nothing asked, nothing planned)."""
    windows = laragon_machine()
    sites = [{"name": "flask-impots-withmysql", "kind": "impots", "dbms": "mysql", "alias": "/impots"}]
    windows.fact(facts.TcpPortsOpen, {"127.0.0.1:3306": True}, endpoints=[ALL_ENDPOINTS[0]])
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon", "impots_sites": sites})
    planned_names = [name for name, _, _ in planned]
    assert "MariaDB/MySQL database and user" in planned_names
    assert "PostgreSQL database and role" not in planned_names
    assert not any("psql.exe" in script for script in windows.seen)


def test_bad_admin_data_stops_before_any_fact(monkeypatch):
    windows = laragon_machine()
    monkeypatch.setenv("IMPOTS_MYSQL_ADMIN_PASSWORD", "bad\rvalue")
    # The settings model refuses it while loading the host data, before the deploy reads any fact.
    with pytest.raises(SettingsError, match="impots_mysql_admin_password: must be a string"):
        dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert windows.seen == []


# --- the SQL, for real: this machine's MariaDB and PostgreSQL, then the app's seed ---------------------

# Quotes, a backslash, SQL and PowerShell syntax. ASCII for MariaDB: PyMySQL (the app's driver) sends a
# password in latin-1, so a non-ASCII one set through the (UTF-8) client never matches.
TRICKY = "p'a\\ss\"w $(rd);--"
TRICKY_PG = TRICKY + " ö"


def mysql_quoted(password: str) -> str:
    """What the script's ``$password.Replace('\\', '\\\\').Replace("'", "''")`` makes."""
    return "'" + password.replace("\\", "\\\\").replace("'", "''") + "'"


def pg_quoted(password: str) -> str:
    return "'" + password.replace("'", "''") + "'"


def run(command: list[str], sql: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, input=sql, capture_output=True, text=True, check=False, cwd="/", **kwargs)


MYSQL_ROOT = ["mysql", "--batch", "--skip-column-names"]
PSQL_POSTGRES = [
    "runuser",
    "-u",
    "postgres",
    "--",
    "psql",
    "-X",
    "-q",
    "-A",
    "-t",
    "-v",
    "ON_ERROR_STOP=1",
    "-d",
    "postgres",
]


def pg_ensure(database: str, user: str, password: str, seeder_password: str) -> None:
    """The script's PostgreSQL steps, as the administrator: roles and database in ``postgres`` (the
    placeholders replaced as the script does, the seeding one first), then the grants in the database."""
    statements = pgres_statements(database, user, "postgres")
    sql = statements["rolessql"].replace("@SEEDER_PASSWORD@", pg_quoted(seeder_password))
    result = run(PSQL_POSTGRES, sql.replace("@PASSWORD@", pg_quoted(password)))
    assert result.returncode == 0, result.stderr
    result = run([*PSQL_POSTGRES[:-1], database], statements["grantssql"])
    assert result.returncode == 0, result.stderr


def mysql_ensure(database: str, user: str, password: str, seeder_password: str) -> None:
    sql = mysql_ensure_sql(database, user).replace("@SEEDER_PASSWORD@", mysql_quoted(seeder_password))
    result = run(MYSQL_ROOT, sql.replace("@PASSWORD@", mysql_quoted(password)))
    assert result.returncode == 0, result.stderr


def account_state(dbms: str, database: str, user: str, passwords: dict) -> dict:
    """What AccountState's script gets: the state query as each account, with the script's arguments
    and its password in the child's environment."""
    if dbms == "mysql":
        sql, variable = databases.mysql_self_state_sql(database), "MYSQL_PWD"
    else:
        sql = pg_split_state_sql(database, user) + pg_split_grants_state_sql(user)
        variable = "PGPASSWORD"
    state = {}
    for role, name in (("app", user), ("seeder", seeder_name(user))):
        if not passwords.get(role):
            state[role] = None
            continue
        client = "mysql" if dbms == "mysql" else "psql"
        arguments = shlex.split(databases.client_arguments(dbms, name, database))
        env = {**os.environ, variable: passwords[role], "PGCONNECT_TIMEOUT": "10"}
        result = run([client, *arguments], sql, env=env)
        state[role] = {"code": result.returncode, "stdout": result.stdout.strip()}
    return state


def as_account(dbms: str, database: str, user: str, password: str, sql: str) -> subprocess.CompletedProcess:
    client = "mysql" if dbms == "mysql" else "psql"
    variable = "MYSQL_PWD" if dbms == "mysql" else "PGPASSWORD"
    arguments = shlex.split(databases.client_arguments(dbms, user, database))
    return run([client, *arguments], sql, env={**os.environ, variable: password})


def seed(app_instance: Path, dbms: str, *extra: str) -> subprocess.CompletedProcess:
    """``python -m impots.db.seed`` as the Windows scripts run it: from app/, IMPOTS_INSTANCE_PATH set."""
    env = {**os.environ, "IMPOTS_INSTANCE_PATH": str(app_instance), "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "impots.db.seed", dbms, *extra],
        cwd=REPO / "app",
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def scratch_names():
    suffix = secrets.token_hex(4)
    database, user = f"dbimpots-wintest-{suffix}", f"winimpots_{suffix}"
    yield database, user
    for name in (user, seeder_name(user)):
        run(
            MYSQL_ROOT,
            f"DROP USER IF EXISTS '{name}'@'localhost';\nDROP USER IF EXISTS '{name}'@'127.0.0.1';\n",
        )
    run(MYSQL_ROOT, f"DROP DATABASE IF EXISTS `{database}`;\n")
    run(PSQL_POSTGRES, f'DROP DATABASE IF EXISTS "{database}";\n')
    for name in (user, seeder_name(user)):
        run(PSQL_POSTGRES, f'DROP OWNED BY "{name}";\nDROP ROLE IF EXISTS "{name}";\n')


def instance(tmp_path: Path, database: str, user: str, passwords: dict, name: str = "instance") -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    config = {
        "databases": {
            "mysql": {"host": "127.0.0.1", "port": 3306, "database": database, "user": user},
            "pgres": {"host": "127.0.0.1", "port": 5432, "database": database, "user": user},
        },
        "log_file": str(folder / "impots-{dbms}.log"),
    }
    (folder / "impots.json").write_text(json.dumps(config))
    write_secrets(folder, passwords)
    return folder


def write_secrets(folder: Path, passwords: dict) -> None:
    path = folder / "secrets.json"
    path.write_text(json.dumps({"secret_key": "k" * 32, **passwords}))
    path.chmod(0o600)  # the app refuses a secrets file others may read


# What an older deploy made (the builders it used are gone): the app's account with every right.
OLD_MYSQL = """CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4;
CREATE USER '{user}'@'localhost' IDENTIFIED BY {pw};
CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY {pw};
GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'localhost';
GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'127.0.0.1';
"""
OLD_PG = """CREATE ROLE "{user}" LOGIN PASSWORD {pw};
CREATE DATABASE "{db}" OWNER "{user}" ENCODING 'UTF8' TEMPLATE template0;
"""
SEEDER_PW = "Seeder-" + "A1_-" * 8  # the shape of the script's password: URL-safe base64


@pytest.mark.parametrize("dbms", ["mysql", "pgres"])
def test_an_older_account_is_seen_reduced_and_the_seed_runs_as_the_seeding_account(
    dbms, tmp_path, scratch_names
):
    database, user = scratch_names
    password = TRICKY if dbms == "mysql" else TRICKY_PG
    folder = instance(tmp_path, database, user, {f"{dbms}_password": password})
    if dbms == "mysql":
        old = OLD_MYSQL.format(db=database, user=user, pw=mysql_quoted(password))
        assert run(MYSQL_ROOT, old).returncode == 0
    else:
        old = OLD_PG.format(db=database, user=user, pw=pg_quoted(password))
        assert run(PSQL_POSTGRES, old).returncode == 0
    assert seed(folder, dbms).stdout.strip() == "seeded"  # the old way: the app's account owns the tables
    # Before: the seeding account has no password yet, and the app's may write: the deploy plans a change.
    old_state = account_state(dbms, database, user, {"app": password})
    assert old_state["app"]["code"] == 0 and old_state["seeder"] is None
    assert not databases.accounts_in_place(dbms, old_state)
    assert not databases.accounts_in_place(
        dbms, {**old_state, "seeder": ACCOUNTS_IN_PLACE[dbms]["seeder"]}
    ), "the app's own rights alone must show the older account"
    ensure = mysql_ensure if dbms == "mysql" else pg_ensure
    for _ in range(2):  # idempotent: a second run changes nothing and succeeds
        ensure(database, user, password, SEEDER_PW)
    passwords = {"app": password, "seeder": SEEDER_PW}
    assert databases.accounts_in_place(dbms, account_state(dbms, database, user, passwords))
    # The app reads its data, and may change nothing.
    assert seed(folder, dbms, "--check").returncode == 0
    assert as_account(dbms, database, user, password, "CREATE TABLE intrus (a int);\n").returncode != 0
    assert as_account(dbms, database, user, password, "DELETE FROM tbtranches;\n").returncode != 0
    # The seed as the deploy runs it: a private instance naming the seeding account.
    private = instance(tmp_path, database, seeder_name(user), {f"{dbms}_password": SEEDER_PW}, "seed")
    result = seed(private, dbms)
    assert result.returncode == 0, result.stderr
    assert seed(folder, dbms, "--check").returncode == 0
    assert databases.accounts_in_place(dbms, account_state(dbms, database, user, passwords))
    # A wrong seeding password (the file lost): the state sees it, the script puts it right.
    assert not databases.accounts_in_place(
        dbms, account_state(dbms, database, user, {**passwords, "seeder": "other"})
    )


@pytest.mark.parametrize("dbms", ["mysql", "pgres"])
def test_a_new_host_gets_both_accounts_and_the_seed_runs_as_the_seeding_account(
    dbms, tmp_path, scratch_names
):
    database, user = scratch_names
    password = TRICKY if dbms == "mysql" else TRICKY_PG
    folder = instance(tmp_path, database, user, {f"{dbms}_password": password})
    assert seed(folder, dbms, "--check").returncode == 2  # nothing yet: the app cannot log in
    assert not databases.accounts_in_place(dbms, account_state(dbms, database, user, {"app": password}))
    ensure = mysql_ensure if dbms == "mysql" else pg_ensure
    ensure(database, user, password, SEEDER_PW)
    passwords = {"app": password, "seeder": SEEDER_PW}
    assert databases.accounts_in_place(dbms, account_state(dbms, database, user, passwords))
    check = seed(folder, dbms, "--check")
    assert (check.returncode, check.stdout.strip()) == (3, "would seed"), check.stderr
    private = instance(tmp_path, database, seeder_name(user), {f"{dbms}_password": SEEDER_PW}, "seed")
    result = seed(private, dbms)
    assert (result.returncode, result.stdout.strip()) == (0, "seeded"), result.stderr
    assert seed(folder, dbms, "--check").returncode == 0  # the app reads what the seeding account wrote
    assert databases.accounts_in_place(dbms, account_state(dbms, database, user, passwords))
    assert as_account(dbms, database, user, password, "DELETE FROM tbtranches;\n").returncode != 0


def test_date_time_only_host_needs_no_database_nor_redis(monkeypatch):
    windows = laragon_machine()
    sites = [{"name": "date-time-server", "kind": "date-time", "alias": "/"}]
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon", "impots_sites": sites})
    planned_names = [name for name, _, _ in planned]
    assert not any(word in name for name in planned_names for word in ("Redis", "database", "impots.db.seed"))
    assert not any("TcpClient" in script or "mysql.exe" in script for script in windows.seen)


def test_admin_login_script_and_parsing():
    script = databases.DatabaseAdminLogin().command(dbms="pgres", client=PSQL, admin_user="postgres")
    assert script.startswith(
        "$client = 'C:\\Program Files\\PostgreSQL\\16\\bin\\psql.exe'\n"
        "$arguments = '-X -q -A -t -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres -d postgres'\n"
        "$probe = 'SELECT 1;\n'\nfunction Invoke-Program("
    )
    assert lint(script) == []
    assert parse(databases.DatabaseAdminLogin, '{"code":0,"stderr":""}') == {"ok": True, "error": ""}
    out = '{"code":2,"stderr":"psql: error: fe_sendauth: no password supplied"}'
    assert parse(databases.DatabaseAdminLogin, out) == {
        "ok": False,
        "error": "psql: error: fe_sendauth: no password supplied",
    }


def test_administrator_password_missing_stops_before_any_change(monkeypatch):
    """Apache Lounge: MariaDB's root has a password (set in the installer) and none was given."""
    windows = apache_lounge_machine()
    error = "ERROR 1045 (28000): Access denied for user 'root'@'localhost' (using password: NO)"
    admin_logins(windows, {"mysql": (MARIADB_MYSQL, "root")}, error=error)
    message = plan_error(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    assert message == (
        "@winssh/lab-pc: flask-impots-withmysql (mysql): cannot log in to MariaDB/MySQL at 127.0.0.1:3306 "
        "as root without a password "
        f"({error}): give its password in IMPOTS_MYSQL_ADMIN_PASSWORD on the controller"
    )
    # With the password given, the login is left to the account script (nothing to check it with yet).
    monkeypatch.setenv("IMPOTS_MYSQL_ADMIN_PASSWORD", "MariaDB-root-1")
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    by_name = {name: commands for name, commands, _ in planned}
    assert by_name["MariaDB/MySQL database and user"][0].dest == "C:/impots/admin/mysql-admin.json"
    # Once both accounts are right (a converged machine), the administrator is not even tried.
    monkeypatch.delenv("IMPOTS_MYSQL_ADMIN_PASSWORD")
    windows.fact(databases.AccountState, ACCOUNTS_IN_PLACE["mysql"], dbms="mysql", client=MARIADB_MYSQL,
                 **STATE_QUERY)  # fmt: skip
    windows.seen.clear()
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    assert not any("$probe = 'SELECT 1;" in script and "mysql.exe" in script for script in windows.seen)
