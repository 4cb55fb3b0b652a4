#!/usr/bin/env python3
"""Target-side helper of the impots provisioning (pushed to <install_root>/bin/, run by root).

Why a helper: database passwords and the Flask secret live in the app's secrets file; this script
reads them there and hands them to ``mysql``/``psql`` on stdin or in a 0600 temporary file, so no
secret ever appears on a command line (``ps``) or in pyinfra's output. Standard library only: it
runs with the target's system python3 before the app's venv exists.

Subcommands print JSON (state queries) or one line per change; a failure exits non-zero with a
one-line message naming the problem.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import grp
import hashlib
import json
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time


def fail(message: str) -> None:
    print(f"impots-helper: {message}", file=sys.stderr)
    sys.exit(1)


def read_secrets(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}
    except ValueError as error:
        fail(f"{path} is not valid JSON: {error}")
        return {}


def required_secret(path: str, key: str) -> str:
    value = read_secrets(path).get(key)
    if not value:
        fail(f"{path} has no {key}")
    return value


# --- secrets ----------------------------------------------------------------------------------


def secrets_status(args: argparse.Namespace) -> None:
    """Key -> sha256 of each value (enough to compare with wanted values, useless to an onlooker),
    and the file's owner, group and mode."""
    values = read_secrets(args.file)
    status: dict = {
        "values": {k: hashlib.sha256(str(v).encode()).hexdigest() for k, v in sorted(values.items())}
    }
    if os.path.exists(args.file):
        info = os.stat(args.file)
        status.update(
            user=pwd.getpwuid(info.st_uid).pw_name,
            group=grp.getgrgid(info.st_gid).gr_name,
            mode=format(info.st_mode & 0o7777, "o"),
        )
    print(json.dumps(status))


def secrets_merge(args: argparse.Namespace) -> None:
    current = read_secrets(args.file)
    merged = dict(current)
    if args.given:
        with open(args.given, encoding="utf-8") as handle:
            merged.update(json.load(handle))
        os.unlink(args.given)
    for key in filter(None, args.generate.split(",")):
        if not merged.get(key):
            merged[key] = secrets.token_urlsafe(32)
    changed = sorted(k for k in merged if merged[k] != current.get(k))
    folder = os.path.dirname(args.file)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".secrets-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(merged, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chown(temporary, 0, grp.getgrnam(args.group).gr_gid)
    os.chmod(temporary, 0o640)
    os.replace(temporary, args.file)
    print(f"secrets written: {', '.join(changed) or 'owner and mode only'}")


