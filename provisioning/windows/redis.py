"""Redis for the app's sessions on a Windows host: a password, loopback only, a memory limit.

The Linux deploy does the same with the target helper (``provisioning/remote/redis_config.py``). On
Windows there are two cases, decided from facts before any change (``resolve_redis``):

- **managed**: Laragon's ``bin/redis/*/redis-server.exe`` (the Windows port of Redis 5.0: no ACL users,
  so ``requirepass`` only) is what answers on 127.0.0.1:6379, or nothing does. The deploy generates
  ``redis_password`` once in the app's secrets file (``host_plan(..., redis_auth=True)``), writes
  ``<state>/redis/redis.conf`` (Administrators and SYSTEM only: the process the deploy starts runs as
  the SSH session's administrator) and starts ``redis-server.exe <that file>`` through WMI, restarting
  it only when the file changed or the running server does not take the password with the wanted
  memory settings. The file and the RDB snapshot (the sessions) stay in that private folder. The
  password is put into the file by the script on the host, from the secrets file: never in a script.
- **not managed** (Apache Lounge, or another program such as Memurai on the port): the deploy cannot
  set its password. It must already ask for one, and the user gives it in ``IMPOTS_REDIS_PASSWORD``
  on the controller; it is checked with ``AUTH`` before any change (sent on the script's stdin, never
  on its command line) and then travels to the secrets file over SFTP like every given secret.
  Without it the run stops, naming the problem.

Laragon's tray can also start Redis (its menu), with its own command line: that Redis reads no file of
ours and has no password; the app then fails to log in to it, and the next deploy run sees a Redis
that asks no password and restarts it with our file. (Laragon's source is not public: how its tray
starts ``redis-server.exe`` could not be read; see docs/windows.md.)
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyinfra import host
from pyinfra.api import operation

from provisioning.linux.operations.redis import EVICTION_POLICY
from provisioning.plan import HostPlan, redis_in_use
from provisioning.settings import SERVICES, Settings
from provisioning.windows import operations
from provisioning.windows.databases import choose_program
from provisioning.windows.facts import PowerShellJsonFact, ProgramSearch
from provisioning.windows.operations import ADMINISTRATORS_SID, SYSTEM_SID
from provisioning.windows.platforms import LARAGON, WindowsPlatform
from provisioning.windows.powershell import fwd_path, json_fact_script, ps_assign, win_path

SECRET_KEY = "redis_password"  # the key the app reads from its secrets file
PASSWORD_VARIABLE = "IMPOTS_REDIS_PASSWORD"  # a Redis the deploy does not manage: its password
REDIS_SERVER = "redis-server.exe"
ENDPOINT = "{}:{}".format(*SERVICES["redis"])
PLACEHOLDER = '"@REDIS_PASSWORD@"'  # replaced on the host by the quoted password


class RedisDataError(ValueError):
    """A bad ``IMPOTS_REDIS_PASSWORD`` (the value is never shown)."""


@dataclass(frozen=True)
class RedisTarget:
    """The Redis the app's sessions use, decided from facts before any change."""

    managed: bool  # the deploy writes its configuration and (re)starts it (Laragon's)
    server: str | None = None  # managed: the redis-server.exe the deploy starts
    given_password: str | None = field(default=None, repr=False)  # IMPOTS_REDIS_PASSWORD, if given


def given_password(environ: Mapping[str, str]) -> str | None:
    """``IMPOTS_REDIS_PASSWORD`` from the controller's environment, checked (never echoed)."""
    value = environ.get(PASSWORD_VARIABLE) or None
    if value is not None and any(c in value for c in "\r\n\0"):
        raise RedisDataError(f"{PASSWORD_VARIABLE}: must not contain a line break or NUL")
    return value


