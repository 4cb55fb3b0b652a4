"""Redis ACL users as ``user`` lines of our Redis file: the default user (the deploy's and the admin's)
and one user per impots site, limited to its own keys and to the commands the app runs.

Passwords are written as their SHA-256 (``#<hex>``, Redis' own form): the file never holds one in
clear, and Redis never needs one on a command line. Pure functions: the helper reads the passwords from
the deploy's store on the target and calls these there.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess

# What app/impots/web sends, nothing more: a PING (start-up, a new visitor), Flask-Session's GET,
# SET (with EX) and DEL, the login throttle's script (redis-py's Script: EVALSHA, then SCRIPT LOAD
# when Redis lost it) and the commands inside that script, which Redis checks against the calling user
# too. No EVAL, KEYS/SCAN, FLUSH*, CONFIG, ACL, DEBUG, SELECT, MONITOR, CLIENT, INFO, pub/sub.
SITE_COMMANDS = (
    "ping",
    "get",
    "set",
    "del",
    "evalsha",
    "script|load",
    "hincrby",
    "hset",
    "hmget",
    "pexpire",
)
ACL_VERSION = (6, 0)  # ACL users and the "user" directive
CHANNELS_VERSION = (6, 2)  # "&" channel patterns ("allchannels"); before 6.2 every user has every channel

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A literal prefix ending in ":": no glob character (* ? [ ] \) may widen the key pattern.
_KEY_PREFIX = re.compile(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)*:")
_VERSION = re.compile(r"\bv=(\d+)\.(\d+)\.(\d+)")


class AclError(ValueError):
    """A site user or key prefix that would not make a safe ACL rule."""


def password_hash(password: str) -> str:
    """Redis' ``#<sha256 hex>`` form of a password."""
    if not password:
        raise AclError("an empty Redis password")
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def default_user_line(password: str, version: tuple[int, int, int]) -> str:
    """The default user: every key and command, our password only (``resetpass`` drops ``nopass``
    and any password another file gave it)."""
    channels = " allchannels" if version >= CHANNELS_VERSION else ""
    return f"user default on resetpass {password_hash(password)} ~*{channels} +@all"


def site_user_line(user: str, password: str, key_prefix: str) -> str:
    """One site: its own keys (``<key_prefix>*``) and the app's commands; ``reset`` first so that no
    rule of an earlier line (or a Redis default) survives: no channel, no other key, no other command."""
    if not _USER_NAME.fullmatch(user) or user == "default":
        raise AclError(f"Redis user {user!r}: expected letters, digits, '_', '.', '-' (not 'default')")
    if not _KEY_PREFIX.fullmatch(key_prefix):
        raise AclError(
            f"key prefix {key_prefix!r} of Redis user {user}: expected words separated by ':', ending in ':'"
        )
    commands = " ".join(f"+{command}" for command in SITE_COMMANDS)
    return f"user {user} reset on {password_hash(password)} ~{key_prefix}* {commands}"


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``redis-server --version`` (``Redis server v=7.0.15 sha=...``) as a tuple."""
    found = _VERSION.search(text)
    return tuple(int(part) for part in found.groups()) if found else None  # type: ignore[return-value]


def server_version() -> tuple[int, int, int] | None:
    """The installed redis-server's version, or None when none is installed."""
    # The helper runs with a minimal PATH on some hosts: look in the distributions' places too.
    candidates = (shutil.which("redis-server"), "/usr/bin/redis-server", "/usr/sbin/redis-server")
    binary = next((path for path in candidates if path and os.path.exists(path)), None)
    if binary is None:
        return None
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return parse_version(result.stdout)


def version_text(version: tuple[int, int, int] | None) -> str:
    return "not installed" if version is None else ".".join(map(str, version))
