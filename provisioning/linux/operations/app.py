"""The application on the target: one artifact per release, its venv, mod_wsgi, secrets."""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
from io import StringIO
from pathlib import Path

from pyinfra import host, state
from pyinfra.api import FileUploadCommand, operation

from provisioning import mod_wsgi_patch, remote_call, wheels
from provisioning.linux.facts import HelperJson, SymlinkTarget, VenvState, cached_fact
from provisioning.linux.platforms import install_command, platform_record

# A release is whole when its link resolves to a folder that holds the entry points.
RELEASE_ENTRY_POINT = "main_withpgres.wsgi"


def release_name(sha256: str) -> str:
    """A release folder's name: the start of its artifact's sha256."""
    return sha256[:16]


def _current_release(install_root: str) -> str | None:
    """``releases/<name>`` the app link points at, or None (no link, or a release that is not whole)."""
    return cached_fact(SymlinkTarget, path=f"{install_root}/app", entry_point=RELEASE_ENTRY_POINT)


def _switch_link(install_root: str, release: str) -> str:
    """Point ``<install_root>/app`` at ``releases/<release>`` in one atomic rename."""
    link = f"{install_root}/app"
    return f"ln -sfn releases/{release} {link}.new && mv -T {link}.new {link}"


@operation()
def app_release_unpacked(artifact: str, sha256: str, install_root: str):
    """
    Unpack the app artifact into ``<install_root>/releases/<sha>``, without making it current (see
    ``app_release_checked`` and ``app_release_switched``), only when it is not the current app; made
    current at once only where no whole release serves (a new host, a vanished release). Every
    release links ``instance`` to ``<install_root>/instance``, so configuration, secrets and logs
    survive releases.

    + artifact: controller path of the tarball (``provisioning.artifact``)
    + sha256: the tarball's sha256 (names the release)
    + install_root: where app, releases, instance and venv live

    **Example:**

    .. code:: python

        app_release_unpacked(name="Unpack", artifact=a.path, sha256=a.sha256, install_root="/opt/impots")
    """
    release = release_name(sha256)
    current = _current_release(install_root)
    if current == f"releases/{release}":
        host.noop(f"release {release} is already the current app")
        return
    releases = f"{install_root}/releases"
    yield FileUploadCommand(artifact, f"{releases}/{release}.tar.gz")
    # Unpacked beside its final name then renamed: a half-unpacked release is never used.
    # tar -m: files get the unpack time (the artifact's fixed mtimes would confuse byte-code caches).
    yield (
        f"cd {releases} && rm -rf {release}.new && mkdir {release}.new && "
        f"tar -xzmf {release}.tar.gz -C {release}.new --no-same-owner && "
        f"ln -s ../../instance {release}.new/instance && "
        f"rm -rf {release} && mv {release}.new {release} && rm -f {release}.tar.gz"
    )
    if current is None:
        # Nothing whole is serving (a new host, or a release that vanished): nothing to protect, and the
        # instance configuration names its files through the app link, which the check and the seed
        # need. The link is made now; the check then finds the release live.
        yield _switch_link(install_root, release)


# Each entry point is loaded as mod_wsgi loads it (its folder first on sys.path, then create_app), as
# its site's user with its site's instance folder: it reads its configuration and secrets, and writes its
# logs, as that site's daemons do.
_LOAD_ENTRY_POINT = "import runpy, sys\nrunpy.run_path(sys.argv[1])\n"


@operation()
def app_release_checked(sha256: str, install_root: str, venv: str, entry_points: list[dict]):
    """
    Before a new release goes live: load each site's WSGI entry point with the venv, as that site's
    user and with its instance folder (``IMPOTS_INSTANCE_PATH``), which reads and checks its instance
    configuration. A release that does not load stops the run here, and the current release keeps
    serving.

    + sha256: the artifact's sha256 (names the release)
    + install_root: where releases live
    + venv: the app's virtual environment (ready for this release)
    + entry_points: one dict per site: ``wsgi_file`` (its ``.wsgi``), ``user`` (the user its daemons
      run as) and ``instance`` (its instance folder as the app sees it)
    """
    release = release_name(sha256)
    if _current_release(install_root) == f"releases/{release}":
        host.noop(f"release {release} is live")
        return
    loads = [
        f"runuser -u {entry['user']} -- env IMPOTS_INSTANCE_PATH={shlex.quote(entry['instance'])} "
        f"{venv}/bin/python -c {shlex.quote(_LOAD_ENTRY_POINT)} {shlex.quote(entry['wsgi_file'])}"
        for entry in entry_points
    ]
    yield f"cd {install_root}/releases/{release} && " + " && ".join(loads)


@operation()
def app_release_switched(sha256: str, install_root: str):
    """
    Make the unpacked and checked release current: point ``<install_root>/app`` at it (an atomic link
    swap), keep the release it replaces (a quick way back) and drop older ones.

    + sha256: the artifact's sha256 (names the release)
    + install_root: where app and releases live
    """
    release = release_name(sha256)
    wanted = f"releases/{release}"
    current = _current_release(install_root)
    if current == wanted:
        host.noop(f"release {release} is already the current app")
        return
    yield _switch_link(install_root, release)
    keep = [f"! -name {release}"]
    if current and current.startswith("releases/"):
        keep.append(f"! -name {posixpath.basename(current)}")
    yield f"find {install_root}/releases -mindepth 1 -maxdepth 1 {' '.join(keep)} -exec rm -rf {{}} +"


