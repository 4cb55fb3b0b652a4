"""PowerShell facts for Windows hosts reached through ``@winssh``.

Each fact's ``command`` is a PowerShell 5.1 script printing one line of compact JSON
(``ConvertTo-Json -Compress``); ``process`` parses it. JSON ``null`` (file absent, service unknown...)
becomes the fact's default. Paths may be given with ``/`` or ``\\``.

The scripts are kept as plain PowerShell text below; arguments are assigned in front of them as
single-quoted literals (``ps_assign``), never formatted into the script body. Native programs run inside
``& { $ErrorActionPreference = 'Continue'; & prog ... }`` and their stderr is never redirected: under the
wrapper's ``'Stop'``, Windows PowerShell 5.1 may turn a native program's stderr line (``httpd -t`` always
prints "Syntax OK" there) into a terminating error; the child scope keeps 'Continue' local, and
``$LASTEXITCODE`` (global) still tells success.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

from provisioning.windows.powershell import json_fact_script, ps_array, ps_assign, win_path

# Python's answer about itself; no double quote inside (Windows PowerShell 5.1 mangles double quotes
# in arguments of native programs).
PYTHON_PROBE = (
    "import json, struct, sys; print(json.dumps({'executable': sys.executable, "
    "'version': '%d.%d.%d' % sys.version_info[:3], 'bits': struct.calcsize('P') * 8, "
    "'base_prefix': sys.base_prefix}))"
)

MSVC_COMPONENT = "Microsoft.VisualStudio.Component.VC.Tools.x86.x64"
# Where the Windows 10/11 SDK installer records its folder (the VS installer's SDK component writes it too).
WINDOWS_KITS_KEYS = (
    "HKLM:\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows Kits\\Installed Roots",
    "HKLM:\\SOFTWARE\\Microsoft\\Windows Kits\\Installed Roots",
)


class PowerShellJsonFact(FactBase):
    """Base of the facts here: the command prints JSON, ``process`` returns it parsed."""

    abstract = True

    def process(self, output: list[str]) -> Any:
        text = "\n".join(output).strip()
        try:
            value = json.loads(text) if text else None
        except ValueError as e:
            raise FactProcessError(f"{self.name}: not JSON: {text[:200]!r}") from e
        return self.default() if value is None else self.convert(value)

    def convert(self, value: Any) -> Any:
        return value


_FILE_HASH = r"""
$result = $null
if (Test-Path -LiteralPath $p -PathType Leaf) {
    $result = (Get-FileHash -LiteralPath $p -Algorithm SHA256).Hash.ToLowerInvariant()
}
"""


class FileHash(PowerShellJsonFact):
    """
    SHA256 (lower-case hex) of a file, or ``None`` when there is no such file.

    .. code:: python

        host.get_fact(FileHash, path="C:/impots/instance/impots.json")
    """

    def command(self, path: str) -> str:
        return json_fact_script(ps_assign(p=win_path(path)) + _FILE_HASH)


_FILE_TEXT = r"""
$result = $null
if (Test-Path -LiteralPath $p -PathType Leaf) { $result = [IO.File]::ReadAllText($p) }
"""


class FileText(PowerShellJsonFact):
    """
    Text of a (UTF-8 or ASCII) file with its line ends untouched, or ``None`` when absent.

    .. code:: python

        host.get_fact(FileText, path="C:/Windows/System32/drivers/etc/hosts")
    """

    def command(self, path: str) -> str:
        return json_fact_script(ps_assign(p=win_path(path)) + _FILE_TEXT)


_COMMAND_PATH = r"""
$result = $null
$found = Get-Command -Name $name -CommandType Application -ErrorAction SilentlyContinue |
    Select-Object -First 1
