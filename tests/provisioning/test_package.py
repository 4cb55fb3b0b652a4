"""`pip install .` gives a package another pyinfra deploy can import and call: the wheel carries the
templates and the app it pushes, and works away from this checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

USE_FROM_ELSEWHERE = """
from provisioning.artifact import APP_SOURCE, build_app_artifact
from provisioning.deploy import impots_stack
from provisioning.plan import render
assert APP_SOURCE.parts[-2:] == ("provisioning", "_app"), APP_SOURCE
assert "Listen 80" in render("linux/ports.conf.j2", settings=type("S", (), {"listen_address": "*"}),
                            platform=type("P", (), {"family": "debian"}))
artifact = build_app_artifact()
print(artifact.sha256, callable(impots_stack))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("impots_provisioning-*.whl")
    return built


def test_wheel_carries_templates_and_app(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for wanted in (
        "provisioning/templates/vhost.conf.j2",
        "provisioning/templates/linux/ports.conf.j2",
        "provisioning/_app/main_withmysql.wsgi",
        "provisioning/_app/impots/tax/rules.py",
        "provisioning/_app/requirements.txt",
    ):
        assert wanted in names, wanted
    assert not any("/instance/" in name or "__pycache__" in name for name in names)


def test_installed_package_works_away_from_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "another-deploy"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", USE_FROM_ELSEWHERE],
        cwd=work,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    sha, callable_ = result.stdout.split()
    assert len(sha) == 64 and callable_ == "True"
    # The artifact of the installed app is the same as the checkout's: same files, same bytes.
    from provisioning.artifact import build_app_artifact

    assert build_app_artifact().sha256 == sha
    assert (work / ".artifacts").is_dir()
