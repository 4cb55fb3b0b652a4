"""What a Windows host must have before the deploy changes anything: pure checks of settings + facts.

Each ``*_problems`` function returns one message per problem, naming what was found and what to do; the
deploy gathers them all and ``raise_problems`` stops the run with every message at once, before the
first operation. Nothing here reads the host: the facts are passed in, so each check is tested with
plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from provisioning.settings import MOD_WSGI_VERSIONS
from provisioning.targets import MIN_PYTHON, WINDOWS_PYTHON_VERSIONS, python_version_text
from provisioning.windows.facts import APACHE_BUILD_FILES, MSVC_COMPONENT


class WindowsDeployError(RuntimeError):
    """The Windows host cannot be provisioned as it is: ``<host>: <what was found> (<what to do>)``."""


def raise_problems(host_name: str, problems: Sequence[str]) -> None:
    """Stop the run with every problem, one line each, prefixed by the host name (nothing if none)."""
    if problems:
        raise WindowsDeployError(f"{host_name}: " + f"\n{host_name}: ".join(problems))


# --- mod_wsgi: the pin, and its fallback --------------------------------------------------------------


# mod_wsgi 6.x is the default; its author has not verified 6.x on Windows, so the 5.0 line stays
# selectable with impots_mod_wsgi_version (settings.MOD_WSGI_VERSIONS; the checklist reports which built).
def mod_wsgi_package(settings: Any) -> str:
    """The pip requirement of mod_wsgi for these settings (``impots_mod_wsgi_version``)."""
    version = settings.mod_wsgi_version
    if version not in MOD_WSGI_VERSIONS:
        raise WindowsDeployError(
            f"impots_mod_wsgi_version {version!r} is not one of {', '.join(MOD_WSGI_VERSIONS)}"
        )
    return f"mod-wsgi=={version}"


# --- Python ----------------------------------------------------------------------------------------------


def version_tuple(version: str | None) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version or ""))


def python_supported(python: Mapping[str, Any]) -> bool:
    """A 64-bit Python of a version the pinned stack installs on (targets.py)."""
    minor = version_tuple(python["version"])[:2]
    return python["bits"] == 64 and minor >= MIN_PYTHON and minor in WINDOWS_PYTHON_VERSIONS


def _supported_text() -> str:
    return ", ".join(python_version_text(v) for v in WINDOWS_PYTHON_VERSIONS)


def choose_python(settings: Any, found: list[dict]) -> tuple[dict | None, str]:
    """The Python to build the venv from, or ``(None, problem)``: the newest supported 64-bit one, or
    exactly ``impots_windows_python``, which must be supported too (the floor comes from the pins:
    a 3.10 would pass every check and die at ``pip install`` after the first changes)."""
    listing = "; ".join(f"{p['version']} {p['bits']}-bit at {p['executable']}" for p in found) or "none"
    wanted = (
        f"a 64-bit Python {_supported_text()} (the pinned requirements need "
        f"{python_version_text(MIN_PYTHON)}+; psycopg2-binary and msgspec have no 32-bit Windows wheels)"
    )
    if settings.windows_python:
        if not found:
            return None, f"impots_windows_python {settings.windows_python} does not run"
        if not python_supported(found[0]):
            return None, f"impots_windows_python is Python {listing}: the deploy needs {wanted}"
        return found[0], ""
    usable = [p for p in found if python_supported(p)]
    if not usable:
        return None, (
            f"no usable Python installed (found: {listing}): install {wanted} from python.org "
            "for all users, or set impots_windows_python"
        )
    return max(usable, key=lambda p: version_tuple(p["version"])), ""


# --- Apache and the build tools --------------------------------------------------------------------------


def apache_problems(apache_root: str, httpd: str, apache: Mapping[str, Any] | None) -> list[str]:
    """The Apache tree: present, runnable, 64-bit, the files mod_wsgi builds against, no space in its path."""
    if apache is None:
        return [f"no Apache at {apache_root} (no bin/httpd.exe)"]
    problems = []
    missing = [f for f in APACHE_BUILD_FILES if f in apache.get("missing", ())]
    if missing:
        problems.append(
            f"the Apache tree at {apache_root} lacks {', '.join(missing)} (mod_wsgi is compiled and linked "
            "against them): use a full Apache Lounge / Laragon Apache, not a trimmed copy"
        )
    if " " in apache_root:
        problems.append(
            f"the Apache folder {apache_root} has a space in its path, which mod_wsgi's Windows build "
            "(MOD_WSGI_APACHE_ROOTDIR) does not survive: move Apache to a path without spaces"
        )
    if not apache["version"]:
        problems.append(f"{httpd} -v printed no version: does httpd.exe run (Visual C++ redistributable)?")
    if not apache["bits"]:
        problems.append(f"cannot tell whether {httpd} is 32- or 64-bit")
    elif apache["bits"] != 64:
        problems.append(
            f"Apache {apache['version']} at {apache_root} is 32-bit: psycopg2-binary and msgspec publish no "
            "32-bit Windows wheels; install the 64-bit (win64) Apache"
        )
    return problems


def python_apache_problems(
    python: Mapping[str, Any], apache: Mapping[str, Any] | None, apache_root: str
) -> list[str]:
    if apache is not None and apache["bits"] and python["bits"] != apache["bits"]:
        return [
            f"Python {python['version']} at {python['executable']} is {python['bits']}-bit but Apache "
            f"{apache['version']} at {apache_root} is {apache['bits']}-bit: they must match"
        ]
    return []


def build_tools_problems(msvc: Mapping[str, Any]) -> list[str]:
    """MSVC (vswhere + the VC x64 tools component) and a Windows SDK with x64 libraries."""
    if not msvc["vswhere"]:
        return [
            "no Microsoft C++ build tools (vswhere.exe not found): install Visual Studio Build Tools "
            "with the 'Desktop development with C++' workload (mod_wsgi is compiled on the host)"
        ]
    problems = []
    if not msvc["installations"]:
        problems.append(
            f"Visual Studio is installed but without the C++ tools ({MSVC_COMPONENT}): add the "
            "'Desktop development with C++' workload"
        )
    if not msvc.get("sdks"):
        problems.append(
            "no Windows 10/11 SDK with x64 libraries (kernel32.lib under Windows Kits\\10\\Lib): add the "
            "'Windows 11 SDK' (or Windows 10 SDK) component in the Visual Studio Installer"
        )
    return problems


def session_problems(user: Mapping[str, Any]) -> list[str]:
    """The SSH session must be elevated (hosts file, ACLs, Apache service, trusted root store)."""
    if user.get("admin"):
        return []
    return [
        f"the SSH session of {user.get('name')} is not elevated (not in Administrators): connect as an "
        "administrator; its key goes in C:\\ProgramData\\ssh\\administrators_authorized_keys"
    ]


def tar_problems(system_tar: str | None) -> list[str]:
    if system_tar:
        return []
    return [
        "no tar.exe in System32 (Windows 10 1803 and later ship it; Git's or MSYS2's tar is not used: "
        "they read C:\\... as a remote host): update Windows"
    ]


# --- who runs Apache ----------------------------------------------------------------------------------


def laragon_desktop_user(laragon_processes: Sequence[Mapping[str, Any]]) -> dict | None:
    """The desktop user running Laragon's tray (it starts and restarts Apache): first in a desktop session."""
    desktop = [p for p in laragon_processes if p.get("session") and p.get("owner_sid")]
    return dict(desktop[0]) if desktop else None


