"""A fake Windows host behind the real ``@winssh`` connector: its SSH transport (paramiko client) is
replaced by one that decodes each ``powershell -EncodedCommand`` command line and answers canned
PowerShell output, so pyinfra's whole fact/operation machinery runs unchanged on Linux."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.context import ctx_host, ctx_state

from provisioning.connectors.winssh import WinSSHConnector
from provisioning.settings import load_settings
from provisioning.windows import databases, facts, redis
from provisioning.windows.deploy import deploy_windows
from provisioning.windows.powershell import (
    STDIN_LOADER,
    WRAPPER_HEAD,
    WRAPPER_TAIL,
    decode_command,
    ps_assign,
)

COMMAND_LINE = re.compile(r"^powershell -NoProfile -NonInteractive -EncodedCommand ([A-Za-z0-9+/=]+)$")


def unwrap(script: str) -> str:
    """The script as the operation/fact wrote it (the connector's wrapper removed)."""
    assert script.startswith(WRAPPER_HEAD) and script.endswith(WRAPPER_TAIL), script[:200]
    return script[len(WRAPPER_HEAD) : -len(WRAPPER_TAIL)]


@dataclass
class Answer:
    stdout: str = ""
    stderr: str = ""
    status: int = 0


@dataclass
class FakeWindows:
    """Canned answers keyed by the exact (unwrapped) script; records every script it is sent."""

    answers: dict[str, Answer] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    unknown_facts: list[str] = field(default_factory=list)
    # The deploy lock (provisioning/windows/lock.py) is simulated, not canned: its scripts go to
    # lock_seen (not seen, so the other tests count only their own scripts); lock_record is the record.
    lock_seen: list[str] = field(default_factory=list)
    lock_record: str = ""
    # (script, what came on its stdin) for every script given a stdin of its own (not the long-script
    # loader's): e.g. the password of a Redis the deploy does not manage.
    stdins: list[tuple[str, str]] = field(default_factory=list)

    def fact(self, fact_cls, value, **kwargs) -> None:
        """Answer ``fact_cls(**kwargs)`` with ``value`` as ConvertTo-Json -Compress prints it."""
        script = fact_cls().command(**kwargs)
        self.answers[script] = Answer(json.dumps(value, separators=(",", ":")) + "\r\n")

    def answer(self, script: str) -> Answer:
        if script.startswith("$lock = '"):
            self.lock_seen.append(script)
            return self.lock_answer(script)
        self.seen.append(script)
        if script.startswith("[Console]::Error.WriteLine('impots: ") and script.endswith("\nexit 75"):
            # What an operation yields to fail this host only (the lock's refusal): it fails as sent.
            message = script[len("[Console]::Error.WriteLine('") : script.rindex("')")].replace("''", "'")
            return Answer("", message + "\r\n", 75)
        if script in self.answers:
            return self.answers[script]
        if "ConvertTo-Json -InputObject" in script:
            # A fact nobody canned: what a bare machine says (no such file/folder).
            self.unknown_facts.append(script)
            return Answer("null\r\n")
        return Answer()

    def lock_answer(self, script: str) -> Answer:
        """What the lock scripts print, from ``lock_record`` (a held lock stays held: no lease here)."""
        if "New-Item -ItemType Directory -Path $lock" in script:
            me = _assigned(script, "me")
            if self.lock_record and self.lock_record.split(" ")[0] != me:
                return Answer(f"busy {self.lock_record}\r\n")
            self.lock_record = f"{me} 4102444800 1700000000 {_assigned(script, 'holder')}"
            return Answer("acquired\r\n")
        if "Write-Output 'released'" in script:
            if self.lock_record.split(" ")[0] == _assigned(script, "me"):
                self.lock_record = ""
            return Answer("released\r\n")
        return Answer(self.lock_record + "\r\n")

    def client(self) -> FakeClient:
        return FakeClient(self)


class FakeStdin:
    def __init__(self):
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.closed = True


class FakeChannel:
    def __init__(self, stream: FakeStream):
        self.stream = stream

    def recv_exit_status(self) -> int:
        return self.stream.result().status


class FakeStream:
    """stdout or stderr of one command; the answer is computed once stdin is closed."""

    def __init__(self, command: FakeCommand, name: str):
        self.command = command
        self.name = name
        self.channel = FakeChannel(self)

    def result(self) -> Answer:
        return self.command.result()

    def __iter__(self):
        text = getattr(self.result(), self.name)
        return iter(text.splitlines(keepends=True))


class FakeCommand:
    def __init__(self, windows: FakeWindows, command_line: str):
        self.windows = windows
        self.command_line = command_line
        self.stdin = FakeStdin()
        self._result: Answer | None = None

    def result(self) -> Answer:
        if self._result is None:
            match = COMMAND_LINE.match(self.command_line)
            assert match, f"not a PowerShell command line: {self.command_line[:120]!r}"
            script = decode_command(match.group(1))
            if script == STDIN_LOADER:
                script = base64.b64decode(self.stdin.data.strip()).decode("utf-8")
            elif self.stdin.data:
                self.windows.stdins.append((unwrap(script), self.stdin.data.decode("utf-8")))
            self._result = self.windows.answer(unwrap(script))
        return self._result


class FakeClient:
    """Stands in for paramiko's SSHClient inside the connector."""

    def __init__(self, windows: FakeWindows):
        self.windows = windows
        self.command_lines: list[str] = []

    def exec_command(self, command_line: str, get_pty: bool = False):
        self.command_lines.append(command_line)
        command = FakeCommand(self.windows, command_line)
        return command.stdin, FakeStream(command, "stdout"), FakeStream(command, "stderr")

    def get_transport(self):
        raise AssertionError("no file transfer in a dry run")

    def close(self) -> None:
        pass


# --- canned machines --------------------------------------------------------------------------------

ADMIN_SID = "S-1-5-21-1111-2222-3333-1001"
# Laragon's desktop user: a standard account, not the administrator the SSH session logs in as.
DESKTOP_SID = "S-1-5-21-1111-2222-3333-1002"
DESKTOP_USER = "LAB-PC\\eleve"
SYSTEM_TAR = "C:\\Windows\\system32\\tar.exe"
PYTHON = {
    "executable": "C:\\Program Files\\Python311\\python.exe",
    "version": "3.11.9",
    "bits": 64,
    "base_prefix": "C:\\Program Files\\Python311",
}
MSVC = {
    "vswhere": True,
    "installations": ["C:\\Program Files (x86)\\Microsoft Visual Studio\\2022\\BuildTools"],
    "sdks": ["10.0.22621.0"],
}
LARAGON_APACHE = "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17"
LARAGON_HTTPD_CONF = (
    'Define ROOT "C:/laragon/www"\r\nServerRoot "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17"\r\n'
    "Listen 80\r\nLoadModule ssl_module modules/mod_ssl.so\r\n"
    'IncludeOptional "C:/laragon/etc/apache2/sites-enabled/*.conf"\r\n'
    'Include "C:/laragon/etc/apache2/httpd-ssl.conf"\r\n'
)
LOUNGE_HTTPD_CONF = (
    'Define SRVROOT "c:/Apache24"\r\nServerRoot "${SRVROOT}"\r\nListen 80\r\n'
    "#LoadModule ssl_module modules/mod_ssl.so\r\n#Include conf/extra/httpd-ssl.conf\r\n"
)
HOSTS = (
    "# Copyright (c) 1993-2009 Microsoft Corp.\r\n#\r\n"
    "# localhost name resolution is handled within DNS itself.\r\n"
)


def apache(root: str, bits: int = 64, missing: tuple[str, ...] = ()) -> dict:
    """ApacheInstallation's JSON; ``missing``: build files absent (Windows paths, as the script prints)."""
    return {
        "root": root.replace("/", "\\"),
        "version": "2.4.62",
        "architecture": bits,
        "machine": 0x8664 if bits == 64 else 0x14C,
        "missing": [m.replace("/", "\\") for m in missing],
    }


LARAGON_MYSQL = "C:\\laragon\\bin\\mysql\\mysql-8.0.30-winx64\\bin\\mysql.exe"
LARAGON_REDIS = "C:\\laragon\\bin\\redis\\redis-x64-5.0.14.1\\redis-server.exe"
PG_PSQL = "C:\\Program Files\\PostgreSQL\\16\\bin\\psql.exe"
MARIADB_MYSQL = "C:\\Program Files\\MariaDB 11.4\\bin\\mysql.exe"
ALL_ENDPOINTS = ["127.0.0.1:3306", "127.0.0.1:5432"]  # the databases' (Redis has facts of its own)
REDIS_ENDPOINT = "127.0.0.1:6379"
MEMURAI = "C:\\Program Files\\Memurai\\memurai.exe"
# What the Apache Lounge machine's Memurai asks (requirepass); conftest gives it as IMPOTS_REDIS_PASSWORD.
MEMURAI_PASSWORD = "Memurai-Given-Pass’é$`&"


def search(windows: FakeWindows, program: str, patterns: list[str], found: dict, on_path=None) -> None:
    """Answer ProgramSearch: ``found`` maps a pattern to the files it matches (Windows paths)."""
    windows.fact(
        facts.ProgramSearch,
        {
            "on_path": on_path,
            "found": [{"pattern": p.replace("/", "\\"), "files": found.get(p, [])} for p in patterns],
        },
        program=program,
        patterns=patterns,
    )


def redis_listener(windows: FakeWindows, answer: str, path: str | None = None, pid: int = 7300) -> None:
    """Answer RedisListener: what answers on 127.0.0.1:6379 (``answer`` of Get-RedisState)."""
    value = {"answer": answer, "pid": pid if path else None, "path": path}
    windows.fact(redis.RedisListener, value, endpoint=REDIS_ENDPOINT)


def redis_takes_password(windows: FakeWindows, answer: str) -> None:
    """Answer RedisTakesPassword (whatever came on stdin: the tests check stdin themselves)."""
    windows.fact(redis.RedisTakesPassword, {"answer": answer}, endpoint=REDIS_ENDPOINT)


def database_servers(windows: FakeWindows, layout: str, found: dict, listening: dict) -> None:
    """The database facts of a machine: ``found`` maps a search pattern to the files it matches
    (clients, Laragon's redis-server.exe), ``listening`` an endpoint to whether it answers; Redis on
    6379: Laragon's own (a bare machine: not started), else Memurai asking MEMURAI_PASSWORD."""
    from provisioning.windows.platforms import apache_lounge_platform, laragon_platform

    if layout == "laragon":
        platform = laragon_platform("C:/laragon", LARAGON_APACHE)
    else:
        platform = apache_lounge_platform(None)
    for dbms, program in databases.CLIENTS.items():
        search(windows, program, databases.client_patterns(dbms, platform, "C:/laragon"), found)
    patterns = redis.laragon_patterns(platform, "C:/laragon")
    if patterns:
        search(windows, redis.REDIS_SERVER, patterns, found)
    listening = dict(listening)
    if listening.pop(REDIS_ENDPOINT, False):
        redis_listener(windows, "auth", LARAGON_REDIS if layout == "laragon" else MEMURAI)
        redis_takes_password(windows, "ours")
    else:
        redis_listener(windows, "down")
    windows.fact(facts.TcpPortsOpen, listening, endpoints=ALL_ENDPOINTS)


def admin_logins(windows: FakeWindows, logins: dict, error: str = "") -> None:
    """Answer DatabaseAdminLogin (administrator without a password) for ``{dbms: (client, user)}``."""
    for dbms, (client, user) in logins.items():
        windows.fact(
            databases.DatabaseAdminLogin,
            {"code": 1 if error else 0, "stderr": error},
            dbms=dbms,
            client=client.replace("\\", "/"),
            admin_user=user,
        )


def laragon_machine(python: dict = PYTHON, apache_bits: int = 64, msvc: dict = MSVC) -> FakeWindows:
    """A bare Laragon machine: Laragon running its Apache as a process and its MySQL (Start All), the
    PostgreSQL service of a separate install (as in the course), Redis not started; nothing of ours yet."""
    windows = FakeWindows()
    httpd = f"{LARAGON_APACHE}/bin/httpd.exe"
    windows.fact(
        facts.LaragonApache,
        {
            "versions": ["httpd-2.4.62-240904-win64-VS17", "httpd-2.4.54-win64-VS16"],
            "selected": "httpd-2.4.62-240904-win64-VS17",
            "running": [httpd.replace("/", "\\")],
        },
        laragon_root="C:/laragon",
    )
    windows.fact(facts.ApacheInstallation, apache(LARAGON_APACHE, apache_bits), root=LARAGON_APACHE)
    windows.fact(facts.PythonInstallations, [python] if python else [], path=None)
    windows.fact(facts.MsvcBuildTools, msvc)
    windows.fact(facts.FileText, LARAGON_HTTPD_CONF, path=f"{LARAGON_APACHE}/conf/httpd.conf")
    windows.fact(facts.FileText, HOSTS, path="C:/Windows/System32/drivers/etc/hosts")
    # Laragon (and so its Apache) runs as the desktop user, in the desktop session.
    windows.fact(
        facts.HttpdRuntime,
        {
            "services": [],
            "processes": [{"pid": 5120, "owner_sid": DESKTOP_SID, "owner": DESKTOP_USER, "session": 1}],
        },
        httpd=httpd,
    )
    windows.fact(
        facts.ProcessOwners,
        [{"pid": 4100, "owner_sid": DESKTOP_SID, "owner": DESKTOP_USER, "session": 1,
          "path": "C:\\laragon\\laragon.exe"}],
        program="laragon.exe",
    )  # fmt: skip
    windows.fact(facts.CurrentUser, {"name": "LAB-PC\\prof", "sid": ADMIN_SID, "admin": True})
    windows.fact(facts.Directory, False, path="C:/impots")
    windows.fact(facts.SystemProgram, SYSTEM_TAR, program="tar.exe")
    database_servers(
        windows,
        "laragon",
        found={
            "C:/laragon/bin/mysql/*/bin/mysql.exe": [LARAGON_MYSQL],
            "C:/Program Files/PostgreSQL/*/bin/psql.exe": [PG_PSQL],
            "C:/laragon/bin/redis/*/redis-server.exe": [LARAGON_REDIS],
        },
        listening={"127.0.0.1:3306": True, "127.0.0.1:5432": True, "127.0.0.1:6379": False},
    )
    admin_logins(windows, {"mysql": (LARAGON_MYSQL, "root"), "pgres": (PG_PSQL, "postgres")})
    checklist_answers(windows, httpd)
    return windows


def apache_lounge_machine() -> FakeWindows:
    """A bare Apache Lounge machine: C:/Apache24 installed as the Apache2.4 service (LocalSystem)."""
    windows = FakeWindows()
    windows.fact(facts.ApacheInstallation, apache("C:/Apache24"), root="C:/Apache24")
    windows.fact(facts.PythonInstallations, [PYTHON], path=None)
    windows.fact(facts.MsvcBuildTools, MSVC)
    windows.fact(facts.FileText, LOUNGE_HTTPD_CONF, path="C:/Apache24/conf/httpd.conf")
    windows.fact(facts.FileText, HOSTS, path="C:/Windows/System32/drivers/etc/hosts")
    windows.fact(
        facts.HttpdRuntime,
        {"services": [{"name": "Apache2.4", "state": "Running", "account_sid": "S-1-5-18"}], "processes": []},
        httpd="C:/Apache24/bin/httpd.exe",
    )
    windows.fact(facts.CurrentUser, {"name": "LAB-PC\\prof", "sid": ADMIN_SID, "admin": True})
    windows.fact(facts.SystemProgram, SYSTEM_TAR, program="tar.exe")
    # MariaDB and PostgreSQL installed as services, Redis (e.g. Memurai) running.
    database_servers(
        windows,
        "apache-lounge",
        found={
            "C:/Program Files/MariaDB */bin/mysql.exe": [MARIADB_MYSQL],
            "C:/Program Files/PostgreSQL/*/bin/psql.exe": [PG_PSQL],
        },
        listening={"127.0.0.1:3306": True, "127.0.0.1:5432": True, "127.0.0.1:6379": True},
    )
    admin_logins(windows, {"mysql": (MARIADB_MYSQL, "root"), "pgres": (PG_PSQL, "postgres")})
    return windows


# --- what the first-real-machine checklist reads (windows_checklist.py) ----------------------------------

CLIXML_HTTPD_ERROR = (
    "#< CLIXML\r\n"
    '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<S S="Error">httpd.exe : AH00526: Syntax error: could not open configuration file_x000D__x000A_</S>'
    "</Objs>\r\n"
)


def checklist_answers(windows: FakeWindows, httpd: str) -> None:
    """What a converged machine would answer to the checklist (windows_checklist.py)."""
    from provisioning.windows import checklist

    windows.fact(
        checklist.SystemSummary, {"os": "Microsoft Windows 11 Pro 10.0.22631", "powershell": "5.1.22621"}
    )
    windows.fact(
        checklist.ModWsgiBuilt,
        {"stamp": "mod-wsgi==6.1.1 apache=C:/x", "dist": ["mod_wsgi-6.1.1.dist-info"],
         "modules": ["mod_wsgi.cp311-win_amd64.pyd"]},
        venv="C:/impots/venv",
    )  # fmt: skip
    windows.fact(
        checklist.NonAsciiRoundTrip,
        {"folder": checklist.NON_ASCII_FOLDER, "files": [checklist.NON_ASCII_FILE],
         "content": checklist.NON_ASCII_FOLDER},
        folder=checklist.NON_ASCII_FOLDER,
        file=checklist.NON_ASCII_FILE,
    )  # fmt: skip
    urls = [
        "https://flask-impots-withmysql/impots/",
        "https://flask-impots-withpgres/impots/",
        "https://date-time-server/",
    ]
    answers = dict.fromkeys(urls, "200")
    answers[urls[2]] = "The remote certificate is invalid according to the validation procedure."
    windows.fact(checklist.SitesAnswer, answers, urls=urls)
    failing = (
        ps_assign(httpd=httpd.replace("/", "\\")) + "& $httpd -t -f 'C:\\impots-checklist-no-such.conf'\n"
    )
    windows.answers[failing.strip("\n")] = Answer(stderr=CLIXML_HTTPD_ERROR, status=1)


# --- a dry run through the connector ----------------------------------------------------------------


def dry_run(monkeypatch, windows: FakeWindows, data: dict):
    """Plan deploy_windows for one @winssh host; returns (ops as (name, commands, will change), client)."""
    clients = []

    def fake_connect(self):
        self.client = windows.client()
        clients.append(self.client)

    monkeypatch.setattr(WinSSHConnector, "_connect", fake_connect)
    inventory = Inventory(([("@winssh/lab-pc", data)], {}))
    state = State(inventory, Config())
    connect_all(state)
    host = inventory.get_host("@winssh/lab-pc")
    assert host.connector_cls is WinSSHConnector
    settings = load_settings(host)
    assert settings.os == "windows"
    add_deploy(state, deploy_windows, settings)
    planned = []
    for op_hash in state.get_op_order():
        name = list(state.get_op_meta(op_hash).names)[0].removeprefix("impots on Windows | ")
        op_data = state.get_op_data_for_host(host, op_hash)
        with ctx_state.use(state), ctx_host.use(host):
            commands = list(op_data.command_generator())
        planned.append((name, commands, op_data.operation_meta._maybe_is_change))
    disconnect_all(state)
    return planned, clients[0]


# What AccountState answers once the accounts are right: MariaDB's app account sees SELECT only, the
# seeding one CREATE among its rights; on PostgreSQL both roles, the database owned by the seeding role,
# the app's role owning, writing and creating nothing, the seeding role's default privileges set.
ACCOUNTS_IN_PLACE = {
    "mysql": {"app": {"code": 0, "stdout": "1\t0\t0"}, "seeder": {"code": 0, "stdout": "1\t17\t1"}},
    "pgres": {"app": {"code": 0, "stdout": "1|1|1|1\n0|0|0|0|1"}, "seeder": {"code": 0, "stdout": "1|1|1|1"}},
}


def _assigned(script: str, variable: str) -> str:
    for line in script.splitlines():
        if line.startswith(f"${variable} = '"):
            return line[len(variable) + 5 : -1].replace("''", "'")
    raise AssertionError(variable)


def accounts_made(windows: FakeWindows, script: str, database: str = "dbimpots-2019") -> None:
    """After an accounts script (``mysql_account``/``postgresql_account``): both accounts in place."""
    dbms = _assigned(script, "secretkey").split("_")[0]
    windows.fact(
        databases.AccountState,
        ACCOUNTS_IN_PLACE[dbms],
        dbms=dbms,
        client=_assigned(script, "client"),
        database=database,
        user=_assigned(script, "seeder").removesuffix("_seed"),
        secrets=_assigned(script, "secretsfile"),
        seeder_secrets=_assigned(script, "seedersecrets"),
    )