if ($found) { $result = $found.Source }
"""


class CommandPath(PowerShellJsonFact):
    """
    Where a program on PATH is (``Get-Command``), or ``None``.

    .. code:: python

        host.get_fact(CommandPath, program="tar.exe")
    """

    def command(self, program: str) -> str:
        return json_fact_script(ps_assign(name=program) + _COMMAND_PATH)


class Directory(PowerShellJsonFact):
    """
    Whether a folder exists (``True``/``False``).

    .. code:: python

        host.get_fact(Directory, path="C:/impots")
    """

    @staticmethod
    def default() -> bool:
        return False

    def command(self, path: str) -> str:
        return json_fact_script(
            ps_assign(p=win_path(path)) + "$result = Test-Path -LiteralPath $p -PathType Container"
        )


_LINK_TARGET = r"""
$result = $null
$item = Get-Item -LiteralPath $p -Force -ErrorAction SilentlyContinue
if ($item) {
    $type = 'File'
    if ($item.PSIsContainer) { $type = 'Directory' }
    if ($item.LinkType) { $type = [string]$item.LinkType }
    $target = $null
    if ($item.Target) { $target = [string]@($item.Target)[0] }
    $result = @{ type = $type; target = $target }
}
"""


class LinkTarget(PowerShellJsonFact):
    """
    What is at a path: ``{"type": "Junction"|"SymbolicLink"|"Directory"|"File", "target": str|None}``
    (target with forward slashes) or ``None`` when nothing is there.

    .. code:: python

        host.get_fact(LinkTarget, path="C:/impots/app")
    """

    def command(self, path: str) -> str:
        return json_fact_script(ps_assign(p=win_path(path)) + _LINK_TARGET)

    def convert(self, value: dict) -> dict:
        target = value.get("target")
        return {"type": value["type"], "target": target.replace("\\", "/") if target else None}


_SERVICE_STATE = r"""
$result = $null
$s = Get-Service | Where-Object { $_.Name -eq $n } | Select-Object -First 1
if ($s) {
    $cim = Get-CimInstance -ClassName Win32_Service | Where-Object { $_.Name -eq $n } | Select-Object -First 1
    $result = @{
        name = $s.Name; status = [string]$s.Status
        start_type = [string]$s.StartType; account = $cim.StartName
    }
}
"""


class ServiceState(PowerShellJsonFact):
    """
    A Windows service (``Get-Service``): ``{"name", "status": "Running"|"Stopped"|...,
    "start_type": "Automatic"|"Manual"|"Disabled", "account"}`` or ``None`` if there is none.

    .. code:: python

        host.get_fact(ServiceState, service="Apache2.4")
    """

    def command(self, service: str) -> str:
        return json_fact_script(ps_assign(n=service) + _SERVICE_STATE)


# python.org's installer folders: "for all users" first, then per user, then python.org's install
# manager (3.14+, per user: %LOCALAPPDATA%\Python\pythoncore-<version>-64). The Microsoft Store stub
# (WindowsApps\python.exe) is never listed: it opens the Store instead of running Python.
_PYTHON_SEARCH = r"""
$patterns = @(
    "$env:ProgramFiles\Python3*\python.exe",
    "${env:ProgramFiles(x86)}\Python3*\python.exe",
    "$env:LOCALAPPDATA\Programs\Python\Python3*\python.exe",
    "$env:LOCALAPPDATA\Python\pythoncore-3*\python.exe"
)
$candidates = @(Get-Item -Path $patterns -ErrorAction SilentlyContinue | ForEach-Object { $_.FullName })
"""
_PYTHON_PROBE_LOOP = r"""
$result = @()
foreach ($exe in $candidates) {
    if (-not (Test-Path -LiteralPath $exe -PathType Leaf)) { continue }
    if ($exe -like '*\WindowsApps\*') { continue }
    $out = & { $ErrorActionPreference = 'Continue'; & $exe -c $probe }
    if ($LASTEXITCODE -eq 0 -and $out) {
        $result += ($out | Select-Object -Last 1 | ConvertFrom-Json)
    }
}
$global:LASTEXITCODE = 0
"""


class PythonInstallations(PowerShellJsonFact):
    """
    Python 3 interpreters: a list of ``{"executable", "version", "bits", "base_prefix"}``.

    With ``path``, only that interpreter (``[]`` if it does not run); else those in python.org's
    install folders (all users and per user).

    .. code:: python

        host.get_fact(PythonInstallations, path=None)
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, path: str | None = None) -> str:
        if path:
            candidates = ps_assign(exe=win_path(path)) + "$candidates = @($exe)\n"
        else:
            candidates = _PYTHON_SEARCH.lstrip("\n")
        return json_fact_script(
            ps_assign(probe=PYTHON_PROBE) + candidates + _PYTHON_PROBE_LOOP, value="@($result)"
        )

    def convert(self, value: Any) -> list[dict]:
        return [
            {
                "executable": item["executable"].replace("\\", "/"),
                "version": item["version"],
                "bits": int(item["bits"]),
                "base_prefix": item["base_prefix"].replace("\\", "/"),
            }
            for item in value
        ]


