"""The app's databases on a Windows host: MariaDB/MySQL and PostgreSQL accounts, schema and data.

(Redis, for the sessions, is ``redis.py``.)

The same result as the Linux deploy (``provisioning/linux/operations/databases.py``): database
``dbimpots-2019`` and user ``admimpots`` on each DBMS a site uses, with the password of the app's secrets
file, then the app's own ``python -m impots.db.seed <dbms>`` (Contract 2). Differences on Windows:

- the servers are not installed here: Laragon ships MySQL/MariaDB (root without password) and
  optionally PostgreSQL; an Apache Lounge host has them installed separately. The clients
  (``mysql.exe``, ``psql.exe``) are looked for on PATH and in the usual folders, and the servers must
  answer on the addresses ``impots.json`` gives the app (``ENDPOINTS``), checked before any change;
- SQL goes to the client on stdin from a PowerShell script that reads the app user's password from the
  secrets file itself; an administrator password (``database_admins``) travels over SFTP into an
  Administrators-only folder, is read and deleted by the script, and reaches the client as
  ``MYSQL_PWD``/``PGPASSWORD`` in the child's environment only: never on a command line;
- "already in place" is what the app itself sees: ``impots.db.seed --check`` exits 0 (up to date) or 3
  (seed needed) only when the app's user logs in to its database with the secrets file's password.
  Exit 2 (cannot connect) or no app yet: the account is (re)made, idempotently.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation

from provisioning.remote.sql import (
    mysql_split_accounts_sql,
    mysql_string,
    pg_split_grants_sql,
    pg_split_grants_state_sql,
    pg_split_roles_sql,
    pg_split_state_sql,
    seeder_name,
)
from provisioning.settings import Settings, app_paths
from provisioning.windows.facts import PowerShellJsonFact, ProgramSearch, TcpPortsOpen
from provisioning.windows.operations import ADMINISTRATORS_SID, SYSTEM_SID
from provisioning.windows.platforms import LARAGON, WindowsPlatform
from provisioning.windows.powershell import json_fact_script, ps_array, ps_assign, win_path

# The seeding passwords file and the private seed folder: Administrators and SYSTEM only.
ADMINS_ONLY_GRANTS = (f"*{ADMINISTRATORS_SID}:F", f"*{SYSTEM_SID}:F")

# Where the app connects (templates/common/impots.json.j2 writes these for every host).
ENDPOINTS = {"mysql": "127.0.0.1:3306", "pgres": "127.0.0.1:5432"}
LABELS = {"mysql": "MariaDB/MySQL", "pgres": "PostgreSQL"}
CLIENTS = {"mysql": "mysql.exe", "pgres": "psql.exe"}

SEED_UP_TO_DATE = 0
SEED_CHANGES_NEEDED = 3

# Extra host data read by the Windows deploy (not in Settings yet): key -> (default, environment variable).
ADMIN_KEYS = {
    "impots_mysql_admin_user": ("root", None),
    "impots_mysql_admin_password": (None, "IMPOTS_MYSQL_ADMIN_PASSWORD"),
    "impots_pgres_admin_user": ("postgres", None),
    "impots_pgres_admin_password": (None, "IMPOTS_PGRES_ADMIN_PASSWORD"),
}
_ADMIN_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")


class DatabaseDataError(ValueError):
    """Bad database administrator data: ``<host>: <key>: <what is wrong>`` (the value never shown)."""


@dataclass(frozen=True)
class DatabaseAdmins:
    """The DBMS administrator accounts the deploy creates the app's database and user with."""

    mysql_user: str = "root"
    mysql_password: str | None = field(default=None, repr=False)  # None: no password (Laragon's root)
    pgres_user: str = "postgres"
    pgres_password: str | None = field(default=None, repr=False)

    def user(self, dbms: str) -> str:
        return self.mysql_user if dbms == "mysql" else self.pgres_user

    def password(self, dbms: str) -> str | None:
        return self.mysql_password if dbms == "mysql" else self.pgres_password


