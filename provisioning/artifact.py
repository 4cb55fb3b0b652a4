"""The application artifact: one reproducible tarball of ``app/`` built on the controller.

The same tree always gives the same bytes (sorted entries, fixed mtimes, owners and modes, gzip
header without name or time), so its sha256 names a release: a target re-extracts the app only
when the sha changes, and ``--dry`` runs plan no upload when nothing changed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# An installed package carries the app as provisioning/_app (setup.py); a checkout has app/ beside it.
_PACKAGED_APP = Path(__file__).resolve().parent / "_app"
APP_SOURCE = _PACKAGED_APP if _PACKAGED_APP.is_dir() else REPO_ROOT / "app"
# Controller-side outputs (app tarballs, each host's local CA): in the checkout, or, for an installed
# package, in the folder the deploy is run from.
ARTIFACTS_DIR = (Path.cwd() if APP_SOURCE == _PACKAGED_APP else REPO_ROOT) / ".artifacts"

# Never shipped: byte code, per-host state (instance/ holds secrets and logs) and the app's tests.
EXCLUDED_NAMES = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests", ".DS_Store"}
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".swp")
EXCLUDED_TOP_LEVEL = frozenset({"instance"})

KEPT_ARTIFACTS = 5  # older tarballs in .artifacts/ are deleted (one is built per change of app/)

# 2020-01-01: any fixed value works; zero upsets some unpackers' "file from the future/past" checks.
FIXED_MTIME = 1577836800


class ArtifactError(RuntimeError):
    """The artifact cannot be built (no app/ folder, unreadable or special files)."""


@dataclass(frozen=True)
class AppArtifact:
    path: str  # absolute path of the tarball on the controller
    sha256: str  # hex digest of the tarball's bytes

    @property
    def release(self) -> str:
        """Short name of the release folder on targets."""
        return self.sha256[:16]


def iter_app_files(source: Path) -> list[Path]:
    """Files and folders of ``source`` that go into the artifact, relative and sorted."""
    selected: list[Path] = []
    for folder, dirnames, filenames in os.walk(source):
        relative_folder = Path(folder).relative_to(source)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in EXCLUDED_NAMES and not (relative_folder == Path(".") and d in EXCLUDED_TOP_LEVEL)
        )
        for name in dirnames:
            selected.append(relative_folder / name)
        for name in sorted(filenames):
            if name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            selected.append(relative_folder / name)
    return sorted(selected, key=lambda p: p.as_posix())


def build_tarball(source: Path) -> bytes:
    """The artifact's bytes for the tree at ``source``."""
    if not source.is_dir():
        raise ArtifactError(f"the application folder {source} does not exist")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative in iter_app_files(source):
            full = source / relative
            info = tarfile.TarInfo(relative.as_posix())
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if full.is_symlink() or not (full.is_dir() or full.is_file()):
                raise ArtifactError(f"{full}: only plain files and folders can be shipped")
            if full.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            info.mode = 0o755 if os.access(full, os.X_OK) else 0o644
            data = full.read_bytes()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    # mtime=0 and no file name keep the gzip header identical from one build to the next.
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue()


def build_app_artifact(source: Path | None = None, output_dir: Path | None = None) -> AppArtifact:
    """Build (or reuse) ``.artifacts/impots-app-<sha>.tar.gz`` from ``app/`` and return it."""
    data = build_tarball(source or APP_SOURCE)
    sha256 = hashlib.sha256(data).hexdigest()
    output_dir = output_dir or ARTIFACTS_DIR
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"impots-app-{sha256[:16]}.tar.gz"
    if not path.exists():
        # Written under a temporary name then renamed: parallel runs never see half a file.
        with tempfile.NamedTemporaryFile(dir=output_dir, delete=False, suffix=".part") as part:
            part.write(data)
        os.replace(part.name, path)
        os.chmod(path, 0o644)
        _prune(output_dir)
    return AppArtifact(path=str(path), sha256=sha256)


def _prune(output_dir: Path) -> None:
    """Keep the newest artifacts only: each edit of app/ leaves one behind."""
    artifacts = sorted(output_dir.glob("impots-app-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in artifacts[KEPT_ARTIFACTS:]:
        old.unlink(missing_ok=True)


def app_requirements() -> str:
    """The app's pinned runtime requirements as shipped in the artifact (Contract 2)."""
    return (APP_SOURCE / "requirements.txt").read_text(encoding="utf-8")