_APACHE_INSTALLATION = r"""
$httpd = Join-Path $root 'bin\httpd.exe'
$result = $null
if (Test-Path -LiteralPath $httpd -PathType Leaf) {
    $version = $null
    $architecture = $null
    $v = (& { $ErrorActionPreference = 'Continue'; & $httpd -v } | Out-String)
    if ($v -match 'Apache/([0-9.]+)') { $version = $Matches[1] }
    $vv = (& { $ErrorActionPreference = 'Continue'; & $httpd -V } | Out-String)
    if ($vv -match 'Architecture:\s+(\d+)-bit') { $architecture = [int]$Matches[1] }
    $global:LASTEXITCODE = 0
    $bytes = [IO.File]::ReadAllBytes($httpd)
    $pe = [BitConverter]::ToInt32($bytes, 60)
    $machine = [int][BitConverter]::ToUInt16($bytes, $pe + 4)
    $result = @{
        root = $root
        version = $version
        architecture = $architecture
        machine = $machine
        missing = @($build |
            Where-Object { -not (Test-Path -LiteralPath (Join-Path $root $_) -PathType Leaf) })
    }
}
"""


# What mod_wsgi's setup.py compiles and links against on Windows (MOD_WSGI_APACHE_ROOTDIR/include and
# the four import libraries it names in PYTHON_LDLIBS).
APACHE_BUILD_FILES = (
    "include/httpd.h",
    "include/apr.h",
    "lib/libhttpd.lib",
    "lib/libapr-1.lib",
    "lib/libaprutil-1.lib",
    "lib/libapriconv-1.lib",
)


class ApacheInstallation(PowerShellJsonFact):
    """
    The Apache tree at ``root``: ``{"root", "version", "bits", "missing", "has_include", "has_lib"}`` or
    ``None`` when ``root/bin/httpd.exe`` is missing. ``missing``: the files of ``APACHE_BUILD_FILES``
    (forward slashes) that are not there.

    ``version`` comes from ``httpd -v`` (``None`` if httpd.exe cannot run, e.g. without the Visual C++
    redistributable); ``bits`` from ``httpd -V`` ("Architecture: 64-bit"), else from the machine field of
    httpd.exe's PE header (0x8664 = x64, 0x14c = x86).

    .. code:: python

        host.get_fact(ApacheInstallation, root="C:/Apache24")
    """

    def command(self, root: str) -> str:
        build = ps_array(win_path(f) for f in APACHE_BUILD_FILES)
        return json_fact_script(ps_assign(root=win_path(root)) + f"$build = {build}" + _APACHE_INSTALLATION)

    def convert(self, value: dict) -> dict:
        bits = value.get("architecture") or {0x8664: 64, 0x14C: 32}.get(value.get("machine"))
        missing = [f.replace("\\", "/") for f in value.get("missing") or []]
        return {
            "root": value["root"].replace("\\", "/"),
            "version": value.get("version"),
            "bits": bits,
            "missing": missing,
            "has_include": not any(f.startswith("include/") for f in missing),
            "has_lib": not any(f.startswith("lib/") for f in missing),
        }