def database_admins(host_name: str, data: Mapping[str, Any], environ: Mapping[str, str]) -> DatabaseAdmins:
    """Validate the administrator keys of ``ADMIN_KEYS`` in host data (passwords also from the
    environment); raise ``DatabaseDataError`` naming the key, never the secret."""
    values: dict[str, str | None] = {}
    for key, (default, variable) in ADMIN_KEYS.items():
        value, origin = data.get(key), "data"
        if value is None and variable:
            value, origin = environ.get(variable) or None, f"environment variable {variable}"
        if value is None:
            values[key] = default
            continue
        if key.endswith("_user"):
            if not isinstance(value, str) or not _ADMIN_USER.match(value):
                raise DatabaseDataError(f"{host_name}: {key}: {value!r} is not an account name")
        elif not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise DatabaseDataError(
                f"{host_name}: {key}: must be a string without line breaks or NUL (from {origin})"
            )
        values[key] = value
    return DatabaseAdmins(
        mysql_user=values["impots_mysql_admin_user"],
        mysql_password=values["impots_mysql_admin_password"],
        pgres_user=values["impots_pgres_admin_user"],
        pgres_password=values["impots_pgres_admin_password"],
    )


# --- finding the clients and servers ------------------------------------------------------------------


def client_patterns(dbms: str, platform: WindowsPlatform, laragon_root: str) -> list[str]:
    """Where ``mysql.exe``/``psql.exe`` are looked for (besides PATH), most likely first."""
    laragon = laragon_root.rstrip("/")
    if dbms == "mysql":
        own = [f"{laragon}/bin/mysql/*/bin/mysql.exe"] if platform.layout == LARAGON else []
        return own + [
            "C:/Program Files/MariaDB */bin/mysql.exe",
            "C:/Program Files/MySQL/MySQL Server */bin/mysql.exe",
        ]
    own = [f"{laragon}/bin/postgresql/*/bin/psql.exe"] if platform.layout == LARAGON else []
    return own + ["C:/Program Files/PostgreSQL/*/bin/psql.exe"]


def _natural_key(path: str) -> list[Any]:
    return [(0, int(part)) if part.isdigit() else (1, part.lower()) for part in re.split(r"(\d+)", path)]


def choose_program(search: Mapping[str, Any], patterns: Sequence[str]) -> str | None:
    """The first pattern's newest match (version numbers compared as numbers), else what PATH has."""
    for pattern in patterns:
        files = search["found"].get(pattern) or []
        if files:
            return max(files, key=_natural_key)
    return search["on_path"]


@dataclass(frozen=True)
class DatabaseTarget:
    """What the database steps use on this host, decided from facts before any change."""

    clients: dict[str, str] = field(default_factory=dict)  # dbms -> client executable


def seed_check_paths(settings: Settings) -> dict[str, str]:
    """Where the app's seed command runs (``python``, ``app``, ``instance``), as deploy_windows makes it,
    and the seeding accounts' passwords file (``seeder_secrets``: the plan's, Administrators only)."""
    paths = app_paths(settings)
    return {
        "python": f"{paths.venv}/Scripts/python.exe",
        "app": paths.app,
        "instance": f"{paths.install_root}/instance",
        # TargetPaths.seeder_secrets with WindowsPlatform.state_dir (a test keeps them equal)
        "seeder_secrets": f"{paths.install_root}/state/seeder-secrets.json",
    }


def resolve_databases(
    settings: Settings, platform: WindowsPlatform, admins: DatabaseAdmins | None = None
) -> tuple[DatabaseTarget, list[str]]:
    """The clients to use, and every problem found (each naming what was looked for).

    When the account of a DBMS is still to be made and no administrator password is given, the
    administrator's login without a password is tried now, so that a missing password stops the run
    before any change rather than half-way."""
    admins = admins or DatabaseAdmins()
    problems: list[str] = []
    wanted = list(settings.dbms_in_use)  # Redis: redis.py
    if not wanted:
        return DatabaseTarget(), problems
    listening = host.get_fact(TcpPortsOpen, endpoints=[ENDPOINTS[name] for name in wanted])
    start_hint = (
        "start it from Laragon's menu (Start All)"
        if platform.layout == LARAGON
        else "install it and start its Windows service"
    )
    clients: dict[str, str] = {}
    for dbms in settings.dbms_in_use:
        patterns = client_patterns(dbms, platform, settings.laragon_root)
        client = choose_program(
            host.get_fact(ProgramSearch, program=CLIENTS[dbms], patterns=patterns), patterns
        )
        for site in (s for s in settings.sites if s.dbms == dbms):
            if client is None:
                problems.append(
                    f"site {site.name} uses {dbms} ({LABELS[dbms]}) but its client {CLIENTS[dbms]} was not "
                    f"found (looked on PATH and in {', '.join(patterns)}): install it, or put its bin "
                    "folder on the system PATH"
                )
            if not listening.get(ENDPOINTS[dbms]):
                problems.append(
                    f"site {site.name} uses {dbms} ({LABELS[dbms]}) but nothing answers on "
                    f"{ENDPOINTS[dbms]}: {start_hint}"
                )
        if client is not None:
            clients[dbms] = client
            if listening.get(ENDPOINTS[dbms]) and admins.password(dbms) is None:
                problems += _admin_login_problems(dbms, client, admins.user(dbms), settings)

    return DatabaseTarget(clients=clients), problems


