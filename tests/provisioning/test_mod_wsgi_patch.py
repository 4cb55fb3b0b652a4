"""provisioning.mod_wsgi_patch: each text replaced exactly once, a clear error otherwise, the version label,
and the patched sdists of the pinned versions (downloaded once from PyPI into .artifacts/)."""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import pytest
from packaging.version import Version
from test_wheels import DEBIAN_12

from provisioning import mod_wsgi_patch as patch
from provisioning import wheels
from provisioning.linux.facts import VenvState
from provisioning.settings import MOD_WSGI_VERSIONS


def fake_source(root: Path, version: str, extra: str = "") -> Path:
    """A tree holding each text the patch of ``version`` expects, once (and ``extra`` in every file)."""
    for replacement in patch.replacements(version):
        path = root / replacement.path
        path.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text() if path.exists() else extra
        path.write_text(f"{text}/* before */\n{replacement.old}/* after */\n")
    return root


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("version", MOD_WSGI_VERSIONS)
def test_every_text_found_once_is_replaced(tmp_path: Path, version: str) -> None:
    source = fake_source(tmp_path, version)
    patch.apply(source, version)
    texts = "".join(tree(source).values())
    assert "APR_STATUS_IS_ENOENT(rv)" in texts and "wsgi_kept_random(cmd->server, name, 0)" in texts
    assert "entry->listener_fd = wsgi_kept_socket(entry);" in texts and "!wsgi_keeps_socket(group)" in texts
    assert f'MOD_WSGI_VERSION_STRING "{patch.patched_version(version)}"' in texts
    assert "    entry->random = random();\n" not in texts


@pytest.mark.parametrize("count", [0, 2])
def test_a_text_not_found_exactly_once_stops_before_any_file_is_written(tmp_path: Path, count: int) -> None:
    source = fake_source(tmp_path, "6.1.1")
    remote = source / "src/server/wsgi_remote.c"
    old = patch.FIXES["6.1.1"][0].old
    remote.write_text(remote.read_text().replace(old, old * count))
    before = tree(source)
    with pytest.raises(
        patch.PatchError, match=rf"mod_wsgi 6\.1\.1: src/server/wsgi_remote\.c: .* {count} times"
    ):
        patch.apply(source, "6.1.1")
    assert tree(source) == before  # the version header, checked first, was not written either


def test_the_label_is_a_local_version_that_changes_with_the_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = {version: patch.patched_version(version) for version in MOD_WSGI_VERSIONS}
    for version, label in labels.items():
        assert re.fullmatch(rf"{re.escape(version)}\+impots\.[0-9a-f]{{8}}", label)
        assert Version(label).local and Version(label).public == version and str(Version(label)) == label
    first = patch.FIXES["6.1.1"][0]
    changed = patch.Replacement(first.path, first.old, first.new.replace("re-created", "recreated"))
    monkeypatch.setitem(patch.FIXES, "6.1.1", (changed, *patch.FIXES["6.1.1"][1:]))
    assert patch.patched_version("6.1.1") != labels["6.1.1"]


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(
        patch.PatchError, match=r"mod_wsgi 4\.9\.4: no patch for this version \(patched: 6\.1\.1, 5\.0\.2\)"
    ):
        patch.patched_version("4.9.4")


def test_a_download_with_another_sha256_is_refused_and_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "served" / "mod_wsgi-6.1.1.tar.gz"
    served.parent.mkdir()
    served.write_bytes(b"not the sdist")
    monkeypatch.setattr(patch, "SDIST_DIR", tmp_path / "cache")
    monkeypatch.setitem(patch.SDISTS, "6.1.1", (served.as_uri(), patch.SDISTS["6.1.1"][1]))
    expected = hashlib.sha256(b"not the sdist").hexdigest()
    with pytest.raises(patch.PatchError, match=f"has sha256 {expected}, not the pinned"):
        patch.patched_sdist("6.1.1")
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("version", MOD_WSGI_VERSIONS)
def test_the_pinned_sdist_is_patched_and_named_by_its_label(version: str) -> None:
    sdist = patch.patched_sdist(version)  # from PyPI the first time, then from .artifacts/
    label = patch.patched_version(version)
    assert sdist == patch.sdist_path(version) and sdist.name == f"mod_wsgi-{label}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        header = archive.extractfile(f"mod_wsgi-{label}/src/server/wsgi_version.h").read().decode()
        setup = archive.extractfile(f"mod_wsgi-{label}/setup.py").read().decode()
    assert all(name.split("/")[0] == f"mod_wsgi-{label}" for name in names)
    assert f'#define MOD_WSGI_VERSION_STRING "{label}"' in header
    assert "src/server/wsgi_version.h" in setup  # setup.py reads its version from that header


def test_the_wheel_key_and_the_venv_fact_tell_patched_from_unpatched(tmp_path: Path, monkeypatch) -> None:
    platform = DEBIAN_12
    label = patch.patched_version("6.1.1")
    assert wheels.wheel_key(platform, "/usr/bin/apxs", label) != wheels.wheel_key(
        platform, "/usr/bin/apxs", "6.1.1"
    )
    monkeypatch.setattr(wheels, "WHEELS_DIR", tmp_path)
    key = wheels.wheel_key(platform, "/usr/bin/apxs", label)
    (tmp_path / key).mkdir()
    name, part = tmp_path / key / ".h.name", tmp_path / key / ".h.part"
    name.write_text(f"mod_wsgi-{label}-cp311-cp311-linux_x86_64.whl\n")
    part.write_bytes(b"wheel")
    assert wheels.store_wheel(key, name, part, label) == wheels.cached_wheel(key, label)
    assert wheels.cached_wheel(key, "6.1.1") is None  # an unpatched wheel is never taken for the patched
    state = VenvState().process(
        ["python=1", f"mod_wsgi={label}", "module_config=LoadModule wsgi_module x.so"]
    )
    assert state["mod_wsgi"] == label


def test_a_failed_download_names_the_version_and_the_address(tmp_path: Path, monkeypatch) -> None:
    missing = (tmp_path / "nowhere" / "mod_wsgi-6.1.1.tar.gz").as_uri()
    monkeypatch.setattr(patch, "SDIST_DIR", tmp_path / "cache")
    monkeypatch.setitem(patch.SDISTS, "6.1.1", (missing, patch.SDISTS["6.1.1"][1]))
    with pytest.raises(patch.PatchError, match=f"mod_wsgi 6.1.1: cannot download {missing}: "):
        patch.patched_sdist("6.1.1")
