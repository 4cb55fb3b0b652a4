"""The targets the deploy supports, and the Python each one builds the app's venv from.

One table for both backends: the platform records (linux/platforms.py, windows/platforms.py), the
prerequisite checks and the wheel-resolution test (pip download per target) all read it, so the Python
floor is written once. The floor comes from the pins in requirements/app.txt and mod_wsgi's own:
wtforms 3.3.2 needs Python 3.11, mod_wsgi 6.1.1 needs 3.10.

Where a distribution's own python3 is older than the floor (Ubuntu 22.04: 3.10; RHEL 8: 3.6; RHEL 9:
3.9), the record installs a newer Python the distribution itself ships (python3.11 from Ubuntu's
universe / RHEL's AppStream) and builds the venv from it; the pins stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

# The oldest Python the pinned stack installs on (checked against the package index by a test).
MIN_PYTHON: tuple[int, int] = (3, 11)

# Windows x64: the python.org versions the Windows deploy accepts (64-bit only: psycopg2-binary and
# msgspec publish no win32 wheels).
WINDOWS_PYTHON_VERSIONS: tuple[tuple[int, int], ...] = ((3, 11), (3, 12), (3, 13), (3, 14))


def python_version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True)
class LinuxTarget:
    """One supported Linux release: how it is recognised and the Python its app venv is built from."""

    label: str
    family: str  # "debian" or "rhel": the platform record of linux/platforms.py
    ids: tuple[str, ...]  # /etc/os-release ID values
    major: str  # VERSION_ID up to the first dot
    python: tuple[int, int]  # the Python of the venv (and the one mod_wsgi is compiled against)
    python_executable: str
    # The distribution's packages that provide it, its venv, headers and shared library: mod_wsgi links
    # libpythonX.Y.so, which only the -dev packages pull in on Debian, and a host that installs the
    # controller's mod_wsgi wheel gets no -dev package (RHEL's python3.X depends on python3.X-libs).
    python_packages: tuple[str, ...]
    glibc: tuple[int, int]  # decides which manylinux wheels install there

    @property
    def wheel_platforms(self) -> tuple[str, ...]:
        """pip's --platform tags a host of this release accepts (x86_64), newest first."""
        tags = [f"manylinux_{self.glibc[0]}_{minor}_x86_64" for minor in range(self.glibc[1], 16, -1)]
        return (*tags, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")


_DEBIAN_PYTHON = ("python3", "python3-venv", "python3-dev")
_RHEL_PYTHON_311 = ("python3.11", "python3.11-devel")  # AppStream: venv is part of python3.11

_RHEL_IDS = ("rhel", "rocky", "almalinux", "centos", "ol")
_UBUNTU_2204_PYTHON = ("python3.11", "python3.11-venv", "python3.11-dev", "libpython3.11")  # universe

# label, family, ids, major, venv Python, its executable, its packages, glibc
LINUX_TARGETS: tuple[LinuxTarget, ...] = (
    LinuxTarget("Debian 12 (bookworm)", "debian", ("debian",), "12",
                (3, 11), "/usr/bin/python3", (*_DEBIAN_PYTHON, "libpython3.11"), (2, 36)),
    LinuxTarget("Debian 13 (trixie)", "debian", ("debian",), "13",
                (3, 13), "/usr/bin/python3", (*_DEBIAN_PYTHON, "libpython3.13"), (2, 41)),
    LinuxTarget("Ubuntu 22.04 LTS", "debian", ("ubuntu",), "22",
                (3, 11), "/usr/bin/python3.11", _UBUNTU_2204_PYTHON, (2, 35)),
    LinuxTarget("Ubuntu 24.04 LTS", "debian", ("ubuntu",), "24",
                (3, 12), "/usr/bin/python3", (*_DEBIAN_PYTHON, "libpython3.12t64"), (2, 39)),
    LinuxTarget("RHEL 8 family (RHEL, Rocky, Alma)", "rhel", _RHEL_IDS, "8",
                (3, 11), "/usr/bin/python3.11", _RHEL_PYTHON_311, (2, 28)),
    LinuxTarget("RHEL 9 family (RHEL, Rocky, Alma)", "rhel", _RHEL_IDS, "9",
                (3, 11), "/usr/bin/python3.11", _RHEL_PYTHON_311, (2, 34)),
)  # fmt: skip

WINDOWS_WHEEL_PLATFORM = "win_amd64"


def supported_targets_text() -> str:
    names = [target.label for target in LINUX_TARGETS]
    return (
        ", ".join(names)
        + ", Windows x64 (Python "
        + ", ".join(map(python_version_text, WINDOWS_PYTHON_VERSIONS))
        + ")"
    )


def linux_target(os_id: str, version_id: str) -> LinuxTarget | None:
    """The table's record of an /etc/os-release ID and VERSION_ID, or None when it is not supported."""
    major = version_id.split(".")[0]
    for target in LINUX_TARGETS:
        if os_id in target.ids and major == target.major:
            return target
    return None
