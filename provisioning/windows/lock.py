"""One deploy at a time per Windows host: the Linux lock (``provisioning.linux.operations.lock``) in
PowerShell, held from the first operation of ``deploy_windows`` to the last.

The lock is a folder under the install's state folder (administrators only), made with
``New-Item -ItemType Directory``, which fails when it exists (atomic on NTFS), holding one line:
``<run id> <lease end> <start> <holder>``, the Linux record. Same semantics and messages as Linux:
a second run waits ``impots_lock_wait`` seconds then fails naming the holder; a failed operation drops
the lock (a pyinfra callback); a dead run's lock lasts its lease, and this controller takes over at
once from a run of its own whose pid is gone (the controller-side memory is the Linux module's: it is
not Linux-specific). ``--dry`` takes no lock, it only warns. Unlike Linux's /run/lock, the folder
survives a reboot of the host: only the lease frees it then.

On a fresh host the lock is the first thing made under the install root: a missing install root is
created with the ACL the folder step gives it (inheritance cut, ``root_grants``), in the same call
(``Directory.CreateDirectory`` with a ``DirectorySecurity``), so that neither it nor the state folder
inheriting from it is ever open to the users the drive's root lets create and change folders.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host, logger, state
from pyinfra.api import FactBase, operation
from pyinfra.api.state import BaseStateCallback

from provisioning.linux.operations.lock import (
    HOLDER,
    LEASE_SECONDS,
    RUN_ID,
    only_planning,
    remember_run,
    runs_to_take_over,
    settle_acquire,
)
from provisioning.windows.powershell import ps_array, ps_assign, ps_quote, win_path

# Prints "acquired [<record taken over>]" or "busy <record>", like the Linux script. Stale: the lease
# ended, the record names a dead run of this controller ($stale), or a folder without a record for 30 s.
# A stale lock is renamed away (one waiter wins), then every waiter races for New-Item again.
_ACQUIRE = r"""
$end = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds() + [long]$wait
$took = ''
if ($root -and -not (Test-Path -LiteralPath $root -PathType Container)) {
    $security = New-Object Security.AccessControl.DirectorySecurity
    $security.SetAccessRuleProtection($true, $false)
    foreach ($grant in $rootgrants) {
        $sid, $rights = $grant -split '=', 2
        $identity = New-Object Security.Principal.SecurityIdentifier $sid
        $inherit = 'ContainerInherit, ObjectInherit'
        $arguments = @($identity, $rights, $inherit, 'None', 'Allow')
        $rule = New-Object -TypeName Security.AccessControl.FileSystemAccessRule -ArgumentList $arguments
        $security.AddAccessRule($rule)
    }
    $null = [IO.Directory]::CreateDirectory($root, $security)
}
$null = [IO.Directory]::CreateDirectory((Split-Path -Parent $lock))
while ($true) {
    $now = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
    $made = $false
    try { $null = New-Item -ItemType Directory -Path $lock -ErrorAction Stop; $made = $true } catch { }
    if ($made) {
        [IO.File]::WriteAllText("$lock\record.new", "$me $($now + [long]$lease) $now $holder")
        Move-Item -LiteralPath "$lock\record.new" -Destination "$lock\record" -Force
        Write-Output ("acquired $took".Trim())
        exit 0
    }
    $rec = ''
    try { $rec = [IO.File]::ReadAllText("$lock\record").Trim() } catch { }
    $parts = $rec -split ' ', 3
    if ($rec -and $parts[0] -eq $me) { Write-Output 'acquired'; exit 0 }
    $expired = $false
    if (-not $rec) {
        $item = Get-Item -LiteralPath $lock -ErrorAction SilentlyContinue
        if ($item -and ([DateTime]::UtcNow - $item.CreationTimeUtc).TotalSeconds -gt 30) { $expired = $true }
    } elseif (($stale -split ' ') -contains $parts[0]) {
        $expired = $true
    } else {
        $until = [long]0
        if (-not [long]::TryParse($parts[1], [ref]$until) -or $until -le $now) { $expired = $true }
    }
    if ($expired) {
        $again = ''
        try { $again = [IO.File]::ReadAllText("$lock\record").Trim() } catch { }
        if ($again -eq $rec) {
            $aside = "$lock.stale.$PID"
            try {
                Move-Item -LiteralPath $lock -Destination $aside -ErrorAction Stop
                Remove-Item -LiteralPath $aside -Recurse -Force
                $took = $rec
            } catch { }
        }
        continue
    }
    if ($now -ge $end) { Write-Output "busy $rec"; exit 0 }
    Start-Sleep -Seconds 1
}
"""

_RELEASE = r"""
$rec = ''
try { $rec = [IO.File]::ReadAllText("$lock\record").Trim() } catch { }
if ($rec -and ($rec -split ' ')[0] -eq $me) { Remove-Item -LiteralPath $lock -Recurse -Force }
Write-Output 'released'
"""

_READ = r"""
try { Write-Output ([IO.File]::ReadAllText("$lock\record").Trim()) } catch { }
"""


def lock_path(state_dir: str) -> str:
    """The lock folder under the install's state folder (administrators only)."""
    return f"{state_dir}/deploy-lock"


