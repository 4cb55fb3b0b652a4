"""Redis with the app's password: our configuration file, its ``include`` line, a restart only on change.

The password is read here from the app's secrets file (``redis_password``) and written into a file of
mode 0640 root:<redis group>, which the distribution's ``redis.conf`` includes as its last directive (the
last value of a directive wins in Redis). It never appears on a command line or in the helper's output:
``status`` reports booleans, ``apply`` one line naming what it did.
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
from .secrets_file import required_secret

SECRET_KEY = "redis_password"
PROBE_TIMEOUT = 1.0
START_TIMEOUT = 20.0  # a restart reloads the RDB snapshot: sessions survive it


class RedisConfigError(RemoteError):
    """Redis' configuration could not be written, or Redis did not come back with it."""


def _quoted(value: str) -> str:
    """A Redis configuration string: double-quoted, with the escapes Redis' own parser reads."""
    escaped = {"\\": "\\\\", '"': '\\"'}
    return '"' + "".join(escaped.get(c, c if c.isprintable() else f"\\x{ord(c):02x}") for c in value) + '"'


def wanted_text(password: str, maxmemory_mb: int, policy: str) -> str:
    # Plain 127.0.0.1: the optional "-::1" of Debian's redis.conf needs Redis 7 (Ubuntu 22.04 has 6.0,
    # RHEL 8/9 5.0/6.2), and the app connects to 127.0.0.1 only.
    return (
        "# Managed by impots-provisioning (provisioning/remote/redis_config.py): do not edit.\n"
        "bind 127.0.0.1\n"
        "protected-mode yes\n"
        f"requirepass {_quoted(password)}\n"
        f"maxmemory {int(maxmemory_mb)}mb\n"
        f"maxmemory-policy {policy}\n"
    )


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


def probe(port: int, password: str | None) -> str:
    """``ours`` (asks for a password and takes ours), ``open`` (no password asked), ``other`` (another
    password), ``loading`` or ``down``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as connection:
            answer = _send(connection, "PING")
            if answer.startswith("-LOADING"):
                return "loading"
            if answer.startswith("+PONG"):
                return "open"
            if not answer.startswith("-NOAUTH") or not password:
                return "other"
            return "ours" if _send(connection, "AUTH", password) == "+OK" else "other"
    except OSError:
        return "down"


def status(
    path: str, secrets: str, main_configs: list[str], port: int, maxmemory_mb: int, policy: str
) -> dict:
    """Booleans only: is our file current (by digest), is it included last, does Redis take the password."""
    password = _secret(secrets)
    main = main_config(main_configs)
    current = password is not None and _file_digest(path) == _digest(
        wanted_text(password, maxmemory_mb, policy).encode()
    )
    return {
        "password": password is not None,
        "file": current,
        "access": _access(path),
        "included": bool(main) and _included_last(_read_lines(main), path),
        "server": probe(port, password),
    }


def _secret(secrets: str) -> str | None:
    try:
        return required_secret(secrets, SECRET_KEY)
    except RemoteError:
        return None


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


def _restart(command: list[str], port: int, password: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RedisConfigError(
            f"{' '.join(command)} failed (exit {result.returncode})", result.stdout + result.stderr
        )
    deadline = time.monotonic() + START_TIMEOUT
    while (state := probe(port, password)) != "ours":
        if time.monotonic() > deadline:
            raise RedisConfigError(
                f"Redis on 127.0.0.1:{port} does not take the app's password after {' '.join(command)} "
                f"(it answers: {state}); see the Redis log"
            )
        time.sleep(0.2)


def apply(
    path: str,
    secrets: str,
    group: str,
    main_configs: list[str],
    port: int,
    maxmemory_mb: int,
    policy: str,
    restart: list[str],
) -> str:
    """Write our file and its include line where they differ; restart Redis when either changed or the
    running server does not take the password yet (an interrupted run)."""
    password = required_secret(secrets, SECRET_KEY)
    main = main_config(main_configs)
    if main is None:
        raise RedisConfigError(f"no Redis configuration file at {' or '.join(main_configs)}")
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise RedisConfigError(f"no group {group!r} on this host to own {path}") from None
    text = wanted_text(password, maxmemory_mb, policy)
    done = []
    if _file_digest(path) != _digest(text.encode()) or _access(path) != f"root:{group}:640":
        content_changed = _file_digest(path) != _digest(text.encode())
        _write_file(path, text, gid)
        done.append(f"{path} written" if content_changed else f"{path} owner and mode set")
    else:
        content_changed = False
    include_changed = not _included_last(_read_lines(main), path)
    if include_changed:
        _include_last(main, path)
        done.append(f"{main} includes it")
    _relabel(path, main)
    if content_changed or include_changed or probe(port, password) != "ours":
        _restart(restart, port, password)
        done.append("Redis restarted")
    return "; ".join(done) or "Redis already configured"
