"""The app artifact: reproducible bytes, and nothing that is host state, byte code or tests."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from provisioning.artifact import ArtifactError, build_app_artifact


def make_app(root: Path) -> Path:
    app = root / "app"
    (app / "impots" / "__pycache__").mkdir(parents=True)
    (app / "impots" / "__init__.py").write_text("VERSION = 17\n")
    (app / "impots" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (app / "impots" / "tests").mkdir()
    (app / "impots" / "tests" / "test_x.py").write_text("")
    (app / "instance" / "logs").mkdir(parents=True)
    (app / "instance" / "secrets.json").write_text('{"secret_key": "s"}')
    (app / "main_withmysql.wsgi").write_text("application = None\n")
    (app / "requirements.txt").write_text("flask==3.1.3\n")
    (app / "stray.pyc").write_bytes(b"\0")
    return app


def members(path: str) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_same_tree_same_sha(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    first = build_app_artifact(app, tmp_path / "out1")
    os.utime(app / "main_withmysql.wsgi", (1, 1))  # a touched file, same content
    second = build_app_artifact(app, tmp_path / "out2")
    assert first.sha256 == second.sha256
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    assert hashlib.sha256(Path(first.path).read_bytes()).hexdigest() == first.sha256


def test_content_change_changes_sha(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    before = build_app_artifact(app, tmp_path / "out")
    (app / "impots" / "__init__.py").write_text("VERSION = 18\n")
    assert build_app_artifact(app, tmp_path / "out").sha256 != before.sha256


def test_no_instance_bytecode_or_tests(tmp_path: Path) -> None:
    artifact = build_app_artifact(make_app(tmp_path), tmp_path / "out")
    names = members(artifact.path)
    assert sorted(names) == names
    assert set(names) == {"impots", "impots/__init__.py", "main_withmysql.wsgi", "requirements.txt"}


def test_fixed_owners_and_times(tmp_path: Path) -> None:
    artifact = build_app_artifact(make_app(tmp_path), tmp_path / "out")
    with tarfile.open(artifact.path) as tar:
        for info in tar.getmembers():
            assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "root", "root")
            assert info.mtime == 1577836800
            assert info.mode in (0o644, 0o755)


def test_missing_app_folder(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        build_app_artifact(tmp_path / "nothing", tmp_path / "out")


def test_real_app_artifact(tmp_path: Path) -> None:
    first = build_app_artifact(output_dir=tmp_path / "a")
    second = build_app_artifact(output_dir=tmp_path / "b")
    assert first.sha256 == second.sha256
    names = members(first.path)
    assert "main_withmysql.wsgi" in names and "requirements.txt" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("instance") or n.endswith(".pyc")]


def test_old_artifacts_are_pruned(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    out = tmp_path / "out"
    built = []
    for version in range(7):
        (app / "impots" / "__init__.py").write_text(f"VERSION = {version}\n")
        built.append(build_app_artifact(app, out).path)
        os.utime(built[-1], (version, version))  # oldest first, whatever the clock's resolution
    assert sorted(p.name for p in out.glob("*.tar.gz")) == sorted(Path(p).name for p in built[-5:])