# --- MariaDB / MySQL ----------------------------------------------------------------------------


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_mysql_as_root(sql: str) -> str:
    result = subprocess.run(
        ["mysql", "--batch", "--skip-column-names"], input=sql, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        fail(f"mysql (as root, unix socket) failed: {result.stderr.strip()}")
    return result.stdout


MYSQL_HOSTS = ("localhost", "127.0.0.1")


def mysql_password_works(user: str, password: str) -> bool:
    with tempfile.NamedTemporaryFile("w", prefix="impots-my-", suffix=".cnf") as options:
        # mkstemp files are 0600: the password is never readable by anyone else.
        escaped = password.replace("\\", "\\\\").replace('"', '\\"')
        options.write(f'[client]\npassword="{escaped}"\n')
        options.flush()
        result = subprocess.run(
            ["mysql", f"--defaults-extra-file={options.name}", "--protocol=TCP", "-h", "127.0.0.1",
             "-u", user, "--connect-timeout=5", "-e", "SELECT 1"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    return result.returncode == 0


def mysql_state_of(args: argparse.Namespace) -> dict:
    db, user = sql_string(args.database), sql_string(args.user)
    grantees = ", ".join(sql_string(f"'{args.user}'@'{host}'") for host in MYSQL_HOSTS)
    hosts = ", ".join(sql_string(h) for h in MYSQL_HOSTS)
    row = run_mysql_as_root(
        f"SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME={db}),"
        f" (SELECT COUNT(*) FROM mysql.user WHERE User={user} AND Host IN ({hosts})),"
        " (SELECT COUNT(DISTINCT GRANTEE) FROM information_schema.SCHEMA_PRIVILEGES"
        f"  WHERE TABLE_SCHEMA={db} AND PRIVILEGE_TYPE='CREATE' AND GRANTEE IN ({grantees}));\n"
    ).split()
    database, users, grants = (int(x) for x in row)
    password = read_secrets(args.secrets).get("mysql_password")
    state = {
        "database": database == 1,
        "user": users == len(MYSQL_HOSTS),
        "grants": grants == len(MYSQL_HOSTS),
        "password": bool(password) and users > 0 and mysql_password_works(args.user, password),
    }
    return state


def mysql_account_sql(database: str, user: str, password_sql: str) -> str:
    """The statements making the database and the user, with ``password_sql`` (an SQL literal, or a
    placeholder that the Windows deploy replaces on its host) as the password. Also used by
    provisioning/windows/databases.py, so both platforms create the same accounts."""
    statements = [f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4;"]
    for host in MYSQL_HOSTS:
        account = f"{sql_string(user)}@{sql_string(host)}"
        statements += [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {password_sql};",
            f"ALTER USER {account} IDENTIFIED BY {password_sql};",
            f"GRANT ALL PRIVILEGES ON `{database}`.* TO {account};",
        ]
    statements.append("FLUSH PRIVILEGES;")
    return "\n".join(statements) + "\n"


def mysql_ensure(args: argparse.Namespace) -> None:
    password = sql_string(required_secret(args.secrets, "mysql_password"))
    run_mysql_as_root(mysql_account_sql(args.database, args.user, password))
    print(f"mysql: database {args.database} and user {args.user} in place")


# --- PostgreSQL -----------------------------------------------------------------------------------


def pg_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def run_psql_as_postgres(sql: str) -> str:
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
         "-d", "postgres"],
        input=sql, capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip
    if result.returncode != 0:
        fail(f"psql (as postgres) failed: {result.stderr.strip()}")
    return result.stdout


def pg_password_works(user: str, password: str) -> bool:
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    with tempfile.NamedTemporaryFile("w", prefix="impots-pg-", suffix=".pgpass") as passfile:
        passfile.write(f"127.0.0.1:*:*:{user}:{escaped}\n")
        passfile.flush()
        environment = {**os.environ, "PGPASSFILE": passfile.name, "PGCONNECT_TIMEOUT": "5"}
        result = subprocess.run(
            ["psql", "-X", "-w", "-h", "127.0.0.1", "-U", user, "-d", "postgres", "-Atc", "SELECT 1"],
            capture_output=True, text=True, check=False, env=environment, cwd="/",
        )  # fmt: skip
    return result.returncode == 0


def pg_current(database: str, user: str) -> tuple[bool, bool, bool]:
    row = run_psql_as_postgres(
        f"SELECT (SELECT count(*) FROM pg_roles WHERE rolname={pg_string(user)}),"
        f" (SELECT count(*) FROM pg_database WHERE datname={pg_string(database)}),"
        " (SELECT count(*) FROM pg_database d JOIN pg_roles r ON d.datdba = r.oid"
        f"  WHERE d.datname={pg_string(database)} AND r.rolname={pg_string(user)});\n"
    ).strip()
    role, db, owner = (int(x) == 1 for x in row.split("|"))
    return role, db, owner


def pg_state_of(args: argparse.Namespace) -> dict:
    role, database, owner = pg_current(args.database, args.user)
    password = read_secrets(args.secrets).get("pgres_password")
    works = bool(password) and role and pg_password_works(args.user, password)
    return {"user": role, "database": database, "owner": owner, "password": works}


def seed_status(venv: str, app: str, dbms: str) -> int:
    """Exit code of the app's ``python -m impots.db.seed <dbms> --check`` (127: no app or venv yet)."""
    python = os.path.join(venv, "bin", "python")
    if not os.access(python, os.X_OK) or not os.path.isdir(os.path.join(app, "impots")):
        return 127
    command = [python, "-m", "impots.db.seed", dbms, "--check"]
    return subprocess.run(command, cwd=app, capture_output=True, check=False).returncode


def db_state(args: argparse.Namespace) -> None:
    """Everything the database operations need, in one call (one round trip for the deploy)."""

    def account(dbms: str) -> dict:
        try:
            return mysql_state_of(args) if dbms == "mysql" else pg_state_of(args)
        except SystemExit:  # the DBMS is not reachable yet: everything is to be done
            return {}

    names = [name for name in args.dbms.split(",") if name]
    # The queries wait on other processes (clients, the app's seed check): run them side by side.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2 * len(names) or 1) as pool:
        accounts = {name: pool.submit(account, name) for name in names}
        seeds = {name: pool.submit(seed_status, args.venv, args.app, name) for name in names}
        state = {name: future.result() for name, future in accounts.items()}
        state["seed"] = {name: future.result() for name, future in seeds.items()}
    print(json.dumps(state))


def pg_ensure(args: argparse.Namespace) -> None:
    password = required_secret(args.secrets, "pgres_password")
    role, database, owner = pg_current(args.database, args.user)
    user = '"' + args.user + '"'
    statements = []
    if not role:
        statements.append(f"CREATE ROLE {user} LOGIN PASSWORD {pg_string(password)};")
    elif not pg_password_works(args.user, password):
        statements.append(f"ALTER ROLE {user} WITH LOGIN PASSWORD {pg_string(password)};")
    if not database:
        statements.append(
            f"CREATE DATABASE \"{args.database}\" OWNER {user} ENCODING 'UTF8' TEMPLATE template0;"
        )
    elif not owner:
        statements.append(f'ALTER DATABASE "{args.database}" OWNER TO {user};')
    if statements:
        run_psql_as_postgres("\n".join(statements) + "\n")
    print(f"postgresql: database {args.database} owned by {args.user} in place")


# --- Apache configuration transaction -------------------------------------------------------------


def apache_snapshot(args: argparse.Namespace) -> None:
    """Keep the configuration as it was before this run's first change (the last one that worked)."""
    if os.path.exists(args.snapshot):
        return
    os.makedirs(os.path.dirname(args.snapshot), mode=0o700, exist_ok=True)
    partial = args.snapshot + ".part"
    with tarfile.open(partial, "w") as tar:
        tar.add(args.config_root, arcname=os.path.basename(args.config_root))
    os.replace(partial, args.snapshot)


def apache_restore(args: argparse.Namespace) -> None:
    """Put back the snapshot; the rejected configuration is kept next to it for diagnosis."""
    if not os.path.exists(args.snapshot):
        fail(f"no snapshot {args.snapshot} to restore")
    rejected = os.path.join(os.path.dirname(args.snapshot), "apache-config-rejected")
    shutil.rmtree(rejected, ignore_errors=True)
    shutil.move(args.config_root, rejected)
    with tarfile.open(args.snapshot) as tar:
        # The snapshot is our own tar of the configuration: links and modes must come back as they were.
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(os.path.dirname(args.config_root), filter="tar")
        else:
            tar.extractall(os.path.dirname(args.config_root))
    os.unlink(args.snapshot)
    print(f"restored {args.config_root}; the rejected configuration is in {rejected}")


def apache_reload(args: argparse.Namespace) -> None:
    """Start or gracefully reload Apache and wait for it to say it serves the new configuration.

    A configuration can pass configtest and still kill Apache on reload (a Listen address it cannot
    bind): then the snapshot is restored and Apache started again on it, and the run fails.
    """
    log_start = os.path.getsize(args.error_log) if os.path.exists(args.error_log) else 0
    result = subprocess.run(shlex.split(args.command), capture_output=True, text=True, check=False)
    fatal = ("no listening sockets available", "AH00015", "AH00019", "AH00016", "Unable to open logs")
    news = ""
    deadline = time.monotonic() + args.timeout
    while result.returncode == 0 and time.monotonic() < deadline:
        news = read_from(args.error_log, log_start)
        if "AH00489" in news or "resuming normal operations" in news:
            print(f"{args.command}: Apache serves the new configuration")
            return
        if any(marker in news for marker in fatal):
            break
        time.sleep(0.1)
    print(f"impots: Apache did not come back after `{args.command}`:", file=sys.stderr)
    sys.stderr.write(result.stdout + result.stderr + news[-3000:])
    if os.path.exists(args.snapshot):
        apache_restore(args)
    # The dying parent must be gone first, or the init script sees it and does not start a new one.
    wait_until(lambda: not running(args.status), args.timeout)
    log_start = os.path.getsize(args.error_log) if os.path.exists(args.error_log) else 0
    subprocess.run(shlex.split(args.start), capture_output=True, text=True, check=False)
    back = wait_until(lambda: "AH00489" in read_from(args.error_log, log_start), args.timeout)
    outcome = "started again" if back else "could NOT be started"
    fail(f"the previous configuration was restored and Apache {outcome}")


def running(status_command: str) -> bool:
    return subprocess.run(shlex.split(status_command), capture_output=True, check=False).returncode == 0


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def read_from(path: str, offset: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            return log.read()
    except OSError:
        return ""


# --- smoke check -------------------------------------------------------------------------------------


def smoke(args: argparse.Namespace) -> None:
    """GET the site over HTTPS as a client would (certificate verified, redirects and cookies followed)."""
    with tempfile.TemporaryDirectory(prefix="impots-smoke-") as work:
        body, jar = os.path.join(work, "body"), os.path.join(work, "cookies")
        command = ["curl", "-sS", "-L", "--max-redirs", "10", "--resolve", f"{args.name}:443:{args.address}",
                   "-c", jar, "-b", jar, "-o", body, "-w", "%{http_code} %{url_effective}",
                   "--retry", "5", "--retry-connrefused", "--retry-delay", "1",
                   "--max-time", "30"]  # fmt: skip
        if args.cacert:
            command += ["--cacert", args.cacert]
        status, effective, error = "000", args.url, ""
        for _ in range(3):
            result = subprocess.run([*command, args.url], capture_output=True, text=True, check=False)
            status, _, effective = (result.stdout.strip() or "000 ").partition(" ")
            error = result.stderr.strip()
            page = open(body, encoding="utf-8", errors="replace").read() if os.path.exists(body) else ""
            if status == "200" and args.expect in page:
                print(f"smoke check {args.url}: 200, found {args.expect!r}")
                return
            time.sleep(1)
    problem = f"HTTP {status} at {effective}" if status != "000" else f"no answer ({error})"
    if status == "200":
        problem = f"200 at {effective} but the page lacks {args.expect!r}"
    print(f"smoke check {args.url} failed: {problem}", file=sys.stderr)
    try:
        with open(args.error_log, encoding="utf-8", errors="replace") as log:
            tail = log.readlines()[-20:]
        print(f"--- last lines of {args.error_log} ---", file=sys.stderr)
        sys.stderr.writelines(tail)
    except OSError as log_error:
        print(f"(no error log: {log_error})", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="impots-helper")
    commands = parser.add_subparsers(dest="command", required=True)

    command = commands.add_parser("secrets-status")
    command.add_argument("file")
    command.set_defaults(run=secrets_status)

    command = commands.add_parser("secrets-merge")
    command.add_argument("file")
    command.add_argument("--group", required=True)
    command.add_argument("--given", help="0600 JSON file of given values, deleted after reading")
    command.add_argument("--generate", default="", help="comma-separated keys to generate when absent")
    command.set_defaults(run=secrets_merge)

    for name, run in (("db-state", db_state), ("mysql-ensure", mysql_ensure), ("pg-ensure", pg_ensure)):
        command = commands.add_parser(name)
        command.add_argument("secrets")
        command.add_argument("database")
        command.add_argument("user")
        if name == "db-state":
            command.add_argument("--dbms", required=True, help="comma-separated: mysql,pgres")
            command.add_argument("--venv", required=True)
            command.add_argument("--app", required=True)
        command.set_defaults(run=run)

    for name, run in (("apache-snapshot", apache_snapshot), ("apache-restore", apache_restore)):
        command = commands.add_parser(name)
        command.add_argument("config_root")
        command.add_argument("snapshot")
        command.set_defaults(run=run)

    command = commands.add_parser("apache-reload")
    command.add_argument("config_root")
    command.add_argument("snapshot")
    command.add_argument("--command", required=True, help="start or graceful reload command")
    command.add_argument("--start", required=True, help="start command, used after a restore")
    command.add_argument("--status", required=True, help="exits 0 while Apache runs")
    command.add_argument("--error-log", required=True, help="Apache's main error log")
    command.add_argument("--timeout", type=float, default=20)
    command.set_defaults(run=apache_reload)

    command = commands.add_parser("smoke")
    for option in ("--name", "--url", "--address", "--expect", "--error-log"):
        command.add_argument(option, required=True)
    command.add_argument("--cacert")
    command.set_defaults(run=smoke)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