def _admin_login_problems(dbms: str, client: str, admin_user: str, settings: Settings) -> list[str]:
    query = {
        "database": settings.database.name,
        "user": settings.database.user,
        "secrets": f"{seed_check_paths(settings)['instance']}/secrets.json",
        "seeder_secrets": seed_check_paths(settings)["seeder_secrets"],
    }
    if _account_in_place(dbms, client=client, **query):
        return []  # the administrator is not needed
    login = host.get_fact(DatabaseAdminLogin, dbms=dbms, client=client, admin_user=admin_user)
    if login is None or login["ok"]:
        return []
    variable = ADMIN_KEYS[f"impots_{dbms}_admin_password"][1]
    sites = ", ".join(site.name for site in settings.sites if site.dbms == dbms)
    return [
        f"{sites} ({dbms}): cannot log in to {LABELS[dbms]} at {ENDPOINTS[dbms]} as {admin_user} "
        f"without a password ({login['error'] or 'no message'}): "
        f"give its password in {variable} on the controller"
    ]


# --- running a program from a script -----------------------------------------------------------------

# Native programs run through .NET's Process, not PowerShell's pipeline: stdin is written as UTF-8 bytes
# (Windows PowerShell 5.1 pipes text to native programs in ASCII), secrets go into the child's
# environment only, and stderr is captured for the error message instead of being turned into a
# PowerShell error by the wrapper's 'Stop'.
INVOKE_PROGRAM = r"""
function Invoke-Program([string]$exe, [string]$arguments, [hashtable]$environment, [string]$stdin,
    [string]$folder) {
    $info = New-Object Diagnostics.ProcessStartInfo
    $info.FileName = $exe
    $info.Arguments = $arguments
    $info.UseShellExecute = $false
    $info.CreateNoWindow = $true
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $utf8 = New-Object Text.UTF8Encoding $false
    $info.StandardOutputEncoding = $utf8
    $info.StandardErrorEncoding = $utf8
    if ($folder) { $info.WorkingDirectory = $folder }
    foreach ($key in $environment.Keys) { $info.EnvironmentVariables[$key] = [string]$environment[$key] }
    $process = [Diagnostics.Process]::Start($info)
    $out = $process.StandardOutput.ReadToEndAsync()
    $err = $process.StandardError.ReadToEndAsync()
    $bytes = $utf8.GetBytes($stdin)
    $process.StandardInput.BaseStream.Write($bytes, 0, $bytes.Length)
    $process.StandardInput.Close()
    $process.WaitForExit()
    @{ code = $process.ExitCode; stdout = $out.Result; stderr = $err.Result.Trim() }
}
"""


def command_line(arguments: Sequence[str]) -> str:
    """Arguments joined for a Windows command line (the C runtime's quoting rules)."""
    return subprocess.list2cmdline(list(arguments))


def seed_arguments(dbms: str, check: bool) -> str:
    return command_line(["-m", "impots.db.seed", dbms, *(["--check"] if check else [])])


def seed_script(dbms: str, python: str, app: str, instance: str, *, check: bool, tail: str) -> str:
    """``tail`` run after the variables (``$python``, ``$app``, ``$instance``, ``$arguments`` of
    ``python -m impots.db.seed <dbms> [--check]``) and ``Invoke-Program`` are set."""
    return (
        ps_assign(
            python=win_path(python),
            app=win_path(app),
            instance=win_path(instance),
            arguments=seed_arguments(dbms, check=check),
        )
        + INVOKE_PROGRAM.lstrip("\n")
        + tail.lstrip("\n")
    )


# --- the seed status (the app's own view of its database) ----------------------------------------------

_SEED_STATUS = r"""
$result = $null
$ready = Test-Path -LiteralPath $python -PathType Leaf
if ($ready) { $ready = Test-Path -LiteralPath (Join-Path $app 'impots') -PathType Container }
if ($ready) {
    $run = Invoke-Program $python $arguments @{ IMPOTS_INSTANCE_PATH = $instance } '' $app
    $result = @{ code = $run.code; stderr = $run.stderr }
}
"""