def laragon_patterns(platform: WindowsPlatform, laragon_root: str) -> list[str]:
    """Where a Redis server this deploy may manage is looked for: Laragon's only."""
    if platform.layout != LARAGON:
        return []
    return [f"{laragon_root.rstrip('/')}/bin/redis/*/{REDIS_SERVER}"]


# --- talking to Redis from PowerShell ------------------------------------------------------------------

# A minimal RESP client over a TcpClient: one command, its first reply line, or the items of an array of
# bulk strings (CONFIG GET). The answer of Get-RedisState: 'down' (no connection), 'loading', 'open'
# (asks no password), 'auth' (asks one, none given here), 'other' (refuses the password given, or
# another protocol), 'stale' (takes it, but runs with other memory settings), 'ours'.
REDIS_PROBE = r"""
function Send-Redis($stream, $reader, [string[]]$words) {
    $utf8 = New-Object Text.UTF8Encoding $false
    $text = '*' + $words.Count + "`r`n"
    foreach ($word in $words) { $text += '$' + $utf8.GetByteCount($word) + "`r`n" + $word + "`r`n" }
    $bytes = $utf8.GetBytes($text)
    $stream.Write($bytes, 0, $bytes.Length)
    $line = [string]$reader.ReadLine()
    if (-not $line.StartsWith('*')) { return $line }
    $items = @()
    for ($i = 0; $i -lt [int]$line.Substring(1); $i++) {
        $null = $reader.ReadLine()  # the bulk string's length
        $items += $reader.ReadLine()
    }
    return ,$items
}
function Get-RedisState([string]$address, [int]$port, [string]$password, [string]$maxmemory,
    [string]$policy) {
    $client = New-Object Net.Sockets.TcpClient
    $connected = $false
    try {
        $connected = $client.ConnectAsync($address, $port).Wait(1500) -and $client.Connected
        if (-not $connected) { return 'down' }
        $stream = $client.GetStream()
        $stream.ReadTimeout = 3000
        $reader = New-Object IO.StreamReader($stream, (New-Object Text.UTF8Encoding $false))
        $answer = [string](Send-Redis $stream $reader @('PING'))
        if ($answer.StartsWith('-LOADING')) { return 'loading' }
        if ($answer.StartsWith('+PONG')) { return 'open' }
        if (-not $answer.StartsWith('-NOAUTH')) { return 'other' }
        if (-not $password) { return 'auth' }
        if ([string](Send-Redis $stream $reader @('AUTH', $password)) -ne '+OK') { return 'other' }
        if (-not $maxmemory) { return 'ours' }
        # Assigned as they come: an array reply stays an array of 2, an error is one string.
        $memory = Send-Redis $stream $reader @('CONFIG', 'GET', 'maxmemory')
        $eviction = Send-Redis $stream $reader @('CONFIG', 'GET', 'maxmemory-policy')
        if ($memory.Count -ne 2 -or $memory[1] -ne $maxmemory -or $eviction.Count -ne 2 -or
            $eviction[1] -ne $policy) { return 'stale' }
        return 'ours'
    }
    catch { if ($connected) { return 'other' } return 'down' }
    finally { $client.Close() }
}
"""

_LISTENER = r"""
$result = @{ answer = (Get-RedisState $address ([int]$port) '' '' ''); pid = $null; path = $null
    command = $null }
$listener = @(Get-NetTCPConnection -LocalPort ([int]$port) -State Listen -ErrorAction SilentlyContinue)
if ($listener.Count -gt 0) {
    $result.pid = [int]$listener[0].OwningProcess
    $process = Get-CimInstance -ClassName Win32_Process -Filter ('ProcessId = ' + $result.pid)
    if ($process) { $result.path = $process.ExecutablePath; $result.command = $process.CommandLine }
}
"""


