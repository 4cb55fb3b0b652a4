"""provisioning.wheels: the platform key of a compiled mod_wsgi, the controller's cache and its lock."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from provisioning import wheels

DEBIAN_12 = {
    "os_release": "debian-12",
    "python": "cpython-311",
    "soabi": "cpython-311-x86_64-linux-gnu",
    "libpython": "libpython3.11.so",
    "platform": "linux-x86_64",
    "mmn": "20120211",
}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(wheels, "WHEELS_DIR", tmp_path)
    return tmp_path


def test_the_fact_reads_this_machines_python_and_apache_abi(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    command = wheels.WheelPlatform().command(str(venv), "apache2ctl")
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    platform = wheels.WheelPlatform().process(output.splitlines())
    assert platform["python"] == sys.implementation.cache_tag
    assert platform["mmn"].isdigit() and platform["os_release"].startswith("debian-")
    missing = wheels.WheelPlatform().command(str(tmp_path / "no-venv"), "apache2ctl")
    assert subprocess.run(["sh", "-c", missing], capture_output=True, text=True).stdout == ""


def test_the_key_changes_with_anything_the_module_is_linked_to() -> None:
    key = wheels.wheel_key(DEBIAN_12, "/usr/bin/apxs", "6.1.1")
    assert key and key.startswith("mod_wsgi-6.1.1-debian-12-linux-x86_64-cpython-311-mmn20120211-")
    others = [
        wheels.wheel_key({**DEBIAN_12, "mmn": "20120212"}, "/usr/bin/apxs", "6.1.1"),
        wheels.wheel_key({**DEBIAN_12, "libpython": "libpython3.11.a"}, "/usr/bin/apxs", "6.1.1"),
        wheels.wheel_key(DEBIAN_12, "/opt/apache/bin/apxs", "6.1.1"),
        wheels.wheel_key(DEBIAN_12, "/usr/bin/apxs", "5.0.2"),
    ]
    assert key not in others and len(set(others)) == 4
    assert wheels.wheel_key({}, "/usr/bin/apxs", "6.1.1") is None
    assert wheels.WheelPlatform().process(["python=cpython-311"]) == {}


def test_one_builder_at_a_time_and_the_others_get_the_cached_wheel(cache: Path) -> None:
    key = wheels.wheel_key(DEBIAN_12, "/usr/bin/apxs", "6.1.1")
    builder = wheels.try_lock(key)
    assert builder and wheels.try_lock(key) is None
    folder = cache / key
    (folder / ".h1.name").write_text("mod_wsgi-6.1.1-cp311-cp311-linux_x86_64.whl\n")
    (folder / ".h1.part").write_bytes(b"wheel")
    stored = wheels.store_wheel(key, folder / ".h1.name", folder / ".h1.part", "6.1.1")
    builder.close()
    assert (
        stored == folder / "mod_wsgi-6.1.1-cp311-cp311-linux_x86_64.whl" and stored.read_bytes() == b"wheel"
    )
    assert wheels.wait_for_wheel_or_lock(key, "6.1.1") == (stored, None)
    assert wheels.cached_wheel(key, "6.2.0") is None


@pytest.mark.parametrize("name", ["../evil.whl", "mod_wsgi-6.2.0-cp311-cp311-linux_x86_64.whl", ""])
def test_a_fetched_file_with_another_name_is_not_cached(cache: Path, name: str) -> None:
    key = wheels.wheel_key(DEBIAN_12, "/usr/bin/apxs", "6.1.1")
    folder = cache / key
    folder.mkdir()
    (folder / ".h.name").write_text(name)
    (folder / ".h.part").write_bytes(b"x")
    assert wheels.store_wheel(key, folder / ".h.name", folder / ".h.part", "6.1.1") is None
    assert list(folder.iterdir()) == []


def fake_venv(root: Path, module: Path) -> str:
    """A venv whose ``mod_wsgi-express module-location`` names ``module``."""
    (root / "bin").mkdir()
    express = root / "bin" / "mod_wsgi-express"
    express.write_text(f"#!/bin/sh\necho {module}\n")
    express.chmod(0o755)
    return str(root)


def compile_module(tmp_path: Path, name: str, uses: str, *link: str) -> Path:
    """A shared object that calls ``uses`` (the linker keeps only the libraries a module calls)."""
    source = tmp_path / f"{name}.c"
    source.write_text(f"extern int {uses}(void);\nint impots_{name}(void) {{ return {uses}(); }}\n")
    target = tmp_path / f"{name}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(target), str(source), *link], check=True)
    return target


def test_the_link_check_refuses_a_module_that_cannot_load(tmp_path: Path) -> None:
    """Real modules, linked by gcc: the libpython of the key must be linked and found, nothing missing."""
    platform = {"libpython": f"libpython{sys.version_info.major}.{sys.version_info.minor}.so"}
    lonely = compile_module(tmp_path, "liblonely", "getpid")
    orphan_module = compile_module(tmp_path, "orphan", "impots_liblonely", f"-L{tmp_path}", "-llonely")
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    with_python = compile_module(tmp_path, "withpython", "Py_IsInitialized", f"-l{python}")

    def check(module: Path, found: dict) -> subprocess.CompletedProcess[str]:
        venv = fake_venv(Path(tempfile.mkdtemp(dir=tmp_path)), module)
        return subprocess.run(["sh", "-c", wheels.linked_check(venv, found)], capture_output=True, text=True)

    assert check(with_python, platform).returncode == 0
    assert check(lonely, {"libpython": "libpython3.11.a"}).returncode == 0  # a static libpython: not asked
    unlinked = check(lonely, platform)
    assert unlinked.returncode == 1 and "cannot load its libraries" in unlinked.stderr
    orphan = check(
        orphan_module,  # linked to liblonely.so, no rpath to find it
        {"libpython": "libpython3.11.a"},
    )
    assert orphan.returncode == 1 and "liblonely.so => not found" in orphan.stderr