class SeedStatus(PowerShellJsonFact):
    """
    What ``<venv>/Scripts/python.exe -m impots.db.seed <dbms> --check`` says, run from the app folder
    with ``IMPOTS_INSTANCE_PATH`` set: ``{"code": 0|3|2, "stderr": str}`` (0 up to date, 3 seed needed,
    2 cannot connect), or ``None`` when the venv's Python or the app is not there yet.

    .. code:: python

        host.get_fact(SeedStatus, dbms="mysql", python="C:/impots/venv/Scripts/python.exe",
                      app="C:/impots/app", instance="C:/impots/instance")
    """

    def command(self, dbms: str, python: str, app: str, instance: str) -> str:
        return json_fact_script(seed_script(dbms, python, app, instance, check=True, tail=_SEED_STATUS))

    def convert(self, value: dict) -> dict:
        return {"code": int(value["code"]), "stderr": value.get("stderr") or ""}


_ADMIN_LOGIN = r"""
$run = Invoke-Program $client $arguments @{ PGCONNECT_TIMEOUT = '10' } $probe $null
$result = @{ code = $run.code; stderr = $run.stderr }
"""


class DatabaseAdminLogin(PowerShellJsonFact):
    """
    Whether the DBMS administrator logs in without a password over TCP (``SELECT 1`` on stdin of
    ``mysql.exe``/``psql.exe``): ``{"ok": bool, "error": the client's stderr}``.

    .. code:: python

        host.get_fact(DatabaseAdminLogin, dbms="mysql", admin_user="root",
                      client="C:/laragon/bin/mysql/mysql-8.0.30-winx64/bin/mysql.exe")
    """

    def command(self, dbms: str, client: str, admin_user: str) -> str:
        return json_fact_script(
            ps_assign(
                client=win_path(client), arguments=client_arguments(dbms, admin_user), probe="SELECT 1;\n"
            )
            + INVOKE_PROGRAM.lstrip("\n")
            + _ADMIN_LOGIN.lstrip("\n")
        )

    def convert(self, value: dict) -> dict:
        return {"ok": int(value["code"]) == 0, "error": value.get("stderr") or ""}


# --- accounts: the app's reads, the seeding account writes ------------------------------------------


def mysql_self_state_sql(database: str) -> str:
    """One row, for the account logged in (without the administrator, an account sees only its own
    rights): its SELECT rights on the database, its other rights there, its CREATE rights there."""
    db = mysql_string(database)
    count = f"SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA={db} AND"
    return (
        f"SELECT ({count} PRIVILEGE_TYPE='SELECT'), ({count} PRIVILEGE_TYPE<>'SELECT'),"
        f" ({count} PRIVILEGE_TYPE='CREATE');\n"
    )


# Both accounts log in with their passwords, read on the host; each answers the state query.
_ACCOUNT_STATE = r"""
function Read-Password([string]$file, [string]$key) {
    if (-not (Test-Path -LiteralPath $file -PathType Leaf)) { return '' }
    [string]([IO.File]::ReadAllText($file) | ConvertFrom-Json).$key
}
function Get-Answer([string]$arguments, [string]$password) {
    if (-not $password) { return $null }
    $environment = @{ PGCLIENTENCODING = 'UTF8'; PGCONNECT_TIMEOUT = '10' }
    $environment[$passwordvariable] = $password
    $run = Invoke-Program $client $arguments $environment $statesql $null
    @{ code = $run.code; stdout = $run.stdout.Trim() }
}
$result = @{
    app = Get-Answer $apparguments (Read-Password $secretsfile $secretkey)
    seeder = Get-Answer $seederarguments (Read-Password $seedersecrets $secretkey)
}
"""


class AccountState(PowerShellJsonFact):
    """
    The app's account and the seeding account as each sees itself, logged in with its password (the
    secrets file's, the seeding file's): ``{"app": answer, "seeder": answer}``, an answer being
    ``{"code": exit code, "stdout": the state query's rows}`` or ``None`` (no password yet). The state
    query is ``mysql_self_state_sql``, or on PostgreSQL (whose catalogs every role reads) the
    Linux deploy's ``pg_split_state_sql`` and ``pg_split_grants_state_sql``.

    .. code:: python

        host.get_fact(AccountState, dbms="pgres", client="C:/Program Files/PostgreSQL/16/bin/psql.exe",
                      database="dbimpots-2019", user="admimpots",
                      secrets="C:/impots/instance/secrets.json",
                      seeder_secrets="C:/impots/state/seeder-secrets.json")
    """

    def command(
        self, dbms: str, client: str, database: str, user: str, secrets: str, seeder_secrets: str
    ) -> str:
        if dbms == "mysql":
            statesql = mysql_self_state_sql(database)
        else:
            statesql = pg_split_state_sql(database, user) + pg_split_grants_state_sql(user)
        return json_fact_script(
            ps_assign(
                client=win_path(client),
                apparguments=client_arguments(dbms, user, database),
                seederarguments=client_arguments(dbms, seeder_name(user), database),
                secretsfile=win_path(secrets),
                seedersecrets=win_path(seeder_secrets),
                secretkey=f"{dbms}_password",
                passwordvariable="MYSQL_PWD" if dbms == "mysql" else "PGPASSWORD",
                statesql=statesql,
            )
            + INVOKE_PROGRAM.lstrip("\n")
            + _ACCOUNT_STATE.lstrip("\n")
        )