_LARAGON_APACHE = r"""
$versions = @()
$apache = Join-Path $root 'bin\apache'
if (Test-Path -LiteralPath $apache -PathType Container) {
    $versions = @(Get-ChildItem -LiteralPath $apache -Directory -Filter 'httpd-*' |
        ForEach-Object { $_.Name })
}
$selected = $null
$ini = Join-Path $root 'usr\laragon.ini'
if (Test-Path -LiteralPath $ini -PathType Leaf) {
    $section = ''
    foreach ($line in [IO.File]::ReadAllLines($ini)) {
        if ($line -match '^\s*\[(.+)\]\s*$') { $section = $Matches[1].Trim() }
        elseif ($section -eq 'apache' -and $line -match '^\s*Version\s*=\s*(.+?)\s*$') {
            $selected = $Matches[1]
        }
    }
}
$running = @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'httpd.exe'" |
    Where-Object { $_.ExecutablePath -and $_.ExecutablePath.StartsWith($apache + '\', 'OrdinalIgnoreCase') } |
    ForEach-Object { $_.ExecutablePath } | Sort-Object -Unique)
$result = @{ versions = $versions; selected = $selected; running = $running }
"""


class LaragonApache(PowerShellJsonFact):
    """
    Laragon's Apache versions: ``{"versions": [names of bin/apache/httpd-*], "selected": str|None,
    "running": [httpd-* folders whose httpd.exe runs]}``; ``selected`` is ``Version=`` of the ``[apache]``
    section of ``usr/laragon.ini`` (the version Laragon's menu made current), if any.

    .. code:: python

        host.get_fact(LaragonApache, laragon_root="C:/laragon")
    """

    @staticmethod
    def default() -> dict:
        return {"versions": [], "selected": None, "running": []}

    def command(self, laragon_root: str) -> str:
        return json_fact_script(ps_assign(root=win_path(laragon_root)) + _LARAGON_APACHE)

    def convert(self, value: dict) -> dict:
        running = {
            m.group(1)
            for path in value.get("running") or []
            if (m := re.search(r"[\\/]bin[\\/]apache[\\/]([^\\/]+)[\\/]bin[\\/]httpd\.exe$", path, re.I))
        }
        return {
            "versions": sorted(value.get("versions") or []),
            "selected": value.get("selected"),
            "running": sorted(running),
        }


_MSVC_BUILD_TOOLS = r"""
$vswhere = "${env:ProgramFiles(x86)}\Microsoft Visual Studio\Installer\vswhere.exe"
$found = Test-Path -LiteralPath $vswhere -PathType Leaf
$installations = @()
if ($found) {
    $installations = @(& { $ErrorActionPreference = 'Continue'; & $vswhere -products '*' `
        -requires $component -property installationPath })
    $global:LASTEXITCODE = 0
}
$kits = $null
foreach ($key in $kitkeys) {
    $item = Get-ItemProperty -LiteralPath $key -Name KitsRoot10 -ErrorAction SilentlyContinue
    if ($item -and -not $kits) { $kits = [string]$item.KitsRoot10 }
}
$sdks = @()
if ($kits -and (Test-Path -LiteralPath (Join-Path $kits 'Lib') -PathType Container)) {
    $sdks = @(Get-ChildItem -LiteralPath (Join-Path $kits 'Lib') -Directory |
        Where-Object { Test-Path -LiteralPath (Join-Path $_.FullName 'um\x64\kernel32.lib') -PathType Leaf } |
        ForEach-Object { $_.Name })
}
$result = @{ vswhere = $found; installations = $installations; sdks = $sdks }
"""


