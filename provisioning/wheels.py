"""mod_wsgi built once per platform: a controller-side cache of wheels, ``.artifacts/wheels/<key>/``.

Compiling mod_wsgi costs every host several seconds of CPU, the same work on every host of a platform.
The key names everything the compiled module depends on: the distribution release and machine, the
venv's Python (its ABI and the libpython it links), Apache's module magic number (its module ABI), the
apxs path and the mod_wsgi version, patch label included (``6.1.1+impots.<digest>``, see
``provisioning.mod_wsgi_patch``: a changed patch is another key). The first host of a key builds the
wheel and the controller fetches it; the other hosts (in the same run: they wait for that build, or in
later runs) upload and install it.
A controller-side lock (``flock``, polled so pyinfra's other hosts keep running) makes parallel hosts,
and parallel pyinfra processes, wait for the one build instead of racing it. The builder compiles the
patched sdist the controller uploads to it; it fetches only pip's build backend from the package index.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
from pathlib import Path
from typing import IO

import gevent
from pyinfra.api import FactBase, FileDownloadCommand, FileUploadCommand

from provisioning.artifact import ARTIFACTS_DIR

WHEELS_DIR = ARTIFACTS_DIR / "wheels"
POLL_SECONDS = 0.5
WAIT_SECONDS = 900  # a build taking longer has failed somewhere: the waiting host builds for itself
_PYTHON_ABI = (
    "import sys, sysconfig; "
    "print('python=' + sys.implementation.cache_tag); "
    "print('soabi=' + str(sysconfig.get_config_var('SOABI'))); "
    "print('libpython=' + str(sysconfig.get_config_var('LDLIBRARY'))); "
    "print('platform=' + sysconfig.get_platform())"
)


class WheelPlatform(FactBase[dict]):
    """
    Returns what a compiled mod_wsgi depends on (``{}`` while the venv or Apache is missing): the
    release (``os_release``), ``python``/``soabi``/``libpython``/``platform`` of the venv's Python and
    ``mmn``, Apache's module magic number, as ``apachectl -V`` prints it (no apxs needed: the hosts that
    install a cached wheel never get the build packages).
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, venv: str, apachectl: str) -> str:
        python = shlex.quote(f"{venv}/bin/python")
        return (
            f"test -x {python} && command -v {shlex.quote(apachectl)} >/dev/null || exit 0; "
            '. /etc/os-release && echo "os_release=$ID-$VERSION_ID"; '
            f"{python} -c {shlex.quote(_PYTHON_ABI)}; "
            f"{shlex.quote(apachectl)} -V 2>/dev/null"
            " | sed -n 's/.*Module Magic Number: *\\([0-9]*\\).*/mmn=\\1/p'"
        )

    def process(self, output: list[str]) -> dict:
        values = dict(line.strip().split("=", 1) for line in output if "=" in line)
        wanted = ("os_release", "python", "soabi", "libpython", "platform", "mmn")
        return values if all(values.get(key) for key in wanted) else {}


def wheel_key(platform: dict, apxs: str, version: str) -> str | None:
    """The cache folder's name for this platform, or None when the platform is unknown."""
    if not platform:
        return None
    readable = f"{platform['os_release']}-{platform['platform']}-{platform['python']}-mmn{platform['mmn']}"
    exact = "|".join(
        [*(f"{k}={platform[k]}" for k in sorted(platform)), f"apxs={apxs}", f"mod_wsgi={version}"]
    )
    digest = hashlib.sha256(exact.encode()).hexdigest()[:12]
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"mod_wsgi-{version}-{readable}-{digest}")


def cached_wheel(key: str, version: str) -> Path | None:
    """The wheel in the cache for this key (only a complete one: it is renamed in place when whole)."""
    folder = WHEELS_DIR / key
    found = sorted(folder.glob(f"mod_wsgi-{version}-*.whl")) if folder.is_dir() else []
    return found[0] if found else None