def accounts_in_place(dbms: str, state: Mapping[str, Any] | None) -> bool:
    """Both accounts log in; the app's may only read (PostgreSQL: it owns nothing, the seeding role
    owns the database, its new tables are readable by the app); the seeding account may create."""
    if not state or not state.get("app") or not state.get("seeder"):
        return False
    app, seeder = state["app"], state["seeder"]
    if app["code"] != 0 or seeder["code"] != 0:
        return False
    if dbms == "mysql":
        return app["stdout"].split() == ["1", "0", "0"] and seeder["stdout"].split()[2:] == ["1"]
    rows = app["stdout"].splitlines()
    if len(rows) != 2:
        return False
    owned, unreadable, writable, creates, defaults = (int(x) for x in rows[1].split("|"))
    return rows[0] == "1|1|1|1" and (owned, unreadable, writable, creates) == (0, 0, 0, 0) and defaults > 0


def _account_in_place(dbms: str, **query: str) -> bool:
    return accounts_in_place(dbms, host.get_fact(AccountState, dbms=dbms, **query))


# The administrator password file is read and deleted at once (finally: also when reading fails). The
# seeding account's password is made once here, on the host, in a file only Administrators and SYSTEM
# read (its ACL set while the file is still empty), beside the account's name for the seed step.
_READ_SECRETS = r"""
$admin = $null
if ($adminfile) {
    try { $admin = [IO.File]::ReadAllText($adminfile) | ConvertFrom-Json }
    finally { Remove-Item -LiteralPath $adminfile -Force -ErrorAction SilentlyContinue }
}
$secrets = [IO.File]::ReadAllText($secretsfile) | ConvertFrom-Json
$password = [string]$secrets.$secretkey
if (-not $password) { throw "$secretsfile has no $secretkey" }
$values = @{}
if (Test-Path -LiteralPath $seedersecrets -PathType Leaf) {
    $old = [IO.File]::ReadAllText($seedersecrets) | ConvertFrom-Json
    foreach ($property in $old.PSObject.Properties) { $values[$property.Name] = $property.Value }
}
if (-not $values[$secretkey] -or $values[$userkey] -ne $seeder) {
    if (-not $values[$secretkey]) {
        $bytes = New-Object byte[] 32
        [Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
        $text = [Convert]::ToBase64String($bytes).TrimEnd('=')
        $values[$secretkey] = $text.Replace('+', '-').Replace('/', '_')
    }
    $values[$userkey] = $seeder
    $null = [IO.Directory]::CreateDirectory((Split-Path -Parent $seedersecrets))
    if (-not (Test-Path -LiteralPath $seedersecrets -PathType Leaf)) {
        [IO.File]::WriteAllText($seedersecrets, '')
    }
    & { $ErrorActionPreference = 'Continue'; & icacls.exe $seedersecrets /inheritance:r /grant:r @grants /Q }
    if ($LASTEXITCODE -ne 0) { throw "cannot restrict $seedersecrets (icacls exit $LASTEXITCODE)" }
    $json = ConvertTo-Json -InputObject $values -Compress
    [IO.File]::WriteAllText($seedersecrets, $json, (New-Object System.Text.UTF8Encoding $false))
}
$seederpassword = [string]$values[$secretkey]
"""