class RedisListener(PowerShellJsonFact):
    """
    What answers on the Redis port: ``{"answer": see Get-RedisState (no password sent), "pid": the
    listening process or None, "path": its executable or None, "command": its command line or None
    (the checklist shows it, with any password hidden, to tell how Laragon's tray starts Redis)}``.

    .. code:: python

        host.get_fact(RedisListener, endpoint="127.0.0.1:6379")
    """

    @staticmethod
    def default() -> dict:
        return {"answer": "down", "pid": None, "path": None, "command": None}

    def command(self, endpoint: str) -> str:
        address, port = endpoint.rsplit(":", 1)
        return json_fact_script(ps_assign(address=address, port=port) + REDIS_PROBE + _LISTENER)

    def convert(self, value: dict) -> dict:
        pid, path, command = value.get("pid"), value.get("path"), value.get("command")
        return {
            "answer": str(value["answer"]),
            "pid": int(pid) if pid else None,
            "path": path or None,
            "command": command or None,
        }


# The password comes on stdin, base64 of its UTF-8 (the console's input code page would mangle accents).
_TAKES_PASSWORD = r"""
$password = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String([Console]::In.ReadToEnd().Trim()))
$result = @{ answer = (Get-RedisState $address ([int]$port) $password '' '') }
"""


class RedisTakesPassword(PowerShellJsonFact):
    """
    Whether the Redis on ``endpoint`` accepts the password given on the fact's stdin
    (``_stdin=password_stdin(password)``): ``{"answer": "ours" | "other" | ...}`` (Get-RedisState).

    .. code:: python

        host.get_fact(RedisTakesPassword, endpoint="127.0.0.1:6379", _stdin=password_stdin("..."))
    """

    def command(self, endpoint: str) -> str:
        address, port = endpoint.rsplit(":", 1)
        return json_fact_script(ps_assign(address=address, port=port) + REDIS_PROBE + _TAKES_PASSWORD)


def password_stdin(password: str) -> str:
    return base64.b64encode(password.encode("utf-8")).decode("ascii")


# --- deciding, before any change ----------------------------------------------------------------------


