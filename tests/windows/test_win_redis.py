"""Redis on Windows (issue 8 point 1): the app's password, loopback, a memory limit.

Laragon's Redis is managed: a password generated once in the secrets file, our configuration file in an
Administrators-only folder, a restart only when it changed. A Redis the deploy does not manage must ask
for the password the user gives (IMPOTS_REDIS_PASSWORD), checked with AUTH before any change. The
scripts are checked for their exact text and parsed with the PowerShell grammar (also from awkward
paths); the configuration text is read by a real redis-server here; the password is in no command line.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from ps_grammar import grammar_errors
from ps_lint import lint
from pyinfra.api import StringCommand
from pyinfra.api.util import get_kwargs_str
from test_win_cli import run_cli
from test_win_grammar import AWKWARD
from win_fakes import (
    LARAGON_REDIS,
    MEMURAI,
    MEMURAI_PASSWORD,
    apache_lounge_machine,
    dry_run,
    laragon_machine,
    redis_listener,
    redis_takes_password,
    search,
)
from win_optest import run_op

from provisioning.windows import redis
from provisioning.windows.deploy import WindowsDeployError
from provisioning.windows.powershell import decode_command, wrap_script

pytestmark = pytest.mark.usefixtures("clean_environment")

REDIS_OP = "Redis: the app's password, loopback, memory limit (Laragon)"
REDIS_STEPS = [
    "Folder for Redis (configuration, sessions snapshot)",
    "Redis folder: Administrators and SYSTEM only",
    REDIS_OP,
]
FOLDER = "C:/impots/state/redis"
SERVER = LARAGON_REDIS.replace("\\", "/")
CONFIG = {
    "config": f"{FOLDER}/redis.conf",
    "secrets": "C:/impots/instance/secrets.json",
    "template": redis.config_template(FOLDER, 64, "volatile-lru"),
    "maxmemory_mb": 64,
    "policy": "volatile-lru",
}


def scripts(commands) -> list[str]:
    return [c.get_raw_value() for c in commands if isinstance(c, StringCommand)]


def planned_by_name(planned) -> dict:
    return {name: commands for name, commands, _ in planned}


def plan_error(monkeypatch, windows, data) -> str:
    with pytest.raises(WindowsDeployError) as error:
        dry_run(monkeypatch, windows, data)
    # Stopped before any change: only facts were sent.
    assert all("ConvertTo-Json -InputObject" in script for script in windows.seen)
    return str(error.value)


# --- the managed Redis (Laragon) --------------------------------------------------------------------


def test_configuration_text():
    assert redis.config_template(FOLDER, 64, "volatile-lru") == (
        "# Managed by impots-provisioning (provisioning/windows/redis.py): do not edit.\n"
        "bind 127.0.0.1\n"
        "port 6379\n"
        "protected-mode yes\n"
        'requirepass "@REDIS_PASSWORD@"\n'
        "maxmemory 64mb\n"
        "maxmemory-policy volatile-lru\n"
        'dir "C:\\\\impots\\\\state\\\\redis"\n'
        'logfile "C:\\\\impots\\\\state\\\\redis\\\\redis.log"\n'
    )


def test_fresh_laragon_host_generates_the_password_writes_the_file_and_starts_redis(monkeypatch):
    windows = laragon_machine()  # Laragon's redis-server.exe found, nothing on 6379
    planned, client = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    steps = planned_by_name(planned)
    order = [name for name, _, _ in planned]
    # The password is generated on the host, in the app's secrets file, before the Redis steps read it.
    secrets = scripts(steps["Secrets file (ACL)"])[0]
    assert "$generate = @('secret_key', 'mysql_password', 'pgres_password', 'redis_password')\n" in secrets
    assert order.index("Secrets file (ACL)") < order.index(REDIS_STEPS[0])
    # The private folder: Administrators and SYSTEM only (the WMI-started Redis runs as the SSH
    # session's administrator), inheritance cut; the file and the RDB snapshot inherit it.
    assert scripts(steps["Redis folder: Administrators and SYSTEM only"]) == [
        "$p = 'C:\\impots\\state\\redis'\n$grants = @('*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F')\n"
        + "& { $ErrorActionPreference = 'Continue'; & icacls.exe $p /inheritance:r /grant:r @grants /Q }\n"
        + "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }"
    ]
    [script] = scripts(steps[REDIS_OP])
    assert script.startswith(
        "$config = 'C:\\impots\\state\\redis\\redis.conf'\n"
        "$secretsfile = 'C:\\impots\\instance\\secrets.json'\n"
        "$secretkey = 'redis_password'\n"
        "$template = '# Managed by impots-provisioning"
    )
    assert "$maxmemory = '67108864'\n$policy = 'volatile-lru'\n" in script
    assert f"$server = '{LARAGON_REDIS}'\n$laragonredis = 'C:\\laragon\\bin\\redis\\'\n" in script
    # Written from the secrets file on the host, then Laragon's Redis stopped and ours started with it.
    assert "$wantedconf = $template.Replace($placeholder, (Format-RedisString $password))" in script
    assert "[IO.File]::WriteAllText($config, $wantedconf," in script
    assert "$command = '\"' + $server + '\" \"' + $config + '\"'" in script
    assert "Invoke-CimMethod -ClassName Win32_Process -MethodName Create" in script
    assert (
        script.index("Stop-Process")
        < script.index("WriteAllText($config")
        < script.index("-MethodName Create")
    )
    # Nothing was sent on a stdin, and the state fact was asked (the file and the server as they are).
    assert windows.stdins == []
    assert redis.RedisConfigState().command(**CONFIG) in windows.seen
    assert len(client.command_lines) == len(windows.seen) + len(windows.lock_seen)


def run_secured(state):
    facts = {"redis.RedisConfigState": {get_kwargs_str(CONFIG): state}}
    return run_op(redis.redis_secured, facts, server=SERVER, **CONFIG)


def test_second_run_changes_nothing():
    commands, noop = run_secured({"password": True, "config": True, "server": "ours"})
    assert commands == []
    assert noop == "Redis already reads C:/impots/state/redis/redis.conf and takes the app's password"


@pytest.mark.parametrize(
    "state",
    [
        {"password": True, "config": False, "server": "ours"},  # the file edited by hand: repaired
        {"password": True, "config": True, "server": "open"},  # Laragon's tray started it without our file
        {"password": True, "config": True, "server": "stale"},  # our file, but other memory settings
        {"password": True, "config": True, "server": "down"},  # stopped
        None,  # nothing yet (a dry run on a bare host)
    ],
)
def test_drift_is_repaired_and_redis_restarted(state):
    [script] = run_secured(state)[0]
    # Always the whole sequence: stop Laragon's, write the file if it differs, start ours, wait until
    # it takes the password with the wanted memory settings.
    assert "if ($currentconf -cne $wantedconf) {" in script
    # Our own Redis is saved before it stops (SHUTDOWN SAVE: the sessions survive), Laragon's killed.
    assert script.index("@('SHUTDOWN', 'SAVE')") < script.index("Stop-Process -Id $process.ProcessId")
    assert "Stop-Process -Id $process.ProcessId -Force" in script
    assert "Win32_Process -MethodName Create" in script
    assert "Get-RedisState $address ([int]$port) $password $maxmemory $policy) -ne 'ours'" in script


def test_a_second_laragon_run_asks_only_facts_and_changes_nothing(monkeypatch):
    """The whole converged Laragon run (test_win_dry_run) with a look at the Redis steps."""
    from test_win_dry_run import converge

    windows = laragon_machine()
    first, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    converge(windows, first)
    second, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    redis_steps = [(name, change) for name, _, change in second if "Redis" in name]
    assert redis_steps == [(name, False) for name in REDIS_STEPS]


def test_laragon_with_another_redis_on_the_port_is_not_managed(monkeypatch):
    """Memurai (a service) on 6379 of a Laragon host: not stopped by the deploy, its password is needed."""
    windows = laragon_machine()
    redis_listener(windows, "auth", MEMURAI)
    monkeypatch.delenv("IMPOTS_REDIS_PASSWORD")
    assert plan_error(monkeypatch, windows, {"impots_windows_layout": "laragon"}) == (
        f"@winssh/lab-pc: Redis on 127.0.0.1:6379 is {MEMURAI} (pid 7300), which asks for a password: "
        "give it in IMPOTS_REDIS_PASSWORD"
    )


def test_laragon_s_own_redis_already_running_is_managed(monkeypatch):
    windows = laragon_machine()
    redis_listener(windows, "open", "C:\\laragon\\bin\\redis\\redis-x64-3.2.100\\redis-server.exe")
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert REDIS_OP in planned_by_name(planned)


def test_laragon_without_redis_server_and_nothing_on_the_port(monkeypatch):
    windows = laragon_machine()
    search(windows, "redis-server.exe", ["C:/laragon/bin/redis/*/redis-server.exe"], {})
    assert plan_error(monkeypatch, windows, {"impots_windows_layout": "laragon"}) == (
        "@winssh/lab-pc: impots_with_redissession is on but nothing answers on 127.0.0.1:6379 and no "
        "redis-server.exe was found in C:/laragon/bin/redis/*/redis-server.exe: install and start Redis "
        "(or a compatible server such as Memurai) with a password (requirepass) and give it in "
        "IMPOTS_REDIS_PASSWORD, or set impots_with_redissession = False (sessions in signed cookies, no "
        "login throttling)"
    )


# --- a Redis the deploy does not manage (Apache Lounge: Memurai as a service) ------------------------


def test_unmanaged_redis_without_a_given_password_stops_before_any_change(monkeypatch):
    windows = apache_lounge_machine()  # Memurai asks for a password
    monkeypatch.delenv("IMPOTS_REDIS_PASSWORD")
    message = plan_error(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    assert message == (
        f"@winssh/lab-pc: Redis on 127.0.0.1:6379 is {MEMURAI} (pid 7300), which asks for a password: "
        "give it in IMPOTS_REDIS_PASSWORD"
    )
    assert windows.stdins == []


def test_unmanaged_redis_without_any_password_is_refused(monkeypatch):
    windows = apache_lounge_machine()
    redis_listener(windows, "open", MEMURAI)  # requirepass not set: every local user reads the sessions
    message = plan_error(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    assert message == (
        f"@winssh/lab-pc: Redis on 127.0.0.1:6379 is {MEMURAI} (pid 7300), which asks no password: any local "
        "user could read every session. The deploy cannot set its password: set requirepass in its "
        "configuration, restart it and give that password in IMPOTS_REDIS_PASSWORD, or set "
        "impots_with_redissession = False (sessions in signed cookies, no login throttling)"
    )


def test_unmanaged_redis_refusing_the_given_password(monkeypatch):
    windows = apache_lounge_machine()
    redis_takes_password(windows, "other")
    message = plan_error(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    assert message == (
        f"@winssh/lab-pc: Redis on 127.0.0.1:6379 ({MEMURAI} (pid 7300)) refuses the password of "
        "IMPOTS_REDIS_PASSWORD (answer: other): give the one of its requirepass"
    )


def test_unmanaged_redis_down(monkeypatch):
    windows = apache_lounge_machine()
    redis_listener(windows, "down")
    message = plan_error(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    assert message.startswith(
        "@winssh/lab-pc: impots_with_redissession is on but nothing answers on 127.0.0.1:6379: install and "
        "start Redis (or a compatible server such as Memurai) with a password (requirepass)"
    )
    # Sessions off: Redis is not asked about at all.
    windows.seen.clear()
    planned, _ = dry_run(
        monkeypatch, windows, {"impots_windows_layout": "apache-lounge", "impots_with_redissession": False}
    )
    assert not any("Get-RedisState" in script for script in windows.seen)
    assert not any("Redis" in name for name, _, _ in planned)


def test_bad_given_password_is_refused_before_any_fact_on_redis(monkeypatch):
    windows = apache_lounge_machine()
    monkeypatch.setenv("IMPOTS_REDIS_PASSWORD", "two\nlines")
    message = plan_error(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    assert message == "@winssh/lab-pc: IMPOTS_REDIS_PASSWORD: must not contain a line break or NUL"
    assert "two" not in message.split(":", 2)[2]


def test_given_password_is_checked_on_stdin_and_kept_in_the_secrets_file(monkeypatch):
    windows = apache_lounge_machine()
    monkeypatch.setenv("IMPOTS_PGRES_ADMIN_PASSWORD", "Postgres-Admin-Secret-7")
    planned, client = dry_run(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    # AUTH was tried by a fact whose script came without the password, the password on its stdin.
    [(script, stdin)] = windows.stdins
    assert script == redis.RedisTakesPassword().command(endpoint="127.0.0.1:6379")
    assert base64.b64decode(stdin.strip()).decode("utf-8") == MEMURAI_PASSWORD
    # Not on any command line (decoded or not), nor in any script sent or planned.
    assert not any(MEMURAI_PASSWORD in line for line in client.command_lines)
    decoded = [decode_command(line.rsplit(" ", 1)[1]) for line in client.command_lines]
    every_script = decoded + [s for _, commands, _ in planned for s in scripts(commands)]
    assert not any(MEMURAI_PASSWORD in s for s in every_script)
    # It goes to the secrets file as a given secret (SFTP upload), and nothing of Redis is changed.
    steps = planned_by_name(planned)
    upload = steps["Secrets file (ACL)"][0]
    assert upload.dest == "C:/impots/instance/secrets.json.impots-new"
    assert b"redis_password" in upload.src.getvalue()
    assert not any("Redis" in name for name in steps)


# --- --dry: the real command line -----------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["laragon", "apache-lounge"])
def test_cli_dry_run_plans_redis_and_changes_nothing(tmp_path, layout):
    code, output, sent = run_cli(tmp_path, layout, layout, "--dry")
    assert code == 0, output
    table = output[output.index("Detected changes") :]
    assert (f"impots on Windows | {REDIS_OP}" in table) == (layout == "laragon")
    # Only facts: nothing stopped, written or started; no password anywhere.
    assert not any("Stop-Process" in s or "-MethodName Create" in s for s in sent)
    assert any("Get-RedisState" in s for s in sent)
    assert MEMURAI_PASSWORD not in output and not any(MEMURAI_PASSWORD in s for s in sent)


# --- every new script parses, also from awkward paths ---------------------------------------------------


@pytest.mark.parametrize("path", AWKWARD)
def test_every_redis_script_parses_with_awkward_paths(path):
    query = {
        "config": f"{path}/state/redis/redis.conf",
        "secrets": f"{path}/instance/secrets.json",
        "template": redis.config_template(f"{path}/state/redis", 64, "volatile-lru"),
        "maxmemory_mb": 64,
        "policy": "volatile-lru",
    }
    commands, _ = run_op(
        redis.redis_secured,
        {"redis.RedisConfigState": {get_kwargs_str(query): None}},
        server=f"{path}/bin/redis/redis-x64-5.0.14.1/redis-server.exe",
        **query,
    )
    built = [
        redis.RedisListener().command(endpoint="127.0.0.1:6379"),
        redis.RedisTakesPassword().command(endpoint="127.0.0.1:6379"),
        redis.RedisConfigState().command(**query),
        *commands,
    ]
    assert len(built) == 4
    for script in built:
        assert lint(script) == [], script
        assert grammar_errors(wrap_script(script)) == [], script


# --- the configuration text, read by a real redis-server ------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ask(port: int, *words: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        for line in words:
            connection.sendall(line.encode("utf-8") + b"\r\n")
        time.sleep(0.2)
        return connection.recv(65536)


def test_the_configuration_is_what_redis_reads(tmp_path: Path):
    """Our text, with the password quoted as the host script quotes it (backslash and double quote
    escaped), started by this machine's redis-server: it asks for the password, takes it, and runs with
    the memory limit, the policy, the folder and loopback only."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server not found: apt-get install redis-server", pytrace=False)
    folder = tmp_path / 'dé"j\\à'
    folder.mkdir()
    password = 'p"a\\ss w’é$`&'
    template = redis.config_template(str(folder), 64, "volatile-lru")
    # The Windows paths become this machine's: our folder as it is, a free port.
    port = free_port()
    text = template.replace(redis.PLACEHOLDER, redis._redis_string(password))
    text = text.replace("port 6379", f"port {port}")
    text = text.replace(redis._redis_string(str(folder).replace("/", "\\")), redis._redis_string(str(folder)))
    text = text.replace(
        redis._redis_string(f"{folder}/redis.log".replace("/", "\\")),
        redis._redis_string(f"{folder}/redis.log"),
    )
    config = folder / "redis.conf"
    config.write_text(text, encoding="utf-8")
    server = subprocess.Popen(
        ["redis-server", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = ask(port, "PING")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    log = (folder / "redis.log").read_text() if (folder / "redis.log").exists() else ""
                    pytest.fail(f"redis-server did not start with our file:\n{text}\n{log}")
                time.sleep(0.1)
        assert answer.startswith(b"-NOAUTH")
        auth = f'AUTH "{password.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        settings = ask(port, auth, "CONFIG GET maxmemory", "CONFIG GET maxmemory-policy", "CONFIG GET dir")
        assert settings.startswith(b"+OK\r\n")
        assert b"maxmemory\r\n$8\r\n67108864\r\n" in settings
        assert b"maxmemory-policy\r\n$12\r\nvolatile-lru\r\n" in settings
        assert str(folder).encode("utf-8") in settings
        assert ask(port, 'AUTH "wrong"').startswith((b"-WRONGPASS", b"-ERR"))
        bind = ask(port, auth, "CONFIG GET bind", "CONFIG GET protected-mode")
        assert b"127.0.0.1" in bind and b"yes" in bind
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_unmanaged_redis_still_loading(monkeypatch):
    windows = apache_lounge_machine()
    redis_listener(windows, "loading", MEMURAI)
    assert plan_error(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"}) == (
        f"@winssh/lab-pc: Redis on 127.0.0.1:6379 ({MEMURAI} (pid 7300)) is still loading its data: run the "
        "deploy again in a moment"
    )