# The seeding password goes in first: the script made it, URL-safe base64 (no '@'), so the app's
# password, whatever it holds, is never searched for a placeholder.
_MYSQL_ENSURE = r"""
$environment = @{}
if ($admin -and $admin.password) { $environment['MYSQL_PWD'] = [string]$admin.password }
$quoted = "'" + $password.Replace('\', '\\').Replace("'", "''") + "'"
$seederquoted = "'" + $seederpassword.Replace('\', '\\').Replace("'", "''") + "'"
$sql = $sql.Replace('@SEEDER_PASSWORD@', $seederquoted).Replace('@PASSWORD@', $quoted)
$run = Invoke-Program $client $arguments $environment $sql $null
if ($run.code -ne 0) { throw ($where + ': ' + $run.stderr) }
"""

_PGRES_ENSURE = r"""
$environment = @{ PGCLIENTENCODING = 'UTF8'; PGCONNECT_TIMEOUT = '10' }
if ($admin -and $admin.password) { $environment['PGPASSWORD'] = [string]$admin.password }
$quoted = "'" + $password.Replace("'", "''") + "'"
$seederquoted = "'" + $seederpassword.Replace("'", "''") + "'"
$sql = $rolessql.Replace('@SEEDER_PASSWORD@', $seederquoted).Replace('@PASSWORD@', $quoted)
$run = Invoke-Program $client $arguments $environment $sql $null
if ($run.code -ne 0) { throw ($where + ': ' + $run.stderr) }
$run = Invoke-Program $client $grantsarguments $environment $grantssql $null
if ($run.code -ne 0) { throw ($where + ': ' + $run.stderr) }
"""

PASSWORD = "@PASSWORD@"
SEEDER_PASSWORD = "@SEEDER_PASSWORD@"


def mysql_ensure_sql(database: str, user: str) -> str:
    """The statements making the database, the app's account (SELECT only) and the seeding account
    (placeholders put in by the script on the host): the Linux target helper's builder."""
    return mysql_split_accounts_sql(database, user, PASSWORD, SEEDER_PASSWORD)


def pgres_statements(database: str, user: str, admin_user: str) -> dict[str, str]:
    """The roles and database (run in ``postgres``, placeholders put in by the script) and the
    grants (run in the app's database): the Linux target helper's builders."""
    return {
        "rolessql": pg_split_roles_sql(database, user, PASSWORD, SEEDER_PASSWORD),
        "grantssql": pg_split_grants_sql(user),
        "grantsarguments": client_arguments("pgres", admin_user, database),
    }


def client_arguments(dbms: str, user: str, database: str | None = None) -> str:
    """The client's arguments to log in as ``user`` over TCP (a password only ever in the child's
    environment), to ``database`` (PostgreSQL: ``postgres`` by default)."""
    address, port = ENDPOINTS[dbms].rsplit(":", 1)
    if dbms == "mysql":
        return command_line(
            ["--protocol=TCP", f"--host={address}", f"--port={port}", f"--user={user}",
             *([f"--database={database}"] if database else []),
             "--default-character-set=utf8mb4", "--batch", "--skip-column-names", "--connect-timeout=10"]
        )  # fmt: skip
    return command_line(
        ["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-h", address, "-p", port,
         "-U", user, "-d", database or "postgres"]
    )  # fmt: skip


def admin_file(admin_dir: str, dbms: str) -> str:
    return f"{admin_dir}/{dbms}-admin.json"


def _account_commands(
    dbms: str,
    client: str,
    admin: tuple[str, str | None, str],
    user: str,
    seeding: tuple[str, str],
    statements: Mapping[str, str],
    ensure: str,
):
    """Upload the administrator password (if any), then the script making the accounts: the
    ``statements`` as PowerShell variables, then the secrets read (the seeding one made if missing),
    then ``ensure`` (the DBMS's part). ``admin``: user, password, Administrators-only transit folder;
    ``seeding``: the app's secrets file and the seeding passwords file."""
    admin_user, admin_password, admin_dir = admin
    secrets, seeder_secrets = seeding
    adminfile = ""
    if admin_password is not None:
        adminfile = admin_file(admin_dir, dbms)
        yield FileUploadCommand(BytesIO(json.dumps({"password": admin_password}).encode("utf-8")), adminfile)
    variable = ADMIN_KEYS[f"impots_{dbms}_admin_password"][1]
    where = (
        f"cannot create the database and users on {LABELS[dbms]} at {ENDPOINTS[dbms]} as {admin_user} "
        f"with {client} (administrator password: {variable}, "
        f"{'given' if admin_password is not None else 'none given'})"
    )
    yield (
        ps_assign(
            client=win_path(client),
            arguments=client_arguments(dbms, admin_user),
            adminfile=win_path(adminfile),
            secretsfile=win_path(secrets),
            seedersecrets=win_path(seeder_secrets),
            secretkey=f"{dbms}_password",
            userkey=f"{dbms}_user",
            seeder=seeder_name(user),
            where=where,
        )
        + f"$grants = {ps_array(ADMINS_ONLY_GRANTS)}\n"
        + ps_assign(**statements)
        + INVOKE_PROGRAM.lstrip("\n")
        + _READ_SECRETS.lstrip("\n")
        + ensure.lstrip("\n")
    )