class MsvcBuildTools(PowerShellJsonFact):
    """
    The Microsoft C++ build tools seen by ``vswhere.exe`` (installed with any Visual Studio 2017+) and
    the Windows SDK the linker needs (kernel32.lib...): ``{"vswhere": bool, "installations": [installation
    folders that have the VC x86/x64 tools], "sdks": [Windows 10/11 SDK versions with x64 libraries]}``.

    .. code:: python

        host.get_fact(MsvcBuildTools)
    """

    @staticmethod
    def default() -> dict:
        return {"vswhere": False, "installations": [], "sdks": []}

    def command(self) -> str:
        return json_fact_script(
            ps_assign(component=MSVC_COMPONENT)
            + f"$kitkeys = {ps_array(WINDOWS_KITS_KEYS)}"
            + _MSVC_BUILD_TOOLS
        )

    def convert(self, value: dict) -> dict:
        return {
            "vswhere": bool(value.get("vswhere")),
            "installations": [p for p in (value.get("installations") or []) if p],
            "sdks": sorted(p for p in (value.get("sdks") or []) if p),
        }


# An account name as services and users write it -> its SID, or $null. ".\\name" (a local account, as
# services.msc writes it) is not understood by NTAccount: it becomes "<computer>\\name".
_ACCOUNT_SID = r"""
function Get-AccountSid([string]$account) {
    if ($account -eq 'LocalSystem') { return 'S-1-5-18' }
    if ($account.StartsWith('.\')) { $account = $env:COMPUTERNAME + $account.Substring(1) }
    try {
        $nt = New-Object Security.Principal.NTAccount $account
        return $nt.Translate([Security.Principal.SecurityIdentifier]).Value
    } catch { return $null }
}
"""

_HTTPD_RUNTIME = (
    _ACCOUNT_SID
    + r"""
$services = @()
foreach ($s in @(Get-CimInstance -ClassName Win32_Service)) {
    if (-not $s.PathName) { continue }
    $exe = $s.PathName.Trim()
    if ($exe.StartsWith('"')) { $exe = $exe.Substring(1, $exe.IndexOf('"', 1) - 1) }
    elseif ($exe -match '^(.+?\.exe)') { $exe = $Matches[1] }
    if ($exe -ne $httpd) { continue }
    $account = [string]$s.StartName
    if (-not $account) { $account = 'LocalSystem' }
    $services += @{
        name = $s.Name; state = $s.State; account = $account; account_sid = (Get-AccountSid $account)
    }
}
$processes = @()
foreach ($p in @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'httpd.exe'")) {
    if ($p.ExecutablePath -ne $httpd) { continue }
    $owner = Invoke-CimMethod -InputObject $p -MethodName GetOwnerSid
    $name = Invoke-CimMethod -InputObject $p -MethodName GetOwner
    $processes += @{
        pid = [int]$p.ProcessId; owner_sid = $owner.Sid; owner = "$($name.Domain)\$($name.User)"
        session = [int]$p.SessionId
    }
}
$result = @{ services = $services; processes = $processes }
"""
)


class HttpdRuntime(PowerShellJsonFact):
    """
    How the Apache whose executable is ``httpd`` runs: ``{"services": [...], "processes": [...]}``.

    ``services``: Windows services starting that httpd.exe (``{"name", "state", "account", "account_sid"}``,
    ``account_sid`` None when the account cannot be resolved; ``.\\name`` is this machine's ``name``);
    ``processes``: running httpd.exe of that path (``{"pid", "owner_sid", "owner", "session"}``).
    Apache Lounge usually runs
    as a service (``httpd -k install``), Laragon as a plain process of the desktop user.

    .. code:: python

        host.get_fact(HttpdRuntime, httpd="C:/Apache24/bin/httpd.exe")
    """

    @staticmethod
    def default() -> dict:
        return {"services": [], "processes": []}

    def command(self, httpd: str) -> str:
        return json_fact_script(ps_assign(httpd=win_path(httpd)) + _HTTPD_RUNTIME)

    def convert(self, value: dict) -> dict:
        return {"services": value.get("services") or [], "processes": value.get("processes") or []}


