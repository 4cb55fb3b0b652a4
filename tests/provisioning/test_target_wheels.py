"""Every supported target resolves the pinned app requirements from the real package index.

For each target of provisioning.targets: `pip download --only-binary=:all: --platform ...
--python-version ...` of requirements/app.txt, with deps, against https://pypi.org/simple (this
machine's pip configuration, with its local find-links and file:// indexes,
is switched off: a lab host has none of them).
mod_wsgi publishes only an sdist (it is compiled on each host against that host's Apache), so
--only-binary cannot resolve it: its Requires-Python from the index is checked against each target's
Python instead.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from provisioning.linux.platforms import UnsupportedPlatform, for_target, platform_record, supported_target
from provisioning.settings import MOD_WSGI_VERSIONS
from provisioning.targets import (
    LINUX_TARGETS,
    MIN_PYTHON,
    WINDOWS_PYTHON_VERSIONS,
    WINDOWS_WHEEL_PLATFORM,
    python_version_text,
)

REPO = Path(__file__).resolve().parents[2]
INDEX = "https://pypi.org/simple"
SYSTEM_CERTS = Path("/etc/ssl/certs/ca-certificates.crt")  # holds this machine's extra CAs too

TARGETS = [
    pytest.param(target.wheel_platforms, target.python, id=target.label.split(" (")[0])
    for target in LINUX_TARGETS
] + [
    pytest.param((WINDOWS_WHEEL_PLATFORM,), version, id=f"Windows x64 Python {python_version_text(version)}")
    for version in WINDOWS_PYTHON_VERSIONS
]


def pip_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no config file at all: no find-links, constraints, file:// indexes
    return env


@pytest.mark.parametrize(("platforms", "python"), TARGETS)
def test_pinned_app_requirements_resolve_as_wheels(
    tmp_path: Path, platforms: tuple[str, ...], python
) -> None:
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
               "--only-binary=:all:", "--index-url", INDEX, "--dest", str(tmp_path),
               "--python-version", python_version_text(python), "--implementation", "cp",
               "-r", str(REPO / "requirements/app.txt")]  # fmt: skip
    for platform in platforms:
        command += ["--platform", platform]
    if SYSTEM_CERTS.exists():
        command += ["--cert", str(SYSTEM_CERTS)]
    done = subprocess.run(command, env=pip_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (REPO / "requirements/app.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    got = {wheel.name.split("-")[0].lower().replace("_", "-") for wheel in tmp_path.glob("*.whl")}
    assert got == pinned


@pytest.mark.parametrize("version", MOD_WSGI_VERSIONS)  # the default pin and the 5.0 fallback
def test_mod_wsgi_accepts_every_targets_python(version: str) -> None:
    # Only an sdist exists (pip download --only-binary cannot resolve it): check its Requires-Python as
    # the index publishes it (PEP 691 JSON of the simple index, what pip itself reads).
    request = urllib.request.Request(
        f"{INDEX}/mod-wsgi/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    context = ssl.create_default_context(cafile=str(SYSTEM_CERTS) if SYSTEM_CERTS.exists() else None)
    with urllib.request.urlopen(request, timeout=60, context=context) as response:
        files = [f for f in json.load(response)["files"] if f["filename"].startswith(f"mod_wsgi-{version}.")]
    assert [f["filename"] for f in files] == [f"mod_wsgi-{version}.tar.gz"]
    accepts = SpecifierSet(files[0].get("requires-python") or "")
    pythons = {target.python for target in LINUX_TARGETS} | set(WINDOWS_PYTHON_VERSIONS)
    assert [v for v in sorted(pythons) if f"{python_version_text(v)}.0" not in accepts] == []


def test_every_target_builds_its_venv_from_a_python_new_enough() -> None:
    assert all(target.python >= MIN_PYTHON for target in LINUX_TARGETS)
    assert min(WINDOWS_PYTHON_VERSIONS) >= MIN_PYTHON


def os_release(os_id: str, version: str, pretty: str) -> dict:
    return {"release_meta": {"ID": os_id, "VERSION_ID": version, "PRETTY_NAME": pretty}}


@pytest.mark.parametrize(
    ("os_id", "version", "python"),
    [("debian", "12", "/usr/bin/python3"), ("ubuntu", "22.04", "/usr/bin/python3.11"),
     ("rocky", "9.4", "/usr/bin/python3.11"), ("almalinux", "8.10", "/usr/bin/python3.11")],
)  # fmt: skip
def test_a_supported_release_gets_its_python(os_id: str, version: str, python: str) -> None:
    target = supported_target(os_release(os_id, version, f"{os_id} {version}"))
    record = for_target(platform_record(target.family), target)
    assert record.system_python == python
    assert record.python_packages[0] == python.rsplit("/", 1)[1]  # the package named like the executable


@pytest.mark.parametrize(
    ("os_id", "version", "pretty"),
    [("debian", "11", "Debian GNU/Linux 11 (bullseye)"), ("ubuntu", "20.04", "Ubuntu 20.04.6 LTS"),
     ("rocky", "7", "CentOS Linux 7"), ("alpine", "3.20", "Alpine Linux v3.20")],
)  # fmt: skip
def test_an_unsupported_release_is_refused_naming_it(os_id: str, version: str, pretty: str) -> None:
    with pytest.raises(
        UnsupportedPlatform, match=rf"unsupported target '{re.escape(pretty)}': supported are Debian 12"
    ):
        supported_target(os_release(os_id, version, pretty))


def test_every_debian_family_release_installs_the_libpython_mod_wsgi_links() -> None:
    """A host that installs the controller's mod_wsgi wheel has no -dev package: its runtime packages
    must hold the shared libpython of its venv's Python (named by the release: t64 on Ubuntu 24.04)."""
    for target in LINUX_TARGETS:
        record = for_target(platform_record(target.family), target)
        assert not any(name.endswith(("-dev", "-devel")) for name in record.all_packages), target.label
        if target.family == "debian":
            library = f"libpython{target.python[0]}.{target.python[1]}"
            assert [name for name in record.all_packages if name.startswith(library)], target.label