@operation()
def app_venv(venv: str, python: str, requirements: str, requirements_sha256: str):
    """
    Create the app's virtual environment from the target's system Python and install the pinned
    requirements, only when they changed (a hash marker in the venv; ``pip.packages(requirements=)``
    would report a change on every run).

    + venv: the virtual environment's folder
    + python: the system interpreter the Apache user can read (e.g. ``/usr/bin/python3``)
    + requirements: target path of the pinned requirements file
    + requirements_sha256: sha256 of that file's content (computed on the controller)
    """
    state = cached_fact(VenvState, venv=venv)
    if state["python"] and state["requirements"] == requirements_sha256:
        host.noop(f"venv {venv} already has these requirements")
        return
    if not state["python"]:
        yield f"{python} -m venv {venv}"
    marker = f"{venv}/.impots-requirements.sha256"
    yield (
        f"{venv}/bin/pip install -q --no-cache-dir --disable-pip-version-check -r {requirements} && "
        f"echo {requirements_sha256} > {marker}"
    )


@operation()
def mod_wsgi_installed(
    venv: str,
    apxs: str,
    version: str = "6.1.1",
    platform: str = "debian",
    build_packages: list[str] | None = None,
    sdist: str | None = None,
):
    """
    Install our patched mod_wsgi (``provisioning.mod_wsgi_patch``: no request lost on a graceful reload),
    built against the target's Apache (``APXS=``), when it is missing, another version or unpatched (its
    version carries the patch label, ``6.1.1+impots.<digest>``). Built once per platform
    (``provisioning.wheels``): the first host compiles the patched sdist the controller uploads, the
    controller caches the wheel, the others install it without any build package; a module not linked to
    the venv's libpython is refused. Without a known platform (``--dry``, a venv not made yet) it is
    compiled on the host. ``--no-cache-dir``: pip's cache may hold a wheel linked to another libpython.

    + venv: the app's virtual environment
    + apxs: path of the target Apache's ``apxs`` (installed with the build packages)
    + version: mod_wsgi version to install (patched: ``mod_wsgi_patch.FIXES``)
    + platform: platform family (``debian`` or ``rhel``): package manager and ``apachectl``
    + build_packages: what compiling needs (default: the family's, with its default Python headers)
    + sdist: the patched sdist on the controller (default: ``mod_wsgi_patch.sdist_path``; made when needed)
    """
    wanted = mod_wsgi_patch.patched_version(version)  # an unknown version stops here, before any change
    installed = cached_fact(VenvState, venv=venv)["mod_wsgi"]
    if installed == wanted:
        host.noop(f"mod_wsgi {wanted} is already built in {venv}")
        return
    source = Path(sdist) if sdist else mod_wsgi_patch.sdist_path(version)
    if state.is_executing and not sdist:
        mod_wsgi_patch.patched_sdist(version)  # downloaded and patched once, on the controller
    record = platform_record(platform)
    packages = list(build_packages or record.mod_wsgi_build_packages)
    build = install_command(record.package_manager, packages, update_first=False)
    pip = f"{venv}/bin/pip install -q --no-cache-dir --disable-pip-version-check"
    found = (
        host.get_fact(wheels.WheelPlatform, venv=venv, apachectl=record.apachectl)
        if state.is_executing
        else {}
    )
    key = wheels.wheel_key(found, apxs, wanted)
    wheel, lock = wheels.wait_for_wheel_or_lock(key, wanted) if key else (None, None)
    folder = f"{venv}/.impots-wheels"
    if not (wheel or lock):
        yield build
        yield from wheels.upload_into(folder, source)
        yield f"APXS={apxs} {pip} {folder}/{source.name} && rm -rf {folder}"
        return
    try:
        if lock:  # this host builds it for its platform; the controller keeps it for the others
            yield build
            wheel = yield from wheels.build_and_fetch(folder, venv, apxs, source, wanted, key, host.name)
        yield from wheels.install_wheel(folder, pip, wheel, wanted, wheels.linked_check(venv, found))
    finally:
        if lock:
            lock.close()


def secret_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@operation()
def secrets_file(
    helper: str,
    path: str,
    group: str,
    given: dict[str, str],
    generate: list[str],
    upload_dir: str,
):
    """
    Keep the app's secrets file (Contract 1 ``secrets.json``, mode 0640 root:<group>): values given
    by data/environment are written, missing ones in ``generate`` are generated ONCE on the target.
    Compared by sha256 through the helper, so values never travel back or appear in any output.

    + helper: target path of the helper zipapp (``impots-helper.pyz``)
    + path: target path of the secrets file
    + group: group allowed to read it (the Apache user's)
    + given: key -> value from data or environment
    + generate: keys to generate when absent (e.g. ``secret_key``)
    + upload_dir: root-only (0700) folder where given values transit
    """
    status = cached_fact(HelperJson, call=remote_call.secrets_status(helper, path)) or {}
    kept = status.get("values")
    stale = kept is None or any(kept.get(k) != secret_digest(v) for k, v in given.items())
    stale = stale or any(k not in kept for k in generate)
    if stale:
        given_file = f"{upload_dir}/given-secrets.json" if given else None
        if given_file:
            yield FileUploadCommand(StringIO(json.dumps(dict(given), sort_keys=True)), given_file)
        yield remote_call.secrets_merge(helper, path, group, generate, given_file)
        return
    if (status.get("user"), status.get("group"), status.get("mode")) == ("root", group, "640"):
        host.noop(f"{path} already holds every secret")
        return
    yield f"chown root:{group} {path} && chmod 640 {path}"
