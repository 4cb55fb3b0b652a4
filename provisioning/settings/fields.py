"""Field types of the host data: pydantic checks types and bounds, the message is ours.

A failing value gives ``ValueError(message)``, where ``{value!r}`` in the message is the value given (never
used for secrets); ``Problem`` names a key below the value being checked. ``model.py`` turns them into
``<host>: <key>: <problem>``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, Strict, ValidationError, WrapValidator

_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# "." and ".." segments are refused: browsers and proxies resolve them away before Apache sees them.
_URL_SEGMENT = r"/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+"


class Problem(ValueError):
    """A validator's message about ``where`` (keys or list indexes) below the value it checks."""

    def __init__(self, problem: str, *where: str | int):
        super().__init__(problem)
        self.where = where


def valid(message: str, test: Callable[[Any], Any] = lambda _: True) -> WrapValidator:
    """Pydantic's checks, then ``test``; on failure ``message`` (``{value!r}``: the value; never a secret)."""

    def wrap(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            if test(result := handler(value)):
                return result
        except ValidationError:
            pass
        raise ValueError(message.format(value=value))

    return WrapValidator(wrap)


def from_cli(value: Any) -> Any:
    """`pyinfra --data key=value` passes strings: accept their usual spellings for integers and booleans."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def text(pattern: str, message: str) -> Any:
    return Annotated[str, Strict(), valid(message, re.compile(pattern).fullmatch)]


def one_of(*allowed: str | None) -> Any:
    names = ", ".join(name for name in allowed if name is not None)
    return Annotated[Literal[allowed], valid(f"{{value!r}} is not one of {names}")]


def integer(low: int, high: int | None = None) -> Any:
    message = f"{{value!r}} is not an integer {f'from {low} to {high}' if high else f'>= {low}'}"
    return Annotated[int, Strict(), Field(ge=low, le=high), BeforeValidator(from_cli), valid(message)]


def list_of(what: str, min_length: int = 0) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, list | tuple) or len(value) < min_length:
            raise ValueError(f"must be a {'non-empty ' if min_length else ''}list of {what}")
        return value

    return BeforeValidator(check)


def is_hostname(name: str) -> bool:
    """True for a DNS host name made of lower-case labels (what Apache and the hosts file accept)."""
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def is_address(value: str) -> bool:
    try:
        return bool(ipaddress.ip_address(value))
    except ValueError:
        return False


Text = Annotated[str, Strict()]
Bool = Annotated[bool, Strict(), BeforeValidator(from_cli), valid("{value!r} is not True or False")]
HostName = Annotated[Text, valid("{value!r} is not a host name (lower-case letters, digits, -)", is_hostname)]
Alias = text(rf"/|({_URL_SEGMENT})+", "{value!r} must be '/' or /path[/path...] without a trailing '/'")
# The app accepts "" or one or two segments (app/impots/config.py): refuse what it would refuse.
PrefixUrl = text(
    rf"({_URL_SEGMENT}){{0,2}}",
    "{value!r} must be '' or /segment or /segment/segment, without a trailing '/' or '.' segments",
)
ControllerFile = Annotated[
    Text,
    valid("{value!r} is not a readable file on the controller", os.path.isfile),
    AfterValidator(os.path.abspath),
]
# Database and user names end up quoted inside SQL: keep them to characters that need no escaping.
DatabaseName = text(
    r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}", "{value!r} is not a database name (letters, digits, _, -; 1-63)"
)
DatabaseUser = text(r"[A-Za-z_][A-Za-z0-9_]{0,31}", "{value!r} is not a user name (letters, digits, _; 1-32)")
AdminAccount = text(r"[A-Za-z_][A-Za-z0-9_.-]{0,62}", "{value!r} is not an account name")
MailAddress = text(r"[^@\s]+@[^@\s]+", "{value!r} is not a mail address")
Port = Annotated[int, Strict(), Field(ge=1, le=65535), valid("{value!r} is not a port number (1-65535)")]
IpAddress = Annotated[Text, valid("{value!r} is not an IP address", is_address)]
# Install roots appear in shell commands and Apache directives: no spaces or shell metacharacters.
LinuxPath = text(
    r"(/(?!\.)[A-Za-z0-9._-]+)+", "{value!r} is not an absolute path made of letters, digits, '.', '_', '-'"
)
WindowsPath = Annotated[
    text(
        r"[A-Za-z]:([/\\][A-Za-z0-9._ ()-]+)*[/\\]?",
        "{value!r} is not an absolute Windows path like C:/folder",
    ),
    AfterValidator(lambda path: path.replace("\\", "/")),
]
# Apache's accounts end up in ACLs: a NetBIOS domain (or "." for this machine) and a SAM account name.
WindowsAccount = text(
    r"((\.|[A-Za-z0-9][A-Za-z0-9 ._-]{0,14})\\)?[A-Za-z0-9_][A-Za-z0-9 ._-]{0,19}(?<![ .])",
    "{value!r} is not a Windows account name like LAB\\student or .\\labuser",
)
