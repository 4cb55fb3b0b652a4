"""Cached bare Debian bases (debootstrap minbase + sshd), one per release, shared read-only by every host."""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
from pathlib import Path

from fleetlab.config import CACHE_ROOT, RELEASES, FleetError, base_dir

EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")
APT_SOURCES = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
SSHD_CONFIG = (
    "PermitRootLogin prohibit-password\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "UseDNS no\n"
)


def debian_mirror() -> str:
    """The Debian archive URI apt on this machine uses (one-line or deb822 sources)."""
    for path in APT_SOURCES:
        if not path.is_file() or not path.name.endswith((".list", ".sources")):
            continue
        for uri in re.findall(r"(?:^deb\s+(?:\[[^]]*\]\s+)?|^URIs:\s*)(\S+)", path.read_text(), re.M):
            if re.search(r"/debian/?$", uri):
                return uri.rstrip("/")
    raise FleetError("no Debian archive in apt's sources (/etc/apt/sources.list*): cannot debootstrap")


def ensure_base(release: str, log=print) -> Path:
    """The base of a release, built once (debootstrap takes ~1 min) and reused while it exists."""
    if release not in RELEASES:
        raise FleetError(f"unknown release {release!r}: choose one of {', '.join(RELEASES)}")
    target = base_dir(release)
    complete = target.with_name(f"{release}.complete")  # beside the base: hosts must not see it
    if complete.exists():
        return target
    if not shutil.which("debootstrap"):
        raise FleetError(
            "debootstrap is not installed: run scripts/setup --for-tests (or apt-get install debootstrap)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / f".{release}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent `up` waits for the same build instead of racing it
        if complete.exists():
            return target
        building = target.with_name(f"{release}.building")
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        mirror = debian_mirror()
        log(f"fleet: building the {release} base from {mirror} (once; cached in {target})")
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=openssh-server,ca-certificates",
             release, str(building), mirror],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _customize(building)
        building.rename(target)
        complete.write_text(f"{release} {mirror}\n")
    return target


def _customize(root: Path) -> None:
    # This machine's outgoing TLS is re-signed by its extra CAs: without them pip in a host fails to verify.
    for certificate in EXTRA_CA_DIR.glob("*.crt"):
        shutil.copy2(certificate, root / "usr/local/share/ca-certificates" / certificate.name)
    subprocess.run(["chroot", str(root), "update-ca-certificates"], check=True, stdout=subprocess.DEVNULL)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # every host gets its own keys in its layer
    (root / "etc/ssh/sshd_config.d/impots-fleet.conf").write_text(SSHD_CONFIG)
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    _write(root / "etc/resolv.conf", "# impots fleet host: no DNS; apt and pip go through the proxy\n")
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