def try_lock(key: str) -> IO | None:
    """The build lock of ``key`` (an open file; close it to release), or None while another holds it."""
    folder = WHEELS_DIR / key
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def wait_for_wheel_or_lock(key: str, version: str) -> tuple[Path | None, IO | None]:
    """Wait (without blocking pyinfra's other hosts) until the wheel is cached or the lock is free."""
    waited = 0.0
    while waited < WAIT_SECONDS:
        wheel = cached_wheel(key, version)
        if wheel:
            return wheel, None
        lock = try_lock(key)
        if lock:
            wheel = cached_wheel(key, version)  # finished between the two looks
            if wheel:
                lock.close()
                return wheel, None
            return None, lock
        gevent.sleep(POLL_SECONDS)
        waited += POLL_SECONDS
    return None, None


def store_wheel(key: str, name_file: Path, part: Path, version: str) -> Path | None:
    """Move a fetched wheel (``part``) into the cache under its real name (read from ``name_file``)."""
    name = name_file.read_text().strip().rsplit("/", 1)[-1] if name_file.exists() else ""
    name_file.unlink(missing_ok=True)
    if not re.fullmatch(
        rf"mod_wsgi-{re.escape(version)}-[A-Za-z0-9._]+-[A-Za-z0-9._]+-[A-Za-z0-9._]+\.whl", name
    ):
        part.unlink(missing_ok=True)
        return None
    target = WHEELS_DIR / key / name
    os.replace(part, target)
    return target


def upload_into(folder: str, local: Path):
    """Commands (``yield from``) putting a controller file (the patched sdist, a cached wheel) into an
    empty ``folder`` on the host."""
    yield f"rm -rf {folder} && mkdir -p {folder}"
    yield FileUploadCommand(str(local), f"{folder}/{local.name}")


def build_and_fetch(folder: str, venv: str, apxs: str, sdist: Path, version: str, key: str, host_name: str):
    """Commands (``yield from``) building the wheel of ``sdist`` (uploaded into ``folder``) on the host and
    fetching it; returns the cached wheel, or None when it could not be cached (the host then installs
    its own build)."""
    pip_wheel = f"{venv}/bin/pip wheel -q --use-pep517 --no-deps --no-cache-dir --disable-pip-version-check"
    yield from upload_into(folder, sdist)
    yield (
        f"cd {folder} && APXS={apxs} {pip_wheel} -w {folder} {folder}/{sdist.name}"
        f" && ls mod_wsgi-{version}-*.whl > name && ln -f mod_wsgi-{version}-*.whl fetch.whl"
    )
    local = WHEELS_DIR / key
    name_file, part = local / f".{host_name}.name", local / f".{host_name}.part"
    yield FileDownloadCommand(f"{folder}/name", str(name_file))
    yield FileDownloadCommand(f"{folder}/fetch.whl", str(part))
    return store_wheel(key, name_file, part, version)


def install_wheel(folder: str, pip: str, wheel: Path | None, version: str, linked: str):
    """Commands (``yield from``) installing the cached ``wheel`` (uploaded), else the one this host just
    built in ``folder``, then checking the module's libraries (``linked``: ``linked_check``)."""
    if wheel:
        yield from upload_into(folder, wheel)
        yield f"{pip} --no-deps {folder}/{wheel.name} && rm -rf {folder} && {linked}"
    else:
        yield f"{pip} --no-deps {folder}/mod_wsgi-{version}-*.whl && rm -rf {folder} && {linked}"


def linked_check(venv: str, platform: dict) -> str:
    """A command failing unless the installed module finds every library it links, the venv's libpython
    (a shared one) among them: a host that got a cached wheel has no build package to pull it in."""
    module = f'"$({venv}/bin/mod_wsgi-express module-location)"'
    library = platform.get("libpython", "")
    lines = "printf '%s\\n' \"$impots_ldd\""
    needs = f" && {lines} | grep -qF {shlex.quote(library)}" if library.endswith(".so") else ""
    failed = f"{{ {lines} >&2; echo 'impots: mod_wsgi cannot load its libraries' >&2; exit 1; }}"
    return f"{{ impots_ldd=$(ldd {module}) && ! {lines} | grep -q 'not found'{needs} || {failed}; }}"