_CURRENT_USER = r"""
$id = [Security.Principal.WindowsIdentity]::GetCurrent()
$principal = New-Object Security.Principal.WindowsPrincipal $id
$admin = $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
$result = @{ name = $id.Name; sid = $id.User.Value; admin = $admin }
"""


class CurrentUser(PowerShellJsonFact):
    """
    The account the SSH session runs as: ``{"name": "PC\\\\admin", "sid": "S-1-5-21-...", "admin": bool}``
    (``admin``: the session holds the Administrators group, i.e. it is elevated).

    .. code:: python

        host.get_fact(CurrentUser)
    """

    def command(self) -> str:
        return json_fact_script(_CURRENT_USER)


_FILE_ACL = r"""
$result = $null
if (Test-Path -LiteralPath $p) {
    $acl = Get-Acl -LiteralPath $p
    $rules = $acl.GetAccessRules($true, $true, [Security.Principal.SecurityIdentifier])
    $sids = @($rules | Where-Object { $_.AccessControlType -eq 'Allow' } |
        ForEach-Object { $_.IdentityReference.Value } | Sort-Object -Unique)
    $result = @{ protected = $acl.AreAccessRulesProtected; sids = $sids }
}
"""


class FileAcl(PowerShellJsonFact):
    """
    Who may access a file or folder: ``{"protected": bool, "sids": [sorted SIDs with an Allow rule]}``,
    or ``None`` when it does not exist. ``protected``: inheritance from the parent is cut.

    .. code:: python

        host.get_fact(FileAcl, path="C:/impots/instance/secrets.json")
    """

    def command(self, path: str) -> str:
        return json_fact_script(ps_assign(p=win_path(path)) + _FILE_ACL)

    def convert(self, value: dict) -> dict:
        return {"protected": bool(value.get("protected")), "sids": sorted(value.get("sids") or [])}


_JSON_KEY_DIGESTS = r"""
$result = $null
if (Test-Path -LiteralPath $p -PathType Leaf) {
    $result = @{}
    $sha = [Security.Cryptography.SHA256]::Create()
    $data = [IO.File]::ReadAllText($p) | ConvertFrom-Json
    foreach ($property in $data.PSObject.Properties) {
        if ($property.Value -is [string] -and $property.Value) {
            $bytes = $sha.ComputeHash([Text.Encoding]::UTF8.GetBytes($property.Value))
            $result[$property.Name] = ([BitConverter]::ToString($bytes) -replace '-', '').ToLowerInvariant()
        }
    }
}
"""


class JsonKeyDigests(PowerShellJsonFact):
    """
    For a JSON object file (the secrets file): ``{key: SHA256 hex of the value's UTF-8 text}`` for every
    non-empty string value, or ``None`` when the file is absent. The values never leave the host.

    .. code:: python

        host.get_fact(JsonKeyDigests, path="C:/impots/instance/secrets.json")
    """

    def command(self, path: str) -> str:
        return json_fact_script(ps_assign(p=win_path(path)) + _JSON_KEY_DIGESTS)


_VENV_HOME = r"""
$result = $null
$cfg = Join-Path $venv 'pyvenv.cfg'
$python = Join-Path $venv 'Scripts\python.exe'
if ((Test-Path -LiteralPath $python -PathType Leaf) -and (Test-Path -LiteralPath $cfg -PathType Leaf)) {
    foreach ($line in [IO.File]::ReadAllLines($cfg)) {
        if ($line -match '^\s*home\s*=\s*(.+?)\s*$') { $result = $Matches[1] }
    }
}
"""


