"""The first-real-machine checklist: one screen a user pastes in a bug report after a Windows run.

``pyinfra inventory.py windows_checklist.py --dry`` (after ``deploy.py``) only reads: it changes nothing on
the host. It reports what no test on Linux can settle: which mod_wsgi built, whether non-ASCII paths
survive the fact output, what stderr a failing httpd gives through the connector (raw CLIXML and
decoded), which account and session run Apache (Laragon's tray vs. the SSH session), what answers on
Redis' port and with which command line (how Laragon's tray starts Redis; passwords hidden), and whether
each site answers over HTTPS on the Windows host itself (certificate trusted or not).
"""

from __future__ import annotations

from typing import Any

from pyinfra import host

from provisioning.windows import facts
from provisioning.windows.deploy import resolve_platform
from provisioning.windows.powershell import json_fact_script, ps_array, ps_assign, win_path
from provisioning.windows.prerequisites import mod_wsgi_package
from provisioning.windows.redis import ENDPOINT as REDIS_ENDPOINT
from provisioning.windows.redis import RedisListener

# Folder and file names whose round trip (PowerShell -> JSON -> SSH -> Python) must be exact.
NON_ASCII_FOLDER = "impots-checklist-ô’é€"
NON_ASCII_FILE = "données-ü.txt"

_SYSTEM = r"""
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$result = @{ os = "$($os.Caption) $($os.Version)"; powershell = [string]$PSVersionTable.PSVersion }
"""


class SystemSummary(facts.PowerShellJsonFact):
    """``{"os": "Microsoft Windows 11 Pro 10.0.22631", "powershell": "5.1.22621.2506"}``."""

    def command(self) -> str:
        return json_fact_script(_SYSTEM)


_MOD_WSGI_BUILT = r"""
$site = Join-Path $venv 'Lib\site-packages'
$stamp = Join-Path $venv 'impots-mod_wsgi.stamp'
$result = @{ stamp = $null; dist = @(); modules = @() }
if (Test-Path -LiteralPath $stamp -PathType Leaf) { $result.stamp = [IO.File]::ReadAllText($stamp) }
if (Test-Path -LiteralPath $site -PathType Container) {
    $result.dist = @(Get-ChildItem -LiteralPath $site -Directory -Filter 'mod_wsgi-*' |
        ForEach-Object { $_.Name })
    $server = Join-Path $site 'mod_wsgi\server'
    if (Test-Path -LiteralPath $server -PathType Container) {
        $result.modules = @(Get-ChildItem -LiteralPath $server -Filter 'mod_wsgi*.pyd' |
            ForEach-Object { $_.Name })
    }
}
"""


class ModWsgiBuilt(facts.PowerShellJsonFact):
    """What the venv holds of mod_wsgi: ``{"stamp", "dist": [dist-info folders], "modules": [.pyd]}``."""

    def command(self, venv: str) -> str:
        return json_fact_script(ps_assign(venv=win_path(venv)) + _MOD_WSGI_BUILT)


_NON_ASCII = r"""
$folder = Join-Path ([IO.Path]::GetTempPath()) $name
$null = [IO.Directory]::CreateDirectory($folder)
[IO.File]::WriteAllText((Join-Path $folder $file), $name)
$result = @{
    folder = (Split-Path -Leaf (Get-Item -LiteralPath $folder).FullName)
    files = @(Get-ChildItem -LiteralPath $folder | ForEach-Object { $_.Name })
    content = [IO.File]::ReadAllText((Join-Path $folder $file))
}
Remove-Item -LiteralPath $folder -Recurse -Force
"""


class NonAsciiRoundTrip(facts.PowerShellJsonFact):
    """A temporary folder and file with non-ASCII names made, listed back and removed: what came back."""

    def command(self, folder: str, file: str) -> str:
        return json_fact_script(ps_assign(name=folder, file=file) + _NON_ASCII)


_SITES_ANSWER = r"""
$result = @{}
foreach ($url in $urls) {
    try {
        $response = Invoke-WebRequest -Uri $url -UseBasicParsing -MaximumRedirection 0 -TimeoutSec 15
        $result[$url] = [string][int]$response.StatusCode
    } catch {
        $answer = $_.Exception.Response
        if ($answer) { $result[$url] = [string][int]$answer.StatusCode }
        else { $result[$url] = $_.Exception.Message }
    }
}
"""


class SitesAnswer(facts.PowerShellJsonFact):
    """``{url: "200" | "<HTTP status>" | "<the error>"}``, fetched on the Windows host itself."""

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, urls: list[str]) -> str:
        return json_fact_script(f"$urls = {ps_array(urls)}" + _SITES_ANSWER)