class WinDeployLock(FactBase[str]):
    """
    Takes (``action="acquire"``), drops (``"release"``) or reads (``"read"``) the deploy lock at
    ``lock``; returns the script's one line, as the Linux ``DeployLock`` does. A fact: holding the
    lock changes nothing on the host.
    """

    @staticmethod
    def default() -> str:
        return ""

    def command(
        self,
        action: str,
        lock: str,
        run_id: str,
        wait: int = 0,
        stale: str = "",
        root: str = "",
        root_grants: tuple[str, ...] = (),
    ) -> str:
        values = {"lock": win_path(lock), "me": run_id}
        if action == "read":
            return ps_assign(lock=win_path(lock)) + _READ.lstrip()
        if action == "release":
            return ps_assign(**values) + _RELEASE.lstrip()
        values |= {"wait": str(wait), "lease": str(LEASE_SECONDS), "holder": HOLDER, "stale": stale}
        values |= {"root": win_path(root)}
        return ps_assign(**values) + f"$rootgrants = {ps_array(root_grants)}\n" + _ACQUIRE.lstrip()

    def process(self, output: list[str]) -> str:
        return "\n".join(output).strip()


class _ReleaseOnError(BaseStateCallback):
    """pyinfra runs nothing more on a host after a failed operation: drop its lock there and then."""

    def __init__(self) -> None:
        self.locks: dict[str, str] = {}  # host name -> its lock folder (install roots may differ)

    def operation_host_error(self, state, host, op_hash, retry_count: int = 0, max_retries: int = 0) -> None:
        if host.name not in self.locks:
            return
        try:
            host.get_fact(WinDeployLock, action="release", lock=self.locks[host.name], run_id=RUN_ID)
        except Exception as error:  # the connection itself may be what failed: the lease frees it
            logger.warning(f"{host.name}: could not drop the deploy lock ({error}); its lease will")
            return
        remember_run(host.name, [RUN_ID], held=False)


def _failure(problem: str) -> str:
    """A script that fails this host only, with ``problem`` on stderr (exit 75, as on Linux)."""
    return f"[Console]::Error.WriteLine({ps_quote('impots: ' + problem)})\nexit 75"


def root_grants(full: Sequence[str], read: Sequence[str] = ()) -> tuple[str, ...]:
    """``SID=rights`` for a ``FileSystemAccessRule``: the install root's ACL as the folder step sets it
    (``operations.restricted_acl``: full control, or read & execute)."""
    rights = {sid: "ReadAndExecute" for sid in read} | {sid: "FullControl" for sid in full}
    return tuple(f"{sid}={right}" for sid, right in sorted(rights.items()))


@operation()
def win_deploy_lock_taken(lock: str, wait: int = 120, root: str = "", grants: Sequence[str] = ()):
    """
    Take this host's deploy lock (first operation of the Windows deploy): wait up to ``wait`` seconds
    for another run, then fail naming it. While planning (``--dry``) only warn about a holder.

    + lock: the lock folder (``lock_path(state_dir)``)
    + wait: seconds to wait for a run that holds the lock (``impots_lock_wait``)
    + root, grants: the install root and its ACL (``root_grants``), given to it if the lock makes it
    """
    handler = next((h for h in state.callback_handlers if isinstance(h, _ReleaseOnError)), None)
    if handler is None:
        handler = _ReleaseOnError()
        state.add_callback_handler(handler)
    handler.locks[host.name] = lock
    if only_planning(WinDeployLock, lock=lock):
        return
    dead = runs_to_take_over()
    answer = host.get_fact(
        WinDeployLock,
        action="acquire",
        lock=lock,
        run_id=RUN_ID,
        wait=wait,
        stale=" ".join(dead),
        root=root,
        root_grants=tuple(grants),
    )
    problem = settle_acquire(answer, wait, win_path(lock), dead)
    if problem:
        yield _failure(problem)
        return
    host.noop(f"deploy lock {win_path(lock)} taken (run {RUN_ID})")


@operation()
def win_deploy_lock_released(lock: str):
    """Drop this host's deploy lock if this run holds it (last operation of the Windows deploy)."""
    if state.is_executing:
        host.get_fact(WinDeployLock, action="release", lock=lock, run_id=RUN_ID)
        remember_run(host.name, [RUN_ID], held=False)
    host.noop(f"deploy lock {win_path(lock)} released")
    return
    yield