class VenvHome(PowerShellJsonFact):
    """
    The ``home`` of a virtual environment (the folder of the Python it was made from, read from
    ``pyvenv.cfg``, forward slashes), or ``None`` when ``Scripts/python.exe`` or ``pyvenv.cfg`` is missing.

    .. code:: python

        host.get_fact(VenvHome, venv="C:/impots/venv")
    """

    def command(self, venv: str) -> str:
        return json_fact_script(ps_assign(venv=win_path(venv)) + _VENV_HOME)

    def convert(self, value: str) -> str:
        return re.sub(r"/+$", "", value.replace("\\", "/"))


_PROGRAM_SEARCH = r"""
$onpath = $null
$command = Get-Command -Name $name -CommandType Application -ErrorAction SilentlyContinue |
    Select-Object -First 1
if ($command) { $onpath = $command.Source }
$found = @()
foreach ($pattern in $patterns) {
    $files = @(Get-Item -Path $pattern -ErrorAction SilentlyContinue |
        Where-Object { -not $_.PSIsContainer } | ForEach-Object { $_.FullName })
    $found += @{ pattern = $pattern; files = $files }
}
$result = @{ on_path = $onpath; found = $found }
"""


class ProgramSearch(PowerShellJsonFact):
    """
    Where a program is: ``{"on_path": str|None, "found": {pattern: [files]}}`` (forward slashes).

    ``on_path`` is what ``Get-Command`` finds on PATH; ``found`` lists, for each wildcard pattern (e.g.
    ``C:/laragon/bin/mysql/*/bin/mysql.exe``), the files it matches.

    .. code:: python

        host.get_fact(ProgramSearch, program="psql.exe",
                      patterns=["C:/Program Files/PostgreSQL/*/bin/psql.exe"])
    """

    @staticmethod
    def default() -> dict:
        return {"on_path": None, "found": {}}

    def command(self, program: str, patterns: list[str]) -> str:
        return json_fact_script(
            ps_assign(name=program)
            + "$patterns = "
            + ps_array(win_path(p) for p in patterns)
            + "\n"
            + _PROGRAM_SEARCH.lstrip("\n")
        )

    def convert(self, value: dict) -> dict:
        on_path = value.get("on_path")
        return {
            "on_path": on_path.replace("\\", "/") if on_path else None,
            "found": {
                item["pattern"].replace("\\", "/"): [f.replace("\\", "/") for f in item.get("files") or []]
                for item in value.get("found") or []
            },
        }


# Connects are started together and share one deadline: a closed port answers at once, a filtered
# one costs at most the timeout (Test-NetConnection would take seconds per port).
_TCP_PORTS_OPEN = r"""
$pending = @()
foreach ($endpoint in $endpoints) {
    $colon = $endpoint.LastIndexOf(':')
    $client = New-Object Net.Sockets.TcpClient
    $task = $null
    try { $task = $client.ConnectAsync($endpoint.Substring(0, $colon), [int]$endpoint.Substring($colon + 1)) }
    catch { }
    $pending += @{ endpoint = $endpoint; client = $client; task = $task }
}
$deadline = [DateTime]::UtcNow.AddMilliseconds([int]$timeout)
$result = @{}
foreach ($item in $pending) {
    $open = $false
    if ($item.task) {
        $left = [int][Math]::Max(0, ($deadline - [DateTime]::UtcNow).TotalMilliseconds)
        try { $open = $item.task.Wait($left) -and $item.client.Connected } catch { $open = $false }
    }
    $result[$item.endpoint] = $open
    $item.client.Close()
}
"""