# httpd run on a configuration file that does not exist, outside any 'Continue' block: what Windows
# PowerShell 5.1 turns a failing native program's stderr into, and what the connector makes of it.
def _failing_httpd(httpd: str) -> str:
    script = ps_assign(httpd=win_path(httpd)) + "& $httpd -t -f 'C:\\impots-checklist-no-such.conf'\n"
    status, output = host.run_shell_command(script)
    connector = host.connector
    raw = getattr(connector, "last_raw_stderr", None) or []
    raw_text = " ".join(line.strip() for line in raw)[:300]
    decoded = " | ".join(output.stderr_lines)[:300]
    return f"exit {'0' if status else 'non-zero'}; raw stderr: {raw_text or '(none)'}; decoded: {decoded}"


def _runtime_line(platform: Any) -> str:
    runtime = host.get_fact(facts.HttpdRuntime, httpd=platform.httpd)
    parts = [f"service {s['name']} {s['state']} as {s.get('account')}" for s in runtime["services"]]
    parts += [
        f"httpd pid {p['pid']} as {p.get('owner')} (session {p.get('session')})" for p in runtime["processes"]
    ]
    if platform.layout != "apache-lounge":
        for p in host.get_fact(facts.ProcessOwners, program="laragon.exe"):
            parts.append(f"laragon.exe as {p['owner']} (session {p['session']})")
    user = host.get_fact(facts.CurrentUser) or {}
    parts.append(f"SSH session {user.get('name')} elevated={user.get('admin')}")
    return "; ".join(parts) or "Apache is not running"


def _non_ascii_line() -> str:
    got = host.get_fact(NonAsciiRoundTrip, folder=NON_ASCII_FOLDER, file=NON_ASCII_FILE) or {}
    wanted = {"folder": NON_ASCII_FOLDER, "files": [NON_ASCII_FILE], "content": NON_ASCII_FOLDER}
    if got == wanted:
        return f"OK ({NON_ASCII_FOLDER}/{NON_ASCII_FILE} read back identical)"
    return f"MISMATCH: sent {wanted!r}, got {got!r}"


REDIS_ANSWERS = {
    "open": "answers WITHOUT a password",
    "auth": "asks for a password",
    "loading": "is still loading its data",
    "down": "nothing answers",
    "other": "something that is not Redis answers",
}
# What follows an option naming one of these, up to the next option, is a password: hidden (the report
# goes in a bug report). Over-hiding costs nothing; a quoted password may hold spaces.
_SECRET_WORDS = ("pass", "auth")


def hide_passwords(command_line: str) -> str:
    shown, hiding = [], False
    for word in command_line.split():
        if word.startswith("-"):
            hiding = any(secret in word.lower() for secret in _SECRET_WORDS)
            shown.append(word)
        elif hiding:
            if shown[-1] != "<hidden>":
                shown.append("<hidden>")
        else:
            shown.append(word)
    return " ".join(shown)


def _redis_line() -> str:
    """What answers on Redis' port and how it was started: settles how Laragon's tray starts Redis."""
    listener = host.get_fact(RedisListener, endpoint=REDIS_ENDPOINT)
    answer = REDIS_ANSWERS.get(listener["answer"], listener["answer"])
    started = f"pid {listener['pid']}: {hide_passwords(listener['command'] or listener['path'] or '?')}"
    return f"{REDIS_ENDPOINT} {answer}" + (f" ({started})" if listener["pid"] else "")


def report_lines(settings: Any) -> list[str]:
    """The checklist, one line per finding (the host is only read)."""
    platform = resolve_platform(settings)
    system = host.get_fact(SystemSummary) or {}
    apache = host.get_fact(facts.ApacheInstallation, root=platform.apache_root) or {}
    built = host.get_fact(ModWsgiBuilt, venv=f"{settings.install_root}/venv") or {}
    lines = [
        f"impots Windows checklist for {host.name}: paste all of it (to the last dashes) in the bug report",
        f"windows      : {system.get('os')}; PowerShell {system.get('powershell')}",
        f"apache       : {platform.layout} {platform.apache_root} {apache.get('version')} "
        f"{apache.get('bits')}-bit",
        f"mod_wsgi     : wanted {mod_wsgi_package(settings)}; stamp {built.get('stamp')!r}; "
        f"built {', '.join(built.get('dist') or []) or 'nothing'}; {', '.join(built.get('modules') or [])}",
        f"non-ASCII    : {_non_ascii_line()}",
        f"httpd fails  : {_failing_httpd(platform.httpd)}",
        f"apache runs  : {_runtime_line(platform)}",
        f"redis        : {_redis_line()}",
    ]
    urls = {site.name: f"https://{site.name}{site.alias.rstrip('/')}/" for site in settings.sites}
    answers = host.get_fact(SitesAnswer, urls=list(urls.values()))
    for name, url in urls.items():
        lines.append(f"site         : {name} {url} -> {answers.get(url, 'no answer')}")
    return lines
