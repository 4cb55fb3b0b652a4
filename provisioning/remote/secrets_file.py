"""The app's secrets file (JSON, 0640 root:<Apache group>): read, report by digest, merge, generate.

Values never leave the target: ``status`` reports sha256 digests, given values arrive in a root-only
file that is deleted once read, missing ones are generated here.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import secrets
import tempfile

from .errors import SecretsError


def read_secrets(path: str) -> dict[str, str]:
    """The file's values; ``{}`` while it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise SecretsError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(values, dict):
        raise SecretsError(f"{path} does not hold a JSON object")
    return values


def required_secret(path: str, key: str) -> str:
    value = read_secrets(path).get(key)
    if not value:
        raise SecretsError(f"{path} has no {key}")
    return str(value)


def digest(value: object) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def status(path: str) -> dict:
    """Key -> sha256 of each value (enough to compare with wanted values, useless to an onlooker),
    and the file's owner, group and mode."""
    report: dict = {"values": {key: digest(value) for key, value in sorted(read_secrets(path).items())}}
    if os.path.exists(path):
        info = os.stat(path)
        report.update(
            user=pwd.getpwuid(info.st_uid).pw_name,
            group=grp.getgrgid(info.st_gid).gr_name,
            mode=format(info.st_mode & 0o7777, "o"),
        )
    return report


def _read_given(given_file: str) -> dict[str, str]:
    try:
        with open(given_file, encoding="utf-8") as handle:
            given = json.load(handle)
    except (OSError, ValueError) as error:
        raise SecretsError(f"cannot read the given secrets {given_file}: {error}") from error
    if not isinstance(given, dict):
        raise SecretsError(f"{given_file} does not hold a JSON object")
    return given


def merge(
    path: str,
    group: str,
    generate: list[str],
    given_file: str | None = None,
    source: str | None = None,
    keys: dict[str, str] | list[str] | None = None,
) -> str:
    """Write ``path`` with the given values (read from ``given_file``, then deleted) over the current
    ones, and a new random value for each key of ``generate`` that has none; 0640 root:``group``.
    With ``source``: ``path`` becomes exactly the ``keys`` of that file (a site's own secrets, copied
    from the deploy's store, ``keys`` mapping the site file's key to the store's; a key the store lacks
    is an error, never an empty value)."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise SecretsError(f"no group {group!r} on this host to own {path}") from None
    current = read_secrets(path)
    if source is not None:
        return _write(path, gid, current, _subset(source, keys or []))
    merged = dict(current)
    if given_file:
        merged.update(_read_given(given_file))
        os.unlink(given_file)
    for key in generate:
        if not merged.get(key):
            merged[key] = secrets.token_urlsafe(32)
    return _write(path, gid, current, merged)


def _subset(source: str, keys: dict[str, str] | list[str]) -> dict[str, str]:
    names = keys if isinstance(keys, dict) else {key: key for key in keys}
    values = read_secrets(source)
    missing = [name for name in names.values() if not values.get(name)]
    if missing:
        raise SecretsError(f"{source} has no {', '.join(missing)}")
    return {key: values[name] for key, name in names.items()}


def _write(path: str, gid: int, current: dict, merged: dict) -> str:
    changed = sorted(key for key in merged if merged[key] != current.get(key))
    # Written beside the file then renamed: a reader never sees half of it, and mkstemp makes it 0600.
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".secrets-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(merged, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chown(temporary, 0, gid)
    os.chmod(temporary, 0o640)
    os.replace(temporary, path)
    return f"secrets written: {', '.join(changed) or 'owner and mode only'}"
