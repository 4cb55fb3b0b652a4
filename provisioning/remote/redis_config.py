"""Redis with the deploy's password and one ACL user per site: our configuration file, its ``include``
line, a restart only on change.

The passwords are read here from the deploy's store (``redis_password`` for the default user, the
deploy's and the admin's; one key per site for its own user) and written as SHA-256 (``#<hex>``, see
``redis_acl``) into a file of mode 0640 root:<redis group>, which the distribution's ``redis.conf``
includes as its last directive (the last value of a directive wins in Redis). No password appears on a
command line, in the file or in the helper's output: ``status`` reports booleans, ``apply`` one line
naming what it did. A Redis without ACL users (before 6.0) is refused before anything is written: the
sites would have to share one password, and each could read and forge the other's sessions.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

from .errors import RemoteError
from .redis_acl import ACL_VERSION, default_user_line, server_version, site_user_line, version_text
from .secrets_file import read_secrets

SECRET_KEY = "redis_password"
SiteUser = tuple[str, str, str]  # a site's ACL user: name, password, key prefix
PROBE_TIMEOUT = 1.0
START_TIMEOUT = 20.0  # a restart reloads the RDB snapshot: sessions survive it


class RedisConfigError(RemoteError):
    """Redis' configuration could not be written, or Redis did not come back with it."""


def wanted_text(
    password: str,
    maxmemory_mb: int,
    policy: str,
    users: list[SiteUser],
    version: tuple[int, int, int],
) -> str:
    """Our file: ``users`` are (name, password, key prefix) of the sites' ACL users."""
    # Plain 127.0.0.1: the optional "-::1" of Debian's redis.conf needs Redis 7 (Ubuntu 22.04 has 6.0,
    # RHEL 9 6.2), and the app connects to 127.0.0.1 only.
    lines = [
        "# Managed by impots-provisioning (provisioning/remote/redis_config.py): do not edit.",
        "bind 127.0.0.1",
        "protected-mode yes",
        f"maxmemory {int(maxmemory_mb)}mb",
        f"maxmemory-policy {policy}",
        default_user_line(password, version),
        *(site_user_line(name, secret, prefix) for name, secret, prefix in users),
    ]
    return "\n".join(lines) + "\n"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return _digest(handle.read())
    except FileNotFoundError:
        return None


def _access(path: str) -> str | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    owner, group = pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name
    return f"{owner}:{group}:{info.st_mode & 0o7777:o}"


def main_config(candidates: list[str]) -> str | None:
    """The distribution's redis.conf: the first of ``candidates`` that exists (RHEL 8 vs 9 layouts)."""
    return next((path for path in candidates if os.path.isfile(path)), None)


def _include_line(path: str) -> str:
    return f"include {path}"


def _included_last(lines: list[str], path: str) -> bool:
    directives = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return directives[-1:] == [_include_line(path)] and directives.count(_include_line(path)) == 1


def _read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read().splitlines()


def _send(connection: socket.socket, *words: str) -> str:
    """One RESP command; the first line of the answer."""
    parts = [f"*{len(words)}\r\n"]
    for word in words:
        parts.append(f"${len(word.encode())}\r\n{word}\r\n")
    connection.sendall("".join(parts).encode())
    answer = b""
    while not answer.endswith(b"\r\n"):
        chunk = connection.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer.decode(errors="replace").strip()


def probe(port: int, password: str | None, user: str | None = None) -> str:
    """``ours`` (asks for a password and takes ours, as ``user`` when given), ``open`` (no password
    asked), ``other`` (another password, or no such user), ``loading`` or ``down``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as connection:
            answer = _send(connection, "PING")
            if answer.startswith("-LOADING"):
                return "loading"
            if answer.startswith("+PONG"):
                return "open"
            if not answer.startswith("-NOAUTH") or not password:
                return "other"
            login = ("AUTH", user, password) if user else ("AUTH", password)
            return "ours" if _send(connection, *login) == "+OK" else "other"
    except OSError:
        return "down"


def _users_probe(port: int, users: list[SiteUser]) -> str:
    """``ours`` when every site's user logs in with its password, else the first other answer."""
    states = (probe(port, secret, name) for name, secret, _ in users)
    return next((state for state in states if state != "ours"), "ours")


def _takes_passwords(port: int, password: str, users: list[SiteUser]) -> str:
    """``ours`` when the default user and every site's user log in, else the first other answer."""
    state = probe(port, password)
    return _users_probe(port, users) if state == "ours" else state


def _passwords(secrets: str, users: list[dict]) -> tuple[str | None, list[SiteUser] | None, list[str]]:
    """From one read of the store: the default user's password (None when absent), the sites' users
    (None when one has no password), and the store's keys that are empty."""
    values = read_secrets(secrets)
    password = str(values[SECRET_KEY]) if values.get(SECRET_KEY) else None
    sites_missing = [user["secret"] for user in users if not values.get(user["secret"])]
    missing = ([] if password else [SECRET_KEY]) + sites_missing
    if sites_missing:
        return password, None, missing
    sites = [(user["user"], values[user["secret"]], user["key_prefix"]) for user in users]
    return password, sites, missing


