"""PowerShell operations for Windows hosts reached through ``@winssh``.

In pyinfra's style: each operation reads facts, compares them with the wanted state and yields PowerShell
scripts (or file uploads), or calls ``host.noop`` when there is nothing to do, so a second run reports no
change. Scripts receive their arguments as single-quoted literals assigned in front of a fixed body
(``ps_assign``); secrets never appear in a script (they travel over SFTP into an ACL'd folder).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from io import BytesIO

from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, OperationError, operation
from pyinfra.api.output import format_text
from pyinfra.operations.util.files import generate_color_diff

from provisioning.windows import facts
from provisioning.windows.powershell import fwd_path, ps_array, ps_assign, win_path
from provisioning.windows.tls import certificate_thumbprint

# Well-known SIDs: names like "Administrators" are translated on French Windows ("Administrateurs").
ADMINISTRATORS_SID = "S-1-5-32-544"
SYSTEM_SID = "S-1-5-18"

MARKER = "impots (managed by pyinfra)"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- files and folders ----------------------------------------------------------------------------


def _log_diff(dest: str, current: str | None, wanted: str) -> None:
    """With ``--diff``, show what a text file will become (as pyinfra's files.put does)."""
    if not state.config.DIFF:
        return
    verb = "create" if current is None else "modify"
    host.log(f"Will {verb} {format_text(dest, bold=True)}", logger.info)
    old = (current or "").replace("\r\n", "\n").splitlines(keepends=True)
    for line in generate_color_diff(old, wanted.replace("\r\n", "\n").splitlines(keepends=True)):
        logger.info("  %s", line)
    logger.info("")


@operation()
def directory(path: str):
    """
    Make sure a folder exists (parents included).

    + path: the folder, ``C:/x`` or ``C:\\x``

    .. code:: python

        directory(name="Install root", path="C:/impots")
    """
    if host.get_fact(facts.Directory, path=path):
        host.noop(f"folder {path} already exists")
        return
    yield ps_assign(p=win_path(path)) + "$null = [IO.Directory]::CreateDirectory($p)"


@operation()
def put_bytes(dest: str, content: bytes):
    """
    Upload ``content`` to ``dest`` over SFTP when the file's SHA256 differs (the folder must exist).

    + dest: remote file
    + content: the bytes wanted there

    .. code:: python

        put_bytes(name="Vhost", dest="C:/laragon/etc/apache2/sites-enabled/x.conf", content=b"...")
    """
    current_hash = host.get_fact(facts.FileHash, path=dest)
    if current_hash == sha256_hex(content):
        host.noop(f"{dest} is already up to date")
        return
    if state.config.DIFF:
        current = host.get_fact(facts.FileText, path=dest) if current_hash else None
        _log_diff(dest, current, content.decode("utf-8", errors="replace"))
    yield FileUploadCommand(BytesIO(content), dest)


@operation()
def put_local_file(src: str, dest: str):
    """
    Upload the controller file ``src`` to ``dest`` when their SHA256 differ (the folder must exist).

    .. code:: python

        put_local_file(name="Certificate", src="tls/site.pem", dest="C:/impots/tls/site.pem")
    """
    with open(src, "rb") as local:
        digest = sha256_hex(local.read())
    if host.get_fact(facts.FileHash, path=dest) == digest:
        host.noop(f"{dest} is already up to date")
        return
    yield FileUploadCommand(src, dest)


_RESTRICT_ACL = r"""
& { $ErrorActionPreference = 'Continue'; & icacls.exe $p /inheritance:r /grant:r @grants /Q }
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
"""


@operation()
def restricted_acl(
    path: str, folder: bool, full: Sequence[str], read: Sequence[str] = (), modify: Sequence[str] = ()
):
    """
    Cut ACL inheritance on a file or folder and grant exactly these SIDs (folders: inherited by content).

    + folder: a folder (rules inherited by what it contains) or a file
    + full: SIDs given full control (Administrators, SYSTEM)
    + read: SIDs given read & execute (the Apache account)
    + modify: SIDs given modify (e.g. the Apache account on the logs folder)

    Compared by the set of SIDs with an Allow rule and the "protected" flag (``FileAcl``).

    .. code:: python

        restricted_acl(path="C:/impots", folder=True, full=[ADMINISTRATORS_SID, SYSTEM_SID],
                       read=["S-1-5-21-1-2-3-1001"])
    """
    wanted = sorted(set(full) | set(read) | set(modify))
    acl = host.get_fact(facts.FileAcl, path=path)
    if acl is not None and acl["protected"] and acl["sids"] == wanted:
        host.noop(f"{path} is already restricted to {', '.join(wanted)}")
        return
    inherit = "(OI)(CI)" if folder else ""
    grants = []
    # One grant per SID, the strongest right wins (icacls /grant:r replaces that SID's earlier grant).
    for sid in wanted:
        right = "F" if sid in full else "M" if sid in modify else "RX"
        grants.append(f"*{sid}:{inherit}{right}")
    yield (ps_assign(p=win_path(path)) + "$grants = " + ps_array(grants) + "\n" + _RESTRICT_ACL.lstrip())


# --- marked blocks (hosts file, httpd.conf) ------------------------------------------------------------


def block_lines(marker: str, lines: Sequence[str]) -> list[str]:
    return [f"# BEGIN {marker}", *lines, f"# END {marker}"]


def _block_pattern(marker: str) -> re.Pattern[str]:
    return re.compile(
        rf"^# BEGIN {re.escape(marker)}[ \t]*\r?\n.*?^# END {re.escape(marker)}[ \t]*(?:\r?\n|\Z)",
        re.MULTILINE | re.DOTALL,
    )


def without_marked_block(text: str, marker: str = MARKER) -> str:
    """``text`` without any block of ``marker`` (what the rest of the file says)."""
    return _block_pattern(marker).sub("", text)


def replace_marked_block(text: str | None, marker: str, lines: Sequence[str], newline: str = "\r\n") -> str:
    """``text`` with the block between ``# BEGIN marker`` and ``# END marker`` set to ``lines``.

    The block is appended when absent; extra copies (a file edited by hand) are removed so the block
    is there exactly once. Everything outside the block is kept byte for byte.
    """
    block = newline.join(block_lines(marker, lines)) + newline
    text = text or ""
    matches = list(_block_pattern(marker).finditer(text))
    if not matches:
        if text and not text.endswith("\n"):
            text += newline
        return text + block
    first = matches[0]
    result = text[: first.start()] + block
    position = first.end()
    for match in matches[1:]:
        result += text[position : match.start()]
        position = match.end()
    return result + text[position:]


@operation()
def marked_block(path: str, lines: Sequence[str], marker: str = MARKER, newline: str = "\r\n"):
    """
    Keep a block of lines between ``# BEGIN <marker>`` and ``# END <marker>`` in a text file, once.

    + path: the file (created if missing); the rest of the file is kept byte for byte
    + lines: the block's content
    + newline: line end of the block (Windows files: CRLF)

    .. code:: python

        marked_block(path="C:/Windows/System32/drivers/etc/hosts", lines=["127.0.0.1 site"])
    """
    current = host.get_fact(facts.FileText, path=path)
    wanted = replace_marked_block(current, marker, lines, newline)
    if current == wanted:
        host.noop(f"the block in {path} is already up to date")
        return
    _log_diff(path, current, wanted)
    # Uploaded beside the file, then written in by one WriteAllBytes: a dropped SFTP transfer never
    # leaves half a hosts file or httpd.conf, and the file keeps its ACL (overwritten, not replaced).
    yield FileUploadCommand(BytesIO(wanted.encode("utf-8")), f"{path}.impots-new")
    yield ps_assign(p=win_path(path), new=win_path(f"{path}.impots-new")) + _REPLACE_CONTENT.lstrip()


_REPLACE_CONTENT = r"""
[IO.File]::WriteAllBytes($p, [IO.File]::ReadAllBytes($new))
Remove-Item -LiteralPath $new -Force
"""


# --- Python: virtual environment, requirements, mod_wsgi --------------------------------------------

_MAKE_VENV = r"""
if (Test-Path -LiteralPath $venv) {
    & { $ErrorActionPreference = 'Continue'; & cmd.exe /d /c rmdir /s /q $venv }
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
& { $ErrorActionPreference = 'Continue'; & $python -m venv $venv }
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
"""


@operation()
def venv(python: str, path: str):
    """
    A virtual environment made from ``python``; re-made when it was made from another Python.

    + python: the base interpreter (``C:/Program Files/Python311/python.exe``)
    + path: the venv folder

    .. code:: python

        venv(python="C:/Program Files/Python311/python.exe", path="C:/impots/venv")
    """
    home = host.get_fact(facts.VenvHome, venv=path)
    wanted_home = fwd_path(python).rsplit("/", 1)[0]
    if home is not None and home.lower() == wanted_home.lower():
        host.noop(f"{path} already uses {python}")
        return
    yield ps_assign(python=win_path(python), venv=win_path(path)) + _MAKE_VENV.lstrip()


def stamp_path(venv_path: str, name: str) -> str:
    return f"{venv_path}/impots-{name}.stamp"


_PIP_INSTALL = r"""
& { $ErrorActionPreference = 'Continue'; & $python -m pip install --disable-pip-version-check --no-input `
    --requirement $requirements }
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
[IO.File]::WriteAllText($stamp, $digest)
"""


@operation()
def pip_requirements(venv_path: str, requirements: bytes):
    """
    ``pip install -r`` the pinned requirements into a venv when they changed since the last success.

    A stamp file in the venv holds the SHA256 of the requirements installed last; it is written only
    after pip succeeded, so a failed install is retried on the next run.

    .. code:: python

        pip_requirements(venv_path="C:/impots/venv", requirements=open("requirements/app.txt", "rb").read())
    """
    digest = sha256_hex(requirements)
    stamp = stamp_path(venv_path, "requirements")
    if host.get_fact(facts.FileText, path=stamp) == digest:
        host.noop("requirements already installed")
        return
    remote = f"{venv_path}/impots-requirements.txt"
    yield FileUploadCommand(BytesIO(requirements), remote)
    yield (
        ps_assign(
            python=win_path(f"{venv_path}/Scripts/python.exe"),
            requirements=win_path(remote),
            stamp=win_path(stamp),
            digest=digest,
        )
        + _PIP_INSTALL.lstrip()
    )


_MOD_WSGI_INSTALL = r"""
$env:MOD_WSGI_APACHE_ROOTDIR = $apache
& { $ErrorActionPreference = 'Continue'; & $python -m pip install --disable-pip-version-check --no-input `
    --no-cache-dir --force-reinstall --no-deps $package }
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
[IO.File]::WriteAllText($stamp, $wanted)
"""


@operation()
def mod_wsgi(venv_path: str, apache_root: str, package: str):
    """
    Build and install mod_wsgi in a venv against the Apache at ``apache_root``.

    ``MOD_WSGI_APACHE_ROOTDIR`` is given with forward slashes (mod_wsgi's build splices it into paths);
    ``--no-cache-dir`` and ``--force-reinstall`` make pip compile again instead of reusing a wheel built
    for another Apache. Re-built when the package pin or the Apache root changed (stamp file).

    + package: the pinned requirement, e.g. ``mod-wsgi==6.1.1``

    .. code:: python

        mod_wsgi(venv_path="C:/impots/venv", apache_root="C:/Apache24", package="mod-wsgi==6.1.1")
    """
    wanted = f"{package} apache={fwd_path(apache_root)}"
    stamp = stamp_path(venv_path, "mod_wsgi")
    if host.get_fact(facts.FileText, path=stamp) == wanted:
        host.noop(f"{package} already built for {apache_root}")
        return
    yield (
        ps_assign(
            python=win_path(f"{venv_path}/Scripts/python.exe"),
            apache=fwd_path(apache_root),
            package=package,
            stamp=win_path(stamp),
            wanted=wanted,
        )
        + _MOD_WSGI_INSTALL.lstrip()
    )


# --- the application release --------------------------------------------------------------------------

# cmd's rmdir removes junctions without following them: Windows PowerShell 5.1's Remove-Item -Recurse
# would delete the contents of the instance folder a release's junction points to. tar.exe is System32's
# (bsdtar): a Git, MSYS2 or Cygwin tar found first on PATH reads "C:\..." as a remote host.
_EXTRACT_RELEASE = r"""
$actual = (Get-FileHash -LiteralPath $archive -Algorithm SHA256).Hash.ToLowerInvariant()
if ($actual -ne $sha256) { throw "uploaded artifact $archive has SHA256 $actual, expected $sha256" }
foreach ($old in @($staging, $release)) {
    if (Test-Path -LiteralPath $old) {
        & { $ErrorActionPreference = 'Continue'; & cmd.exe /d /c rmdir /s /q $old }
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    }
}
$null = [IO.Directory]::CreateDirectory($staging)
$tar = Join-Path ([Environment]::GetFolderPath('System')) 'tar.exe'
& { $ErrorActionPreference = 'Continue'; & $tar -x -z -f $archive -C $staging }
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
$null = New-Item -ItemType Junction -Path (Join-Path $staging 'instance') -Value $instance
Rename-Item -LiteralPath $staging -NewName (Split-Path -Leaf $release)
Remove-Item -LiteralPath $archive -Force
if (Test-Path -LiteralPath $app) {
    & { $ErrorActionPreference = 'Continue'; & cmd.exe /d /c rmdir $app }
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
$null = New-Item -ItemType Junction -Path $app -Value $release
"""


@operation()
def app_release(artifact_path: str, sha256: str, app: str, releases: str, instance: str):
    """
    Put the app artifact in place as a new release when its SHA256 changed, keeping the instance folder.

    The tarball is uploaded, checked, extracted with System32's ``tar.exe`` (Windows 10 1803+) into a new
    ``releases/<sha>`` folder whose ``instance`` is a junction to the persistent instance folder, then
    the ``app`` junction is switched to it. ``app`` must be a junction (or absent): a real folder there is
    refused before anything changes.

    + artifact_path: the tarball on the controller
    + app: the junction the vhosts point to (``C:/impots/app``)
    + releases: where releases are unpacked
    + instance: the persistent instance folder (config, secrets, logs)

    .. code:: python

        app_release(artifact_path=a.path, sha256=a.sha256, app="C:/impots/app",
                    releases="C:/impots/releases", instance="C:/impots/instance")
    """
    release = f"{releases}/{sha256[:16]}"
    current = host.get_fact(facts.LinkTarget, path=app)
    if current is not None and current["type"] != "Junction":
        raise OperationError(
            f"{app} is a {current['type'].lower()}, not the junction this deploy manages: move it away first"
        )
    if current is not None and fwd_path(current["target"] or "").lower() == release.lower():
        host.noop(f"release {sha256[:16]} is already in place")
        return
    archive = f"{releases}/{sha256[:16]}.tar.gz"
    yield FileUploadCommand(artifact_path, archive)
    yield (
        ps_assign(
            archive=win_path(archive),
            sha256=sha256,
            staging=win_path(f"{release}.new"),
            release=win_path(release),
            instance=win_path(instance),
            app=win_path(app),
        )
        + _EXTRACT_RELEASE.lstrip()
    )


# --- secrets -------------------------------------------------------------------------------------------

_WRITE_SECRETS = r"""
$values = @{}
if (Test-Path -LiteralPath $target -PathType Leaf) {
    $old = [IO.File]::ReadAllText($target) | ConvertFrom-Json
    foreach ($property in $old.PSObject.Properties) { $values[$property.Name] = $property.Value }
}
$given = [IO.File]::ReadAllText($staged) | ConvertFrom-Json
foreach ($property in $given.PSObject.Properties) { $values[$property.Name] = $property.Value }
$random = [Security.Cryptography.RandomNumberGenerator]::Create()
foreach ($name in $generate) {
    if (-not $values[$name]) {
        $bytes = New-Object byte[] 32
        $random.GetBytes($bytes)
        $values[$name] = [Convert]::ToBase64String($bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_')
    }
}
if (-not (Test-Path -LiteralPath $target -PathType Leaf)) { [IO.File]::WriteAllText($target, '{}') }
& { $ErrorActionPreference = 'Continue'; & icacls.exe $target /inheritance:r /grant:r @grants /Q }
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
$json = ConvertTo-Json -InputObject $values -Compress
[IO.File]::WriteAllText($target, $json, (New-Object System.Text.UTF8Encoding $false))
Remove-Item -LiteralPath $staged -Force
"""


@operation()
def secrets_file(
    path: str, given: Mapping[str, str | None], generate: Sequence[str], reader_sid: str | Sequence[str]
):
    """
    The app's secrets file (JSON), readable only by Administrators, SYSTEM and the Apache account.

    + given: secrets from data/environment (``None`` = keep the one on the host, or generate it)
    + generate: keys made up on the host (32 random bytes, URL-safe base64) when missing
    + reader_sid: the account(s) Apache runs as (read access): one SID or several

    Given values travel over SFTP into the (already restricted) folder of ``path`` and are merged there;
    no secret is ever on a command line. Idempotence compares SHA256 digests of the values
    (``JsonKeyDigests``) and the ACL (``FileAcl``).

    .. code:: python

        secrets_file(path="C:/impots/instance/secrets.json", given={"secret_key": None},
                     generate=["secret_key"], reader_sid="S-1-5-18")
    """
    provided = {key: value for key, value in given.items() if value is not None}
    digests = host.get_fact(facts.JsonKeyDigests, path=path)
    acl = host.get_fact(facts.FileAcl, path=path)
    readers = [reader_sid] if isinstance(reader_sid, str) else list(reader_sid)
    wanted_sids = sorted({ADMINISTRATORS_SID, SYSTEM_SID, *readers})
    up_to_date = (
        digests is not None
        and all(digests.get(key) == sha256_hex(value.encode("utf-8")) for key, value in provided.items())
        and all(key in digests for key in generate)
        and acl is not None
        and acl["protected"]
        and acl["sids"] == wanted_sids
    )
    if up_to_date:
        host.noop(f"{path} already holds every secret")
        return
    staged = f"{path}.impots-new"
    yield FileUploadCommand(BytesIO(json.dumps(provided).encode("utf-8")), staged)
    grants = [f"*{ADMINISTRATORS_SID}:F", f"*{SYSTEM_SID}:F"]
    grants += [f"*{sid}:R" for sid in sorted(set(readers)) if sid not in (ADMINISTRATORS_SID, SYSTEM_SID)]
    yield (
        ps_assign(target=win_path(path), staged=win_path(staged))
        + f"$generate = {ps_array(list(generate))}\n"
        + f"$grants = {ps_array(grants)}\n"
        + _WRITE_SECRETS.lstrip()
    )


# --- the local CA ---------------------------------------------------------------------------------------

_IMPORT_ROOT_CA = r"""
$null = Import-Certificate -FilePath $p -CertStoreLocation 'Cert:\LocalMachine\Root'
"""


@operation()
def trusted_root_ca(ca_pem: str, dest: str):
    """
    Trust a CA on the Windows host: in ``Cert:\\LocalMachine\\Root`` (Edge, Chrome and every .NET or
    Schannel client there), compared by thumbprint.

    + ca_pem: the CA certificate on the controller (never its key)
    + dest: where the certificate file is kept on the host

    .. code:: python

        trusted_root_ca(ca_pem=".artifacts/@winssh_lab-pc/windows-tls/ca.pem", dest="C:/impots/tls/ca.pem")
    """
    thumbprint = certificate_thumbprint(ca_pem)
    if host.get_fact(facts.CertificateTrusted, thumbprint=thumbprint):
        host.noop(f"CA {thumbprint} is already trusted")
        return
    yield FileUploadCommand(ca_pem, dest)
    yield ps_assign(p=win_path(dest)) + _IMPORT_ROOT_CA.lstrip()