@operation()
def mysql_account(
    client: str,
    admin_user: str,
    admin_password: str | None,
    admin_dir: str,
    secrets: str,
    database: str,
    user: str,
    python: str,
    app: str,
    instance: str,
    seeder_secrets: str,
):
    """
    The MariaDB/MySQL database, the app's account (``'user'@'localhost'`` and ``'user'@'127.0.0.1'``,
    the ``mysql_password`` of the secrets file, SELECT only on the database) and the seeding account
    ``<user>_seed`` (all rights on the database, its password made once on the host in
    ``seeder_secrets``); an older app account with more rights is reduced. No change when both log in
    and the app's account sees SELECT only, the seeding one CREATE (``AccountState``).

    + client: ``mysql.exe``
    + admin_user, admin_password: the administrator account (``root``; ``None``: no password)
    + admin_dir: Administrators-only folder the administrator password passes through
    + secrets: the app's secrets file; seeder_secrets: the seeding passwords (Administrators only)
    + database, user: e.g. ``dbimpots-2019``, ``admimpots``
    + python, app, instance: the venv's Python, the app folder and its instance folder (unused here:
      ``seed_check_paths`` gives them to every database step)

    .. code:: python

        mysql_account(client="C:/laragon/bin/mysql/mysql-8.0.30-winx64/bin/mysql.exe", admin_user="root",
                      admin_password=None, admin_dir="C:/impots/admin",
                      secrets="C:/impots/instance/secrets.json", database="dbimpots-2019",
                      user="admimpots", python="C:/impots/venv/Scripts/python.exe",
                      app="C:/impots/app", instance="C:/impots/instance",
                      seeder_secrets="C:/impots/state/seeder-secrets.json")
    """
    query = {"database": database, "user": user, "secrets": secrets, "seeder_secrets": seeder_secrets}
    if _account_in_place("mysql", client=client, **query):
        host.noop(f"MariaDB/MySQL database {database}, reader {user} and its seeder are already in place")
        return
    statements = {"sql": mysql_ensure_sql(database, user)}
    admin = (admin_user, admin_password, admin_dir)
    seeding = (secrets, seeder_secrets)
    yield from _account_commands("mysql", client, admin, user, seeding, statements, _MYSQL_ENSURE)


@operation()
def postgresql_account(
    client: str,
    admin_user: str,
    admin_password: str | None,
    admin_dir: str,
    secrets: str,
    database: str,
    user: str,
    python: str,
    app: str,
    instance: str,
    seeder_secrets: str,
):
    """
    The PostgreSQL roles and database: the app's role (login, the ``pgres_password`` of the secrets
    file) reads every table of ``public`` and owns nothing; the seeding role ``<user>_seed`` (its
    password made once on the host in ``seeder_secrets``) owns the database, the tables and creates in
    ``public``. An older app role owning them is reduced. No change when both log in and the state
    queries say so (``AccountState``).

    + client: ``psql.exe``
    + admin_user, admin_password: the superuser (``postgres``; ``None``: no password, e.g. trust)
    + the other arguments: as for ``mysql_account``

    .. code:: python

        postgresql_account(client="C:/Program Files/PostgreSQL/16/bin/psql.exe", admin_user="postgres",
                           admin_password="...", admin_dir="C:/impots/admin",
                           secrets="C:/impots/instance/secrets.json", database="dbimpots-2019",
                           user="admimpots", python="C:/impots/venv/Scripts/python.exe",
                           app="C:/impots/app", instance="C:/impots/instance",
                           seeder_secrets="C:/impots/state/seeder-secrets.json")
    """
    query = {"database": database, "user": user, "secrets": secrets, "seeder_secrets": seeder_secrets}
    if _account_in_place("pgres", client=client, **query):
        host.noop(f"PostgreSQL database {database} owned by {seeder_name(user)}, {user} reads only")
        return
    statements = pgres_statements(database, user, admin_user)
    admin = (admin_user, admin_password, admin_dir)
    seeding = (secrets, seeder_secrets)
    yield from _account_commands("pgres", client, admin, user, seeding, statements, _PGRES_ENSURE)