def _version_refused(users: list[dict], version: tuple[int, int, int] | None) -> str | None:
    if not users or (version is not None and version >= ACL_VERSION):
        return None
    return (
        f"Redis {version_text(version)} on this host has no ACL users (they need Redis 6.0 or later): "
        "each site would share one password and could read and forge the other sites' sessions; "
        "install Redis 6 or later (RHEL 8: dnf module enable redis:6)"
    )


def status(
    path: str,
    secrets: str,
    main_configs: list[str],
    port: int,
    maxmemory_mb: int,
    policy: str,
    users: list[dict] | None = None,
) -> dict:
    """Booleans only: is our file current (by digest), is it included last, does Redis take the
    passwords (``server``: the default user's, ``users``: every site's); ``refused``: why this Redis
    cannot be configured (no ACL), or None."""
    users = list(users or [])
    password, sites, _ = _passwords(secrets, users)
    version = server_version()
    main = main_config(main_configs)
    known = password is not None and sites is not None and version is not None
    current = known and _file_digest(path) == _digest(
        wanted_text(password, maxmemory_mb, policy, sites, version).encode()  # type: ignore[arg-type]
    )
    return {
        "password": password is not None and sites is not None,
        "file": current,
        "access": _access(path),
        "included": bool(main) and _included_last(_read_lines(main), path),
        "server": probe(port, password),
        "users": _users_probe(port, sites) if sites else ("ours" if not users else "other"),
        "refused": _version_refused(users, version) if version is not None else None,
    }


def _write_file(path: str, text: str, gid: int) -> None:
    # Written beside the file then renamed: Redis never reads half of it, and mkstemp makes it 0600.
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.mkdir(folder, 0o750)
        os.chown(folder, 0, gid)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".impots-redis-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chown(temporary, 0, gid)
    os.chmod(temporary, 0o640)
    os.replace(temporary, path)


def _include_last(main: str, path: str) -> None:
    """Make ``include <path>`` the last directive of ``main``, keeping its owner and mode."""
    lines = [line for line in _read_lines(main) if line.strip() != _include_line(path)]
    lines += ["", "# impots-provisioning: our settings (password, memory limit) win over the ones above.",
              _include_line(path)]  # fmt: skip
    info = os.stat(main)
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(main), prefix=".impots-redis-")
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chown(temporary, info.st_uid, info.st_gid)
    os.chmod(temporary, info.st_mode & 0o7777)
    os.replace(temporary, main)


def _relabel(*paths: str) -> None:
    # SELinux hosts: a renamed temporary file keeps the label of where it was made; set the expected one.
    if shutil.which("restorecon"):
        subprocess.run(["restorecon", *paths], capture_output=True, check=False)


def _restart(command: list[str], port: int, password: str, users: list[SiteUser]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RedisConfigError(
            f"{' '.join(command)} failed (exit {result.returncode})", result.stdout + result.stderr
        )
    deadline = time.monotonic() + START_TIMEOUT
    while (state := _takes_passwords(port, password, users)) != "ours":
        if time.monotonic() > deadline:
            raise RedisConfigError(
                f"Redis on 127.0.0.1:{port} does not take the deploy's and the sites' passwords after "
                f"{' '.join(command)} (it answers: {state}); see the Redis log"
            )
        time.sleep(0.2)


def _checked_inputs(
    secrets: str, main_configs: list[str], group: str, users: list[dict]
) -> tuple[str, list[SiteUser], tuple[int, int, int], str, int]:
    """Everything ``apply`` needs, or a ``RemoteError`` naming what is missing, before any change."""
    version = server_version()
    refused = _version_refused(users, version)
    if refused:
        raise RedisConfigError(refused)
    if version is None:
        raise RedisConfigError("no redis-server on this host")
    password, sites, missing = _passwords(secrets, users)
    if missing:
        raise RedisConfigError(f"{secrets} has no {', '.join(missing)}")
    main = main_config(main_configs)
    if main is None:
        raise RedisConfigError(f"no Redis configuration file at {' or '.join(main_configs)}")
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise RedisConfigError(f"no group {group!r} on this host to own our Redis file") from None
    return password, sites, version, main, gid


def apply(
    path: str,
    secrets: str,
    group: str,
    main_configs: list[str],
    port: int,
    maxmemory_mb: int,
    policy: str,
    restart: list[str],
    users: list[dict] | None = None,
) -> str:
    """Write our file and its include line where they differ; restart Redis when either changed or the
    running server does not take the passwords yet (an interrupted run). ``users``: one
    ``{"user", "secret", "key_prefix"}`` per site (``secret``: the store's key of its password)."""
    users = list(users or [])
    password, sites, version, main, gid = _checked_inputs(secrets, main_configs, group, users)
    text = wanted_text(password, maxmemory_mb, policy, sites, version)
    done = []
    content_changed = _file_digest(path) != _digest(text.encode())
    if content_changed or _access(path) != f"root:{group}:640":
        _write_file(path, text, gid)
        done.append(f"{path} written" if content_changed else f"{path} owner and mode set")
    include_changed = not _included_last(_read_lines(main), path)
    if include_changed:
        _include_last(main, path)
        done.append(f"{main} includes it")
    _relabel(path, main)
    if content_changed or include_changed or _takes_passwords(port, password, sites) != "ours":
        _restart(restart, port, password, sites)
        done.append("Redis restarted")
    return "; ".join(done) or "Redis already configured"
