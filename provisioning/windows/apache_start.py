"""How the Apache transaction (``apache.py``) starts Apache again, as the account that runs it.

Each recipe is PowerShell defining ``Start-Apache`` (stop what runs, start again) and ``Test-ApacheAlive``
(is it still running), which the transaction's restart and stay-up check call:

- Apache Lounge: a Windows service, ``Restart-Service``; it runs as the service's account.
- Laragon: no service; Laragon's tray starts and reloads httpd.exe as the desktop user, in that user's
  session. The ACLs grant that user, so httpd is started as them too: a one-shot scheduled task with an
  interactive principal runs httpd.exe in their session, as if Laragon had started it. Started from the
  SSH session instead (even detached through WMI), httpd would run as the SSH account in session 0,
  unknown to Laragon's tray, whose next Start/Reload then fails on ports in use. The task needs that
  user logged on: the recipe checks it first (Laragon's tray runs as them in a desktop session) and
  stops the transaction before anything is stopped or started.
"""

from __future__ import annotations

from provisioning.windows.powershell import ps_assign

STARTER_TASK = "impots - start Laragon httpd as the desktop user"


class ApacheStartError(ValueError):
    """Apache cannot be started as the account that must run it."""


_SERVICE = r"""
function Start-Apache { Restart-Service -Name $service }
function Test-ApacheAlive {
    $found = Get-Service -Name $service -ErrorAction SilentlyContinue
    return [bool]($found -and $found.Status -eq 'Running')
}
"""

# Runs at once, before httpd -t: the files are put back and nothing is stopped when the desktop user
# has logged off (or closed Laragon) since the facts were read.
_DESKTOP_SESSION_CHECK = r"""
$desktop = $false
foreach ($p in @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'laragon.exe' AND SessionId > 0")) {
    $owner = Invoke-CimMethod -InputObject $p -MethodName GetOwner
    if (($owner.Domain + '\' + $owner.User) -eq $desktopuser) { $desktop = $true }
}
if (-not $desktop) {
    $restored = Restore-Snapshot
    $problem = "impots: $desktopuser has no Laragon open in a desktop session (logged off, or Laragon "
    $problem += "closed): Laragon's Apache runs as that user, in that session, and is started only there; "
    $problem += "log on as $desktopuser, open Laragon and run the deploy again"
    [Console]::Error.WriteLine($problem)
    [Console]::Error.WriteLine("impots: $restored; Apache was not restarted")
    exit 1
}
"""

# Stop-ScheduledTask first: a task instance still running the previous httpd would make the task
# scheduler ignore the new start (its default for a running task). Every httpd.exe of this Apache is
# stopped, Laragon's own and any session-0 one an older deploy started. Alive: an httpd.exe of this
# path in a desktop session (the task's; session 0 would be the SSH account's).
_DESKTOP_USER = r"""
function Start-Apache {
    $registered = Get-ScheduledTask -TaskName $task -ErrorAction SilentlyContinue
    if ($registered) { Stop-ScheduledTask -TaskName $task }
    $running = @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'httpd.exe'" |
        Where-Object { $_.ExecutablePath -eq $httpd })
    foreach ($p in $running) { Stop-Process -Id $p.ProcessId -Force -ErrorAction SilentlyContinue }
    foreach ($p in $running) { Wait-Process -Id $p.ProcessId -Timeout 30 -ErrorAction SilentlyContinue }
    $action = New-ScheduledTaskAction -Execute $httpd -WorkingDirectory (Split-Path -Parent $httpd)
    $principal = New-ScheduledTaskPrincipal -UserId $desktopuser -LogonType Interactive -RunLevel Limited
    $options = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
        -ExecutionTimeLimit ([TimeSpan]::Zero)
    $null = Register-ScheduledTask -TaskName $task -Action $action -Principal $principal `
        -Settings $options -Force
    Start-ScheduledTask -TaskName $task
}
function Test-ApacheAlive {
    return @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'httpd.exe' AND SessionId > 0" |
        Where-Object { $_.ExecutablePath -eq $httpd }).Count -gt 0
}
"""


def start_recipe(httpd: str, service: str | None, desktop_user: str | None) -> str:
    """The PowerShell that defines ``Start-Apache`` and ``Test-ApacheAlive`` for this Apache (it needs
    ``$httpd`` and ``Restore-Snapshot`` defined before it). Laragon (no service) without a desktop user
    is refused: httpd would run as the SSH account, in session 0."""
    if service:
        return ps_assign(service=service) + _SERVICE.lstrip("\n")
    if not desktop_user:
        raise ApacheStartError(
            f"no Windows service runs {httpd} (Laragon) and no desktop user runs Laragon: its Apache is "
            "started as that user, in their session; log on to Windows, open Laragon and run the deploy again"
        )
    return (
        ps_assign(desktopuser=desktop_user, task=STARTER_TASK)
        + _DESKTOP_SESSION_CHECK.lstrip("\n")
        + _DESKTOP_USER.lstrip("\n")
    )