class TcpPortsOpen(PowerShellJsonFact):
    """
    Whether something accepts TCP connections: ``{"127.0.0.1:3306": bool, ...}`` for each
    ``address:port`` of ``endpoints`` (a ``TcpClient`` connect with a short timeout, all at once).

    .. code:: python

        host.get_fact(TcpPortsOpen, endpoints=["127.0.0.1:3306", "127.0.0.1:6379"])
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, endpoints: list[str], timeout_ms: int = 1500) -> str:
        return json_fact_script(
            ps_assign(timeout=str(timeout_ms))
            + "$endpoints = "
            + ps_array(endpoints)
            + "\n"
            + _TCP_PORTS_OPEN.lstrip("\n")
        )

    def convert(self, value: dict) -> dict:
        return {str(endpoint): bool(is_open) for endpoint, is_open in value.items()}


_PROCESS_OWNERS = r"""
$result = @()
foreach ($p in @(Get-CimInstance -ClassName Win32_Process -Filter ("Name = '" + $name + "'"))) {
    $sid = Invoke-CimMethod -InputObject $p -MethodName GetOwnerSid
    $owner = Invoke-CimMethod -InputObject $p -MethodName GetOwner
    $result += @{
        pid = [int]$p.ProcessId; owner_sid = $sid.Sid; owner = "$($owner.Domain)\$($owner.User)"
        session = [int]$p.SessionId; path = $p.ExecutablePath
    }
}
"""


class ProcessOwners(PowerShellJsonFact):
    """
    Running processes of one program name: a list of ``{"pid", "owner_sid", "owner" ("PC\\user"),
    "session" (0 = services, 1+ = a desktop), "path"}``. For Laragon's tray (``laragon.exe``): the desktop
    user who (re)starts Laragon's Apache.

    .. code:: python

        host.get_fact(ProcessOwners, program="laragon.exe")
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, program: str) -> str:
        if "'" in program or not program.lower().endswith(".exe"):
            raise ValueError(f"not a program file name: {program!r}")
        return json_fact_script(ps_assign(name=program) + _PROCESS_OWNERS, value="@($result)")


_ACCOUNT_SIDS = (
    _ACCOUNT_SID
    + r"""
$result = @{}
foreach ($account in $accounts) { $result[$account] = Get-AccountSid $account }
"""
)


class AccountSids(PowerShellJsonFact):
    """
    SIDs of account names (``PC\\user``, ``.\\user``, ``user``, ``LocalSystem``): ``{name: SID or None}``.

    .. code:: python

        host.get_fact(AccountSids, accounts=[".\\prof"])
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, accounts: list[str]) -> str:
        return json_fact_script(f"$accounts = {ps_array(accounts)}" + _ACCOUNT_SIDS)


_SYSTEM_PROGRAM = r"""
$result = $null
$path = Join-Path ([Environment]::GetFolderPath('System')) $name
if (Test-Path -LiteralPath $path -PathType Leaf) { $result = $path }
"""


class SystemProgram(PowerShellJsonFact):
    """
    A program of Windows' own System32 folder (e.g. ``tar.exe``, bsdtar since Windows 10 1803), with
    forward slashes, or ``None``. Never PATH: Git's, MSYS2's or Cygwin's tar read ``C:\\...`` as a
    remote host name.

    .. code:: python

        host.get_fact(SystemProgram, program="tar.exe")
    """

    def command(self, program: str) -> str:
        return json_fact_script(ps_assign(name=program) + _SYSTEM_PROGRAM)

    def convert(self, value: str) -> str:
        return value.replace("\\", "/")


_CERTIFICATE_IN_STORE = r"""
$result = Test-Path -LiteralPath ('Cert:\LocalMachine\Root\' + $thumbprint)
"""


class CertificateTrusted(PowerShellJsonFact):
    """
    Whether the certificate with this SHA-1 thumbprint (upper-case hex) is in the machine's trusted root
    store (``Cert:\\LocalMachine\\Root``).

    .. code:: python

        host.get_fact(CertificateTrusted, thumbprint="0123...")
    """

    @staticmethod
    def default() -> bool:
        return False

    def command(self, thumbprint: str) -> str:
        if not re.fullmatch(r"[0-9A-F]{40}", thumbprint):
            raise ValueError(f"not an upper-case SHA-1 thumbprint: {thumbprint!r}")
        return json_fact_script(ps_assign(thumbprint=thumbprint) + _CERTIFICATE_IN_STORE)