def laragon_problems(laragon_root: str, desktop_user: Mapping[str, Any] | None) -> list[str]:
    if desktop_user is not None:
        return []
    return [
        f"Laragon is not running (no laragon.exe in a desktop session): open Laragon from {laragon_root} on "
        "the Windows desktop and keep it open; the deploy restarts Apache in Laragon's session, as its user"
    ]


def account_problems(accounts: Iterable[str], resolved: Mapping[str, str | None]) -> list[str]:
    unknown = [name for name in accounts if not resolved.get(name)]
    if not unknown:
        return []
    return [f"impots_windows_apache_accounts: no such Windows account: {', '.join(unknown)}"]


def apache_reader_sids(
    service: Mapping[str, Any] | None,
    httpd_processes: Sequence[Mapping[str, Any]],
    desktop_user: Mapping[str, Any] | None,
    extra: Iterable[str | None] = (),
) -> tuple[str, ...]:
    """Every account that runs (or will run) this Apache: the service's, else the owners of the running
    httpd.exe and Laragon's desktop user; plus the accounts named in data. Sorted, without repeats."""
    sids: set[str] = set()
    if service is not None:
        sids.add(service["account_sid"])
    else:
        sids.update(p["owner_sid"] for p in httpd_processes if p.get("owner_sid"))
        if desktop_user is not None:
            sids.add(desktop_user["owner_sid"])
    sids.update(sid for sid in extra if sid)
    return tuple(sorted(sids))


def service_problems(service: Mapping[str, Any] | None) -> list[str]:
    if service is not None and not service.get("account_sid"):
        return [f"cannot resolve the account {service.get('account')!r} of service {service['name']}"]
    return []