def _same_path(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and fwd_path(a).lower() == fwd_path(b).lower()


def _laragon_server(settings: Settings, platform: WindowsPlatform) -> tuple[str | None, list[str]]:
    patterns = laragon_patterns(platform, settings.laragon_root)
    if not patterns:
        return None, patterns
    found = host.get_fact(ProgramSearch, program=REDIS_SERVER, patterns=patterns)
    return choose_program({**found, "on_path": None}, patterns), patterns


def resolve_redis(
    settings: Settings, platform: WindowsPlatform, environ: Mapping[str, str]
) -> tuple[RedisTarget | None, list[str]]:
    """The Redis to use (``None``: no site keeps sessions in Redis) and every problem, each naming
    what was found. Only facts are read; a given password is tried with AUTH."""
    if not redis_in_use(settings):
        return None, []
    try:
        password = given_password(environ)
    except RedisDataError as error:
        return None, [str(error)]
    server, patterns = _laragon_server(settings, platform)
    listener = host.get_fact(RedisListener, endpoint=ENDPOINT)
    answer, path = listener["answer"], listener.get("path")
    laragon_redis = f"{settings.laragon_root.rstrip('/')}/bin/redis/"
    ours = path is not None and fwd_path(path).lower().startswith(laragon_redis.lower())
    if server is not None and (answer == "down" or ours or _same_path(path, server)):
        # Its password is generated on the host (IMPOTS_REDIS_PASSWORD is for a Redis not managed).
        return RedisTarget(managed=True, server=server), []
    if answer == "down":
        looked = f" and no {REDIS_SERVER} was found in {', '.join(patterns)}" if patterns else ""
        return None, [
            f"impots_with_redissession is on but nothing answers on {ENDPOINT}{looked}: install and start "
            f"Redis (or a compatible server such as Memurai) with a password (requirepass) and give it in "
            f"{PASSWORD_VARIABLE}, or set impots_with_redissession = False (sessions in signed cookies, "
            "no login throttling)"
        ]
    what = f"{path} (pid {listener['pid']})" if path else "a server the deploy does not manage"
    if answer == "auth" and password is not None:
        taken = host.get_fact(RedisTakesPassword, endpoint=ENDPOINT, _stdin=password_stdin(password))
        if taken and taken["answer"] == "ours":
            return RedisTarget(managed=False, given_password=password), []
        answer = f"refused: {taken['answer'] if taken else 'no answer'}"
    return None, [_unmanaged_problem(answer, what)]


def _unmanaged_problem(answer: str, what: str) -> str:
    """Why a Redis the deploy does not manage cannot be used (``answer``: Get-RedisState's, or
    ``refused: ...`` for the password given)."""
    off = "or set impots_with_redissession = False (sessions in signed cookies, no login throttling)"
    if answer == "open":
        return (
            f"Redis on {ENDPOINT} is {what}, which asks no password: any local user could read every "
            f"session. The deploy cannot set its password: set requirepass in its configuration, restart "
            f"it and give that password in {PASSWORD_VARIABLE}, {off}"
        )
    if answer == "auth":
        return f"Redis on {ENDPOINT} is {what}, which asks for a password: give it in {PASSWORD_VARIABLE}"
    if answer.startswith("refused: "):
        return (
            f"Redis on {ENDPOINT} ({what}) refuses the password of {PASSWORD_VARIABLE} "
            f"(answer: {answer.removeprefix('refused: ')}): give the one of its requirepass"
        )
    if answer == "loading":
        return f"Redis on {ENDPOINT} ({what}) is still loading its data: run the deploy again in a moment"
    return f"Redis on {ENDPOINT} ({what}) does not answer PING as Redis does ({answer}): check it"


def redis_auth(target: RedisTarget | None) -> bool:
    """``host_plan``'s ``redis_auth``: the deploy generates the password only for a Redis it manages."""
    return target is not None and target.managed


def given_secrets(target: RedisTarget | None) -> dict[str, str]:
    """What the secrets file must get from the controller for Redis (a password given by the user)."""
    if target is None or target.given_password is None:
        return {}
    return {SECRET_KEY: target.given_password}


# --- the managed Redis: its configuration file and the process -----------------------------------------


def redis_folder(plan: HostPlan) -> str:
    """Administrators and SYSTEM only: the configuration (with the password), the RDB snapshot (the
    sessions) and the log."""
    return f"{plan.paths.state_dir}/redis"


def _redis_string(value: str) -> str:
    """A double-quoted Redis configuration string (Redis' parser reads ``\\\\`` and ``\\"``)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_template(folder: str, maxmemory_mb: int, policy: str) -> str:
    """Our ``redis.conf`` with the password's placeholder. Redis 5.0 (Windows port): ``requirepass``
    only (no ACL users); ``dir`` keeps the snapshot in the private folder, not in Laragon's."""
    address, port = SERVICES["redis"]
    return (
        "# Managed by impots-provisioning (provisioning/windows/redis.py): do not edit.\n"
        f"bind {address}\n"
        f"port {port}\n"
        "protected-mode yes\n"
        f"requirepass {PLACEHOLDER}\n"
        f"maxmemory {int(maxmemory_mb)}mb\n"
        f"maxmemory-policy {policy}\n"
        f"dir {_redis_string(win_path(folder))}\n"
        f"logfile {_redis_string(win_path(folder + '/redis.log'))}\n"
    )


# The wanted text, made on the host from the secrets file: the password quoted for Redis' parser.
_WANTED_TEXT = r"""
function Format-RedisString([string]$value) {
    $out = New-Object Text.StringBuilder
    foreach ($c in $value.ToCharArray()) {
        if ($c -eq [char]'\' -or $c -eq [char]'"') { $null = $out.Append([char]'\').Append($c) }
        elseif ([int]$c -lt 32 -or [int]$c -eq 127) { $null = $out.Append(('\x{0:x2}' -f [int]$c)) }
        else { $null = $out.Append($c) }
    }
    '"' + $out.ToString() + '"'
}
$password = ''
if (Test-Path -LiteralPath $secretsfile -PathType Leaf) {
    $password = [string]([IO.File]::ReadAllText($secretsfile) | ConvertFrom-Json).$secretkey
}
$wantedconf = $template.Replace($placeholder, (Format-RedisString $password))
$currentconf = $null
if (Test-Path -LiteralPath $config -PathType Leaf) { $currentconf = [IO.File]::ReadAllText($config) }
"""

_CONFIG_STATE = r"""
$result = @{
    password = [bool]$password
    config = ($currentconf -ceq $wantedconf)
    server = (Get-RedisState $address ([int]$port) $password $maxmemory $policy)
}
"""


def _variables(config: str, secrets: str, template: str, maxmemory_mb: int, policy: str) -> str:
    address, port = ENDPOINT.rsplit(":", 1)
    return ps_assign(
        config=win_path(config),
        secretsfile=win_path(secrets),
        secretkey=SECRET_KEY,
        template=template,
        placeholder=PLACEHOLDER,
        address=address,
        port=port,
        maxmemory=str(maxmemory_mb * 1024 * 1024),
        policy=policy,
    )


class RedisConfigState(PowerShellJsonFact):
    """
    The managed Redis as it is: ``{"password": the secrets file has one, "config": our file holds the
    wanted text (made on the host with that password), "server": Get-RedisState with that password and
    the wanted memory settings}``. Booleans and a word only: the password never leaves the host.

    .. code:: python

        host.get_fact(RedisConfigState, config="C:/impots/state/redis/redis.conf",
                      secrets="C:/impots/instance/secrets.json", template=config_template(...),
                      maxmemory_mb=64, policy="volatile-lru")
    """

    def command(self, config: str, secrets: str, template: str, maxmemory_mb: int, policy: str) -> str:
        return json_fact_script(
            _variables(config, secrets, template, maxmemory_mb, policy)
            + REDIS_PROBE
            + _WANTED_TEXT
            + _CONFIG_STATE
        )


# Written while Redis is stopped; started through WMI like Laragon's httpd (a process started from the
# SSH session dies with it), as this administrator, with the file as its only argument; up when it
# takes the password with the wanted memory settings.
_APPLY = r"""
if (-not $password) { throw "$secretsfile has no $secretkey" }
if (@('ours', 'stale') -contains (Get-RedisState $address ([int]$port) $password '' '')) {
    # Our own Redis: saved before it stops (the sessions survive the restart), not just killed.
    $client = New-Object Net.Sockets.TcpClient
    try {
        $client.Connect($address, [int]$port)
        $stream = $client.GetStream()
        $stream.ReadTimeout = 10000
        $reader = New-Object IO.StreamReader($stream, (New-Object Text.UTF8Encoding $false))
        $null = Send-Redis $stream $reader @('AUTH', $password)
        $null = Send-Redis $stream $reader @('SHUTDOWN', 'SAVE')
    }
    catch { }  # the server closes the connection when it stops
    finally { $client.Close() }
}
foreach ($process in @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'redis-server.exe'")) {
    if ($process.ExecutablePath -and $process.ExecutablePath.StartsWith($laragonredis, 'OrdinalIgnoreCase')) {
        Stop-Process -Id $process.ProcessId -Force -ErrorAction SilentlyContinue
    }
}
$deadline = [DateTime]::UtcNow.AddSeconds(10)
while ((Get-RedisState $address ([int]$port) '' '' '') -ne 'down') {
    if ([DateTime]::UtcNow -gt $deadline) {
        throw "something other than $laragonredis still answers on ${address}:${port}: stop it"
    }
    Start-Sleep -Milliseconds 300
}
if ($currentconf -cne $wantedconf) {
    [IO.File]::WriteAllText($config, $wantedconf, (New-Object Text.UTF8Encoding $false))
}
$command = '"' + $server + '" "' + $config + '"'
$arguments = @{ CommandLine = $command; CurrentDirectory = (Split-Path -Parent $config) }
$started = Invoke-CimMethod -ClassName Win32_Process -MethodName Create -Arguments $arguments
if ($started.ReturnValue -ne 0) {
    throw "could not start $server (Win32_Process.Create returned $($started.ReturnValue))"
}
$deadline = [DateTime]::UtcNow.AddSeconds(20)
while (($state = Get-RedisState $address ([int]$port) $password $maxmemory $policy) -ne 'ours') {
    if ([DateTime]::UtcNow -gt $deadline) {
        $log = Join-Path (Split-Path -Parent $config) 'redis.log'
        throw "$server was started with $config but ${address}:${port} answers '$state' after 20 s: see $log"
    }
    Start-Sleep -Milliseconds 300
}
"""


@operation()
def redis_secured(server: str, config: str, secrets: str, template: str, maxmemory_mb: int, policy: str):
    """
    Laragon's Redis with the app's password (``redis_password`` of the secrets file), loopback only,
    ``protected-mode``, ``maxmemory`` and an eviction policy: ``config`` written from ``template`` on the
    host (its folder already restricted), Laragon's running ``redis-server.exe`` stopped and ``server``
    started with it. No change when the file holds the wanted text and Redis takes the password with
    the wanted memory settings (``RedisConfigState``).

    + server: Laragon's ``redis-server.exe``
    + config: our configuration file; secrets: the app's secrets file
    + template: ``config_template(...)``; maxmemory_mb, policy: checked on the running server

    .. code:: python

        redis_secured(server="C:/laragon/bin/redis/redis-x64-5.0.14.1/redis-server.exe",
                      config="C:/impots/state/redis/redis.conf", secrets="C:/impots/instance/secrets.json",
                      template=config_template("C:/impots/state/redis", 64, "volatile-lru"),
                      maxmemory_mb=64, policy="volatile-lru")
    """
    query = {"config": config, "secrets": secrets, "template": template}
    query.update(maxmemory_mb=maxmemory_mb, policy=policy)
    state = host.get_fact(RedisConfigState, **query)
    if state and state["password"] and state["config"] and state["server"] == "ours":
        host.noop(f"Redis already reads {config} and takes the app's password")
        return
    laragon_redis = win_path(server).rsplit("\\", 2)[0] + "\\"  # ...\bin\redis\: any of its versions
    yield (
        _variables(config, secrets, template, maxmemory_mb, policy)
        + ps_assign(server=win_path(server), laragonredis=laragon_redis)
        + REDIS_PROBE
        + _WANTED_TEXT
        + _APPLY
    )


def provision_redis(plan: HostPlan, target: RedisTarget | None) -> None:
    """The managed Redis: its private folder, then its file and process. A Redis the deploy does not
    manage was checked before any change (``resolve_redis``): it only gets its password into the
    secrets file (``given_secrets``)."""
    if target is None or not target.managed or target.server is None:
        return
    folder = redis_folder(plan)
    operations.directory(name="Folder for Redis (configuration, sessions snapshot)", path=folder)
    operations.restricted_acl(
        name="Redis folder: Administrators and SYSTEM only",
        path=folder,
        folder=True,
        full=[ADMINISTRATORS_SID, SYSTEM_SID],
    )
    maxmemory_mb = plan.settings.redis_maxmemory_mb
    redis_secured(
        name="Redis: the app's password, loopback, memory limit (Laragon)",
        server=target.server,
        config=f"{folder}/redis.conf",
        secrets=plan.secrets.path,
        template=config_template(folder, maxmemory_mb, EVICTION_POLICY),
        maxmemory_mb=maxmemory_mb,
        policy=EVICTION_POLICY,
    )