# --- schema and data -------------------------------------------------------------------------------------

# As the seeding account, through a private instance folder (Administrators and SYSTEM only, made beside
# the seeding passwords and removed afterwards): the app's impots.json with the seeding account in place
# of the app's, and a secrets file with its password. The app's code is used unchanged.
_SEED = r"""
$stored = [IO.File]::ReadAllText($seedersecrets) | ConvertFrom-Json
$password = [string]$stored.$secretkey
$seeder = [string]$stored.$userkey
if (-not $password -or -not $seeder) {
    throw "$seedersecrets has no $secretkey or $userkey`: the accounts step has not run"
}
$name = 'impots-seed-' + [Guid]::NewGuid().ToString('N')
$seedinstance = Join-Path (Split-Path -Parent $seedersecrets) $name
$null = [IO.Directory]::CreateDirectory($seedinstance)
try {
    & { $ErrorActionPreference = 'Continue'; & icacls.exe $seedinstance /inheritance:r /grant:r @grants /Q }
    if ($LASTEXITCODE -ne 0) { throw "cannot restrict $seedinstance (icacls exit $LASTEXITCODE)" }
    $config = [IO.File]::ReadAllText((Join-Path $instance 'impots.json')) | ConvertFrom-Json
    $config.databases.$dbms.user = $seeder
    $config | Add-Member -NotePropertyName secrets_file -NotePropertyValue 'secrets.json' -Force
    $utf8 = New-Object Text.UTF8Encoding $false
    $json = ConvertTo-Json -InputObject $config -Depth 10
    [IO.File]::WriteAllText((Join-Path $seedinstance 'impots.json'), $json, $utf8)
    $json = ConvertTo-Json -InputObject @{ $secretkey = $password } -Compress
    [IO.File]::WriteAllText((Join-Path $seedinstance 'secrets.json'), $json, $utf8)
    $run = Invoke-Program $python $arguments @{ IMPOTS_INSTANCE_PATH = $seedinstance } '' $app
}
finally { Remove-Item -LiteralPath $seedinstance -Recurse -Force -ErrorAction SilentlyContinue }
if ($run.stdout) { Write-Output $run.stdout.Trim() }
if ($run.code -ne 0) { throw ('python -m impots.db.seed failed (exit ' + $run.code + '): ' + $run.stderr) }
"""


@operation()
def database_seeded(
    dbms: Sequence[str],
    python: str,
    app: str,
    instance: str,
    seeder_secrets: str,
    touch: str | None = None,
):
    """
    Create the app's tables and make their rows equal to the course data with the app's own command
    (``python -m impots.db.seed <dbms>``, from the app folder) run as the seeding account, for each
    DBMS whose ``--check`` (``SeedStatus``, as the app's account) does not say up to date.

    + dbms: ``mysql`` and/or ``pgres``
    + python: the venv's ``Scripts/python.exe``
    + app: the app folder (current release); instance: the instance folder (its ``impots.json``)
    + seeder_secrets: the seeding accounts' names and passwords (the account steps write them)
    + touch: a file written after seeding (a reload-watched stamp: the apps must reload to read the
      repaired data)

    .. code:: python

        database_seeded(dbms=["mysql", "pgres"], python="C:/impots/venv/Scripts/python.exe",
                        app="C:/impots/app", instance="C:/impots/instance",
                        seeder_secrets="C:/impots/state/seeder-secrets.json",
                        touch="C:/impots/state/data-seeded.stamp")
    """
    stale = []
    for name in dbms:
        status = host.get_fact(SeedStatus, dbms=name, python=python, app=app, instance=instance)
        if status is None or status["code"] != SEED_UP_TO_DATE:
            stale.append(name)
    if not stale:
        host.noop(f"{', '.join(dbms)} schema and data are already up to date")
        return
    for name in stale:
        variables = ps_assign(
            dbms=name,
            seedersecrets=win_path(seeder_secrets),
            secretkey=f"{name}_password",
            userkey=f"{name}_user",
        )
        tail = variables + f"$grants = {ps_array(ADMINS_ONLY_GRANTS)}\n" + _SEED.lstrip("\n")
        yield seed_script(name, python, app, instance, check=False, tail=tail)
    if touch:
        yield ps_assign(seeded=win_path(touch)) + _TOUCH.lstrip("\n")


_TOUCH = r"""
$null = [IO.Directory]::CreateDirectory((Split-Path -Parent $seeded))
[IO.File]::WriteAllText($seeded, [DateTime]::UtcNow.ToString('o'))
"""
