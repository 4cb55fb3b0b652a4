"""Files and folders by content hash and metadata, many per operation (one fact for all of them)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from io import StringIO

from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, operation
from pyinfra.api.util import get_file_sha256
from pyinfra.facts.files import FileContents
from pyinfra.operations.util.files import generate_color_diff

from provisioning.linux.facts import PathsState, cached_fact


def _metadata_commands(path: str, current: dict, user: str, group: str, mode: str) -> list[str]:
    commands = []
    if (current.get("user"), current.get("group")) != (user, group):
        commands.append(f"chown {user}:{group} {path}")
    if current.get("mode") != mode:
        commands.append(f"chmod {mode} {path}")
    return commands


@operation()
def folders_present(folders: list[dict]):
    """
    Create folders and keep their owner, group and mode.

    + folders: dicts with ``path``, ``user``, ``group``, ``mode`` (octal digits, e.g. ``"750"``),
      parents before children

    **Example:**

    .. code:: python

        folders_present(
            name="Folders",
            folders=[{"path": "/opt/impots", "user": "root", "group": "root", "mode": "755"}],
        )
    """
    current = cached_fact(PathsState, paths=[f["path"] for f in folders], hashes=False)
    changed = False
    for folder in folders:
        path, user, group, mode = folder["path"], folder["user"], folder["group"], folder["mode"]
        found = current.get(path)
        if found is None:
            yield f"mkdir -p {path} && chown {user}:{group} {path} && chmod {mode} {path}"
            changed = True
            continue
        if found.get("type") != "directory":
            raise OSError(f"{path} exists and is not a folder ({found.get('type')})")
        commands = _metadata_commands(path, found, user, group, mode)
        if commands:
            yield " && ".join(commands)
            changed = True
    if not changed:
        host.noop(f"{len(folders)} folders are already in place")


def _wanted_text(content: str | Callable[[], str]) -> str:
    return content() if callable(content) else content


def _print_diff(path: str, exists: bool, text: str) -> None:
    current = host.get_fact(FileContents, path=path) if exists else None
    host.log(f"Will {'modify' if exists else 'create'} {path}", logger.info)
    current_lines = [f"{line}\n" for line in current or []]
    for line in generate_color_diff(current_lines, text.splitlines(keepends=True)):
        logger.info("  %s", line)


@operation()
def files_present(files: list[dict], before: str | None = None):
    """
    Keep files with the wanted content, owner, group and mode; ``--diff`` shows content changes.

    + files: dicts with ``path``, ``content`` (text, or a function returning it when the operation
      runs: for text that depends on an earlier operation) or ``src`` (a controller file), and
      ``user``, ``group``, ``mode`` (octal digits)
    + before: command run once before the first content change (e.g. snapshot the configuration)

    Never use it for secrets: with ``--diff`` the content is printed.
    """
    current = cached_fact(PathsState, paths=[f["path"] for f in files], hashes=True)
    # Every command is worked out before the first is yielded: pyinfra's change detection stops at
    # the first command, and each file's --diff is printed while its commands are worked out.
    commands: list = []
    for wanted in files:
        path, user, group, mode = wanted["path"], wanted["user"], wanted["group"], wanted["mode"]
        found = current.get(path, {})
        if "src" in wanted:
            source, text = wanted["src"], None
            digest = get_file_sha256(source)
        else:
            text = _wanted_text(wanted["content"])
            source, digest = StringIO(text), hashlib.sha256(text.encode()).hexdigest()
        if found.get("sha256") != digest:
            if state.config.DIFF and text is not None:
                _print_diff(path, bool(found), text)
            if before and before not in commands:
                commands.insert(0, before)
            commands.append(FileUploadCommand(source, path))
            commands.append(f"chown {user}:{group} {path} && chmod {mode} {path}")
            continue
        metadata = _metadata_commands(path, found, user, group, mode)
        if metadata:
            commands.append(" && ".join(metadata))
    if not commands:
        host.noop(f"{len(files)} files are already up to date")
    yield from commands
