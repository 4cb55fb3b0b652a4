"""Apache on Windows as a transaction, with the same rules as Linux (``linux/operations/apache.py``):

- reload rule: a stamp file is written only after a successful apply; Apache is restarted when it is
  stopped or when any watched path (configuration, TLS files, app release, venv, instance files) is
  newer than the stamp. ``--dry`` on a converged host shows no change, and a run cut between writing a
  vhost and the restart is finished by the next run.
- rollback rule: before the first change of a file Apache reads, those files are copied into a snapshot
  (``apache_config_snapshot``); ``httpd -t`` failing, or Apache not staying up, puts the snapshot back
  (files it did not have are deleted) and fails with Apache's message; after the restart every site is
  fetched over HTTPS from the target, with the tail of its error log on failure. Only then is the
  snapshot dropped and the stamp written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, operation

from provisioning.windows.apache_start import ApacheStartError, start_recipe
from provisioning.windows.facts import PowerShellJsonFact
from provisioning.windows.powershell import fwd_path, json_fact_script, ps_array, ps_assign, win_path

NO_STAMP = "<no stamp>"

# --- facts ------------------------------------------------------------------------------------------

_CONFIG_FILES = r"""
$hashes = @{}
foreach ($file in $files) {
    $hashes[$file] = $null
    if (Test-Path -LiteralPath $file -PathType Leaf) {
        $hashes[$file] = (Get-FileHash -LiteralPath $file -Algorithm SHA256).Hash.ToLowerInvariant()
    }
}
$listed = $null
$manifest = Join-Path $snapshot 'manifest.json'
if (Test-Path -LiteralPath $manifest -PathType Leaf) {
    $listed = @()
    foreach ($entry in (ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($manifest)))) {
        $listed += $entry.path
    }
}
$result = @{ hashes = $hashes; snapshot = $listed }
"""


class ApacheConfigFiles(PowerShellJsonFact):
    """
    The files Apache reads that the deploy writes, in one round trip: ``{"hashes": {path: SHA256 or
    None when absent}, "snapshot": None or [paths]}``; ``snapshot`` lists the files of a snapshot that
    is waiting (taken by a run that did not finish), ``None`` when there is none.

    .. code:: python

        host.get_fact(ApacheConfigFiles, paths=["C:/Apache24/conf/httpd.conf"],
                      snapshot="C:/impots/state/apache-snapshot")
    """

    @staticmethod
    def default() -> dict:
        return {"hashes": {}, "snapshot": None}

    def command(self, paths: Sequence[str], snapshot: str) -> str:
        return json_fact_script(
            ps_assign(snapshot=win_path(snapshot))
            + f"$files = {ps_array(win_path(p) for p in paths)}\n"
            + _CONFIG_FILES.lstrip("\n")
        )

    def convert(self, value: dict) -> dict:
        hashes = value.get("hashes") or {}
        listed = value.get("snapshot")
        return {
            "hashes": {fwd_path(path): digest for path, digest in hashes.items()},
            "snapshot": None if listed is None else [fwd_path(path) for path in listed],
        }


# Laragon's Apache counts as running only in a desktop session (see apache_start.py). A folder is
# searched through, but no link is followed: the app junction changes (its own time) when a release is
# swapped in, and a release's instance junction leads to logs that change all the time.
_APPLY_STATE = r"""
$running = $false
if ($service) {
    $found = Get-Service -Name $service -ErrorAction SilentlyContinue
    $running = [bool]($found -and $found.Status -eq 'Running')
} else {
    $running = @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'httpd.exe' AND SessionId > 0" |
        Where-Object { $_.ExecutablePath -eq $httpd }).Count -gt 0
}
$since = $null
$changed = @()
if (Test-Path -LiteralPath $stamp -PathType Leaf) {
    $since = (Get-Item -LiteralPath $stamp -Force).LastWriteTimeUtc
    $stack = New-Object Collections.Stack
    foreach ($path in $paths) {
        $item = Get-Item -LiteralPath $path -Force -ErrorAction SilentlyContinue
        if ($item) { $stack.Push($item) }
    }
    while ($stack.Count -gt 0 -and $changed.Count -lt 5) {
        $item = $stack.Pop()
        if ($item.LastWriteTimeUtc -gt $since) { $changed += $item.FullName; continue }
        $link = $item.Attributes -band [IO.FileAttributes]::ReparsePoint
        if ($item -is [IO.DirectoryInfo] -and -not $link) {
            foreach ($child in $item.EnumerateFileSystemInfos()) { $stack.Push($child) }
        }
    }
    $since = $since.ToString('o')
} else { $changed = @($nostamp) }
$result = @{ running = $running; stamp = $since; changed = $changed }
"""


class ApacheApplyState(PowerShellJsonFact):
    """
    What decides a restart, in one round trip: ``{"running": bool, "stamp": ISO time or None,
    "changed": [watched paths newer than the stamp, at most 5]}`` (``["<no stamp>"]`` without a stamp).

    ``running``: the service is Running, or (no service: Laragon) an httpd.exe of that path runs in a
    desktop session (one in session 0, started over SSH by an older deploy, is unknown to Laragon's tray:
    it is restarted as the desktop user).
    ``paths``: files, or folders searched recursively (links are not followed).

    .. code:: python

        host.get_fact(ApacheApplyState, httpd="C:/Apache24/bin/httpd.exe", service="Apache2.4",
                      stamp="C:/impots/state/apache-applied.stamp", paths=["C:/Apache24/conf"])
    """

    @staticmethod
    def default() -> dict:
        return {"running": False, "stamp": None, "changed": ["<no fact>"]}

    def command(self, httpd: str, service: str | None, stamp: str, paths: Sequence[str]) -> str:
        return json_fact_script(
            ps_assign(httpd=win_path(httpd), service=service or "", stamp=win_path(stamp), nostamp=NO_STAMP)
            + f"$paths = {ps_array(win_path(p) for p in paths)}\n"
            + _APPLY_STATE.lstrip("\n")
        )

    def convert(self, value: dict) -> dict:
        return {
            "running": bool(value.get("running")),
            "stamp": value.get("stamp"),
            "changed": [fwd_path(p) for p in value.get("changed") or []],
        }


# --- snapshot ---------------------------------------------------------------------------------------

# A new snapshot is made in "<snapshot>.partial" and renamed at the end: a snapshot with a manifest is
# complete. One that is already there belongs to a run that did not finish: it holds the last
# configuration that worked, so it is kept, and only completed with files it does not list yet (they are
# not changed yet either). The manifest is replaced in one step.
_SNAPSHOT = r"""
$entries = @()
$known = @{}
$folder = $snapshot
$manifest = Join-Path $snapshot 'manifest.json'
if (Test-Path -LiteralPath $manifest -PathType Leaf) {
    foreach ($entry in (ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($manifest)))) {
        $entries += $entry
        $known[$entry.path] = $true
    }
} else {
    $folder = $snapshot + '.partial'
    foreach ($old in @($folder, $snapshot)) {
        if (Test-Path -LiteralPath $old) { Remove-Item -LiteralPath $old -Recurse -Force }
    }
    $null = [IO.Directory]::CreateDirectory($folder)
}
foreach ($file in $files) {
    if ($known.ContainsKey($file)) { continue }
    $copy = 'file' + $entries.Count
    $present = Test-Path -LiteralPath $file -PathType Leaf
    if ($present) { [IO.File]::Copy($file, (Join-Path $folder $copy), $true) }
    $entries += @{ path = $file; present = $present; copy = $copy }
}
$staged = Join-Path $folder 'manifest.json.new'
[IO.File]::WriteAllText($staged, (ConvertTo-Json -Compress -InputObject $entries))
$target = Join-Path $folder 'manifest.json'
if (Test-Path -LiteralPath $target -PathType Leaf) { [IO.File]::Replace($staged, $target, $null) }
else { [IO.File]::Move($staged, $target) }
if ($folder -ne $snapshot) { [IO.Directory]::Move($folder, $snapshot) }
Write-Output "snapshot of $($entries.Count) Apache files in $snapshot"
"""


@operation()
def apache_config_snapshot(files: Mapping[str, str | None], snapshot: str):
    """
    Copy the files Apache reads into ``snapshot`` before the first of them changes, so that a rejected
    configuration can be put back. Nothing when none will change; a snapshot left by a run that did not
    finish is kept (it holds the configuration that worked), only completed with files it lacks.

    + files: ``{path on the host: SHA256 it will have}`` (vhosts, httpd.conf, uploaded TLS files);
      ``None``: copied with the others, but this run does not change it
    + snapshot: the snapshot folder (under the install root); ``apache_applied`` drops it on success

    .. code:: python

        apache_config_snapshot(files={"C:/Apache24/conf/httpd.conf": "9f86d0..."},
                               snapshot="C:/impots/state/apache-snapshot")
    """
    state = host.get_fact(ApacheConfigFiles, paths=list(files), snapshot=snapshot)
    listed = state["snapshot"]
    if listed is not None:
        known = {path.lower() for path in listed}  # Windows paths: case does not matter
        if all(fwd_path(path).lower() in known for path in files):
            host.noop(f"a snapshot of an unfinished run is kept in {snapshot}")
            return
    else:
        wanted = {fwd_path(path): digest for path, digest in files.items() if digest is not None}
        if all(state["hashes"].get(path) == digest for path, digest in wanted.items()):
            host.noop(f"the {len(files)} files Apache reads are already as wanted")
            return
    yield (
        ps_assign(snapshot=win_path(snapshot))
        + f"$files = {ps_array(win_path(p) for p in files)}\n"
        + _SNAPSHOT.lstrip("\n")
    )


# --- configuration test, restart, smoke check ---------------------------------------------------------

# Puts every file back as the snapshot found it (deleting those it did not find), keeps the rejected
# files beside it for diagnosis, and uses the snapshot up. Returns what it did, for the error message.
_RESTORE_FUNCTION = r"""
function Restore-Snapshot {
    $manifest = Join-Path $snapshot 'manifest.json'
    if (-not (Test-Path -LiteralPath $manifest -PathType Leaf)) {
        return 'there was no snapshot to restore: the files are left as they are'
    }
    $rejected = $snapshot + '-rejected'
    if (Test-Path -LiteralPath $rejected) { Remove-Item -LiteralPath $rejected -Recurse -Force }
    $null = [IO.Directory]::CreateDirectory($rejected)
    # Assigned, not piped: Windows PowerShell's ConvertFrom-Json emits a JSON array as one object.
    $entries = ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($manifest))
    foreach ($entry in $entries) {
        $present = Test-Path -LiteralPath $entry.path -PathType Leaf
        if ($present) { [IO.File]::Copy($entry.path, (Join-Path $rejected $entry.copy), $true) }
        if ($entry.present) { [IO.File]::Copy((Join-Path $snapshot $entry.copy), $entry.path, $true) }
        elseif ($present) { Remove-Item -LiteralPath $entry.path -Force }
    }
    Remove-Item -LiteralPath $snapshot -Recurse -Force
    return "the previous configuration was restored (the rejected files are in $rejected)"
}
"""

# httpd -t through Process with redirected streams: its message is captured whole (the 5.1 call
# operator would turn each stderr line into an error record).
_CONFIG_TEST = r"""
$info = New-Object Diagnostics.ProcessStartInfo -ArgumentList $httpd, '-t'
$info.UseShellExecute = $false
$info.RedirectStandardOutput = $true
$info.RedirectStandardError = $true
$info.WorkingDirectory = Split-Path -Parent $httpd
$test = [Diagnostics.Process]::Start($info)
$testout = $test.StandardOutput.ReadToEndAsync()
$message = $test.StandardError.ReadToEnd()
$test.WaitForExit()
$message = ($testout.Result + $message).Trim()
if ($test.ExitCode -ne 0) {
    $restored = Restore-Snapshot
    [Console]::Error.WriteLine("httpd -t rejected the configuration:`r`n$message")
    [Console]::Error.WriteLine("impots: $restored; Apache was not restarted (it keeps its configuration)")
    exit 1
}
"""

# "Stays up": running and accepting TLS connections on 443 twice, $settle seconds apart, within
# $timeout seconds (a configuration that passes httpd -t can still fail to bind or load a module).
_RESTART = r"""
function Test-Https {
    $client = New-Object Net.Sockets.TcpClient
    try { return ($client.ConnectAsync($address, 443).Wait(1000) -and $client.Connected) }
    catch { return $false }
    finally { $client.Close() }
}
function Wait-ApacheUp {
    $deadline = [DateTime]::UtcNow.AddSeconds([int]$timeout)
    $upsince = $null
    while ([DateTime]::UtcNow -lt $deadline) {
        if ((Test-ApacheAlive) -and (Test-Https)) {
            if ($null -eq $upsince) { $upsince = [DateTime]::UtcNow }
            elseif (([DateTime]::UtcNow - $upsince).TotalSeconds -ge [int]$settle) { return $true }
        } else { $upsince = $null }
        Start-Sleep -Milliseconds 500
    }
    return $false
}
$failure = $null
try { Start-Apache } catch { $failure = $_.Exception.Message }
if (-not $failure -and -not (Wait-ApacheUp)) {
    $failure = "Apache did not stay up with ${address}:443 open (waited $timeout s)"
}
if ($failure) {
    $restored = Restore-Snapshot
    $again = 'started again'
    try { Start-Apache; if (-not (Wait-ApacheUp)) { $again = 'could NOT be started' } }
    catch { $again = 'could NOT be started' }
    $tail = Get-Content -LiteralPath $errorlog -Tail 20 -ErrorAction SilentlyContinue | Out-String
    [Console]::Error.WriteLine("impots: $failure; $restored and Apache $again")
    [Console]::Error.WriteLine("--- last lines of $errorlog ---`r`n$tail")
    exit 1
}
Write-Output "Apache restarted: ${address}:443 answers"
"""


def apply_script(
    httpd: str,
    service: str | None,
    desktop_user: str | None,
    snapshot: str,
    address: str,
    error_log: str,
    timeout: int = 30,
) -> str:
    """The start recipe's own check (Laragon: its desktop user is still logged on), ``httpd -t``
    (restore the snapshot and stop on failure), then the restart as the account that runs Apache and
    the stay-up check (restore the snapshot and start Apache again on failure)."""
    return (
        ps_assign(
            httpd=win_path(httpd),
            snapshot=win_path(snapshot),
            address=address,
            errorlog=win_path(error_log),
            timeout=str(timeout),
            settle="2",
        )
        + _RESTORE_FUNCTION.lstrip("\n")
        + start_recipe(httpd, service, desktop_user)
        + _CONFIG_TEST.lstrip("\n")
        + _RESTART.lstrip("\n")
    )


# Each site is fetched as a browser on the target would: TLS to the listen address with the site's name
# (SNI and certificate name), the certificate chain ending at the deploy's anchor (the CA, or the
# certificate itself) unless Windows already trusts it, redirects and cookies followed. Raw HTTP/1.0 on
# an SslStream: Windows PowerShell 5.1's web cmdlets cannot send a name to another address.
_SMOKE = r"""
$anchorcert = New-Object Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList $anchor
$validate = [Net.Security.RemoteCertificateValidationCallback]{
    param($source, $certificate, $chain, $errors)
    $bad = [int]$errors
    $mismatch = [int][Net.Security.SslPolicyErrors]::RemoteCertificateNameMismatch
    if ($checkname -ne '1') { $bad = $bad -band (-bnot $mismatch) }
    if ($bad -eq 0) { return $true }
    if ($bad -ne [int][Net.Security.SslPolicyErrors]::RemoteCertificateChainErrors) { return $false }
    $own = New-Object Security.Cryptography.X509Certificates.X509Chain
    $own.ChainPolicy.RevocationMode = 'NoCheck'
    $own.ChainPolicy.VerificationFlags = 'AllowUnknownCertificateAuthority'
    $null = $own.ChainPolicy.ExtraStore.Add($anchorcert)
    $leaf = New-Object Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList $certificate
    if (-not $own.Build($leaf)) { return $false }
    foreach ($element in $own.ChainElements) {
        if ($element.Certificate.Thumbprint -eq $anchorcert.Thumbprint) { return $true }
    }
    return $false
}
function Get-Page {
    param([Uri]$uri, [hashtable]$cookies)
    $client = New-Object Net.Sockets.TcpClient
    try {
        $client.ReceiveTimeout = 30000
        $client.SendTimeout = 30000
        $client.Connect($address, $uri.Port)
        $stream = $client.GetStream()
        $ssl = New-Object Net.Security.SslStream -ArgumentList $stream, $false, $validate
        $ssl.AuthenticateAsClient($uri.Host, $null, [Security.Authentication.SslProtocols]::Tls12, $false)
        $cookie = ''
        if ($cookies.Count) {
            $pairs = @($cookies.GetEnumerator() | ForEach-Object { $_.Key + '=' + $_.Value })
            $cookie = 'Cookie: ' + ($pairs -join '; ') + "`r`n"
        }
        $request = "GET $($uri.PathAndQuery) HTTP/1.0`r`nHost: $($uri.Host)`r`n"
        $request += "User-Agent: impots-smoke-check`r`n$cookie`r`n"
        $bytes = [Text.Encoding]::ASCII.GetBytes($request)
        $ssl.Write($bytes, 0, $bytes.Length)
        $ssl.Flush()
        $memory = New-Object IO.MemoryStream
        $ssl.CopyTo($memory)
        $raw = $memory.ToArray()
    } finally { $client.Close() }
    $text = [Text.Encoding]::GetEncoding(28591).GetString($raw)
    $end = $text.IndexOf("`r`n`r`n")
    if ($end -lt 0) { throw "no HTTP answer" }
    $head = $text.Substring(0, $end) -split "`r`n"
    $body = [Text.Encoding]::UTF8.GetString($raw, $end + 4, $raw.Length - $end - 4)
    $page = @{ status = [int](($head[0] -split ' ')[1]); location = $null; body = $body }
    foreach ($line in $head) {
        if ($line -match '^Location:\s*(.+)$') { $page.location = $Matches[1].Trim() }
        elseif ($line -match '^Set-Cookie:\s*([^=;\s]+)=([^;]*)') { $cookies[$Matches[1]] = $Matches[2] }
    }
    return $page
}
function Test-Site {
    param([string]$url, [string]$expect)
    $cookies = @{}
    $uri = [Uri]$url
    for ($hop = 0; $hop -lt 10; $hop++) {
        $page = Get-Page $uri $cookies
        if ($page.status -ge 300 -and $page.status -lt 400 -and $page.location) {
            $uri = New-Object Uri -ArgumentList $uri, $page.location
            continue
        }
        if ($page.status -ne 200) { return "HTTP $($page.status) at $uri" }
        if (-not $page.body.Contains($expect)) { return "200 at $uri but the page lacks '$expect'" }
        return ''
    }
    return "more than 10 redirects from $url"
}
$failures = @()
for ($i = 0; $i -lt $urls.Count; $i++) {
    $problem = ''
    for ($attempt = 1; $attempt -le 3; $attempt++) {
        try { $problem = Test-Site $urls[$i] $expects[$i] }
        catch { $problem = 'no answer (' + $_.Exception.Message + ')' }
        if (-not $problem) { break }
        Start-Sleep -Seconds 1
    }
    if ($problem) {
        $tail = Get-Content -LiteralPath $logs[$i] -Tail 20 -ErrorAction SilentlyContinue | Out-String
        $failures += "smoke check of $($sites[$i]) ($($urls[$i])) failed: $problem"
        $failures += "--- last lines of $($logs[$i]) ---`r`n$tail"
    } else {
        Write-Output "smoke check of $($sites[$i]) ($($urls[$i])): 200, found '$($expects[$i])'"
    }
}
if ($failures.Count) {
    [Console]::Error.WriteLine(($failures -join "`r`n"))
    [Console]::Error.WriteLine('impots: no stamp written: the next run applies the configuration again')
    exit 1
}
"""


def smoke_script(checks: Sequence[Mapping[str, Any]], address: str, anchor: str, check_name: bool) -> str:
    """Fetch every site over HTTPS from the target; fail naming each site that did not answer as
    expected, with the tail of its error log."""
    return (
        ps_assign(address=address, anchor=win_path(anchor), checkname="1" if check_name else "0")
        + f"$sites = {ps_array(c['name'] for c in checks)}\n"
        + f"$urls = {ps_array(c['url'] for c in checks)}\n"
        + f"$expects = {ps_array(c['expect'] for c in checks)}\n"
        + f"$logs = {ps_array(win_path(c['error_log']) for c in checks)}\n"
        + _SMOKE.lstrip("\n")
    )


# The snapshot goes first: cut between the two lines, the next run applies again (old stamp) with no
# snapshot to restore, which is safe; the other order could keep a stale snapshot for a later failure.
_FINISH = r"""
if (Test-Path -LiteralPath $snapshot) { Remove-Item -LiteralPath $snapshot -Recurse -Force }
$null = [IO.Directory]::CreateDirectory((Split-Path -Parent $stamp))
[IO.File]::WriteAllText($stamp, [DateTime]::UtcNow.ToString('o'))
"""


def finish_script(snapshot: str, stamp: str) -> str:
    return ps_assign(snapshot=win_path(snapshot), stamp=win_path(stamp)) + _FINISH.lstrip("\n")


@operation()
def apache_applied(
    httpd: str,
    service: str | None,
    stamp: str,
    snapshot: str,
    watched: Sequence[str],
    smoke_checks: Sequence[Mapping[str, Any]],
    address: str,
    error_log: str,
    tls_anchor: str,
    check_name: bool = True,
    desktop_user: str | None = None,
):
    """
    Make the running Apache serve the written configuration: when it is stopped, or any watched path is
    newer than the stamp, run ``httpd -t`` (on failure restore the snapshot and fail with Apache's
    message), restart it as the account that runs it (``Restart-Service``; Laragon: httpd.exe started
    as its desktop user, in their session, by a scheduled task, see ``apache_start.py``) and check it
    stays up (restoring the snapshot if not), smoke-check every site over HTTPS, then drop the snapshot
    and write the stamp. Laragon without a desktop user is refused when the operation is planned.

    + httpd: path of httpd.exe
    + service: the Windows service running it, or ``None`` (a plain process: Laragon)
    + stamp: file written after a successful apply
    + snapshot: the folder ``apache_config_snapshot`` fills
    + watched: files or folders whose change needs a restart
    + smoke_checks: one dict per site: ``name``, ``url``, ``expect``, ``error_log``
    + address: where Apache listens (the sites' names are sent there)
    + error_log: Apache's main error log (its tail is shown when Apache does not stay up)
    + tls_anchor: the CA file, or the certificate itself, that the sites' certificates must chain to
    + check_name: the certificate must name each site (off for a certificate the deploy did not make)
    + desktop_user: Laragon (no service): ``PC\\user`` whose tray runs Apache; httpd is started as them

    .. code:: python

        apache_applied(httpd="C:/Apache24/bin/httpd.exe", service="Apache2.4",
                       stamp="C:/impots/state/apache-applied.stamp",
                       snapshot="C:/impots/state/apache-snapshot", watched=["C:/Apache24/conf/httpd.conf"],
                       smoke_checks=[{"name": "date-time-server", "url": "https://date-time-server/",
                                      "expect": "Date et heure du moment",
                                      "error_log": "C:/Apache24/logs/date-time-server-error.log"}],
                       address="127.0.0.1", error_log="C:/Apache24/logs/error.log",
                       tls_anchor="C:/impots/tls/server.pem")
    """
    try:
        apply = apply_script(httpd, service, desktop_user, snapshot, address, error_log)
    except ApacheStartError as error:
        raise OperationError(str(error)) from None
    state = host.get_fact(ApacheApplyState, httpd=httpd, service=service, stamp=stamp, paths=list(watched))
    if state["running"] and not state["changed"]:
        host.noop("Apache is already running with this configuration")
        return
    yield apply
    if smoke_checks:
        yield smoke_script(smoke_checks, address, tls_anchor, check_name)
    yield finish_script(snapshot, stamp)
