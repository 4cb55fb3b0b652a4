"""Command line of the target helper: ``python3 impots-helper.pyz <command> '<JSON object>'``.

The JSON object holds the command's keyword arguments (``provisioning.remote_call`` writes it, one
shell-quoted argument). A query prints JSON, an action one line; a ``RemoteError`` prints its details
and then one line ``impots-helper: <problem>`` on stderr, exit 1; bad usage exits 2.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Callable

from .errors import RemoteError, UsageError

# "module:function" of each command. Only the command's own module is imported: a no-change run starts
# the helper several times per host, and a zipapp compiles every module it imports, each time.
COMMANDS: dict[str, str] = {
    "secrets-status": "secrets_file:status",
    "secrets-merge": "secrets_file:merge",
    "db-state": "accounts:database_state",
    "mysql-ensure": "accounts:mysql_ensure",
    "pg-ensure": "accounts:pg_ensure",
    "db-seed": "seeder:seed",
    "apache-snapshot": "apache:snapshot",
    "apache-restore": "apache:restore",
    "apache-reload": "apache:reload",
    "smoke": "smoke:check",
    "redis-status": "redis_config:status",
    "redis-apply": "redis_config:apply",
}
USAGE_EXIT = 2


def command_function(name: str) -> Callable:
    module, function = COMMANDS[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


def _check_arguments(function: Callable, arguments: dict) -> None:
    """What ``inspect.signature(function).bind(**arguments)`` checks, for plain keyword parameters
    (``inspect`` alone costs a tenth of the helper's start-up)."""
    code = function.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    required = set(names[: code.co_argcount - len(function.__defaults__ or ())])
    required |= {name for name in names[code.co_argcount :] if name not in (function.__kwdefaults__ or {})}
    unknown = [name for name in arguments if name not in names]
    missing = [name for name in names if name in required and name not in arguments]
    if unknown:
        raise TypeError(f"got an unexpected keyword argument {unknown[0]!r}")
    if missing:
        raise TypeError(f"missing a required argument: {missing[0]!r}")


def parse(argv: list[str]) -> tuple[Callable, dict]:
    """The command's function and its keyword arguments, checked against its signature."""
    if len(argv) != 2 or argv[0] not in COMMANDS:
        raise UsageError(f"usage: impots-helper.pyz {{{','.join(COMMANDS)}}} '<JSON object of arguments>'")
    function = command_function(argv[0])
    try:
        arguments = json.loads(argv[1])
    except ValueError as error:
        raise UsageError(f"{argv[0]}: the arguments are not JSON: {error}") from error
    if not isinstance(arguments, dict):
        raise UsageError(f"{argv[0]}: the arguments must be a JSON object")
    try:
        _check_arguments(function, arguments)
    except TypeError as error:
        raise UsageError(f"{argv[0]}: {error}") from error
    return function, arguments


def main(argv: list[str] | None = None) -> int:
    try:
        function, arguments = parse(sys.argv[1:] if argv is None else argv)
        result = function(**arguments)
    except UsageError as error:
        print(f"impots-helper: {error}", file=sys.stderr)
        return USAGE_EXIT
    except RemoteError as error:
        if error.details.strip():
            print(error.details.rstrip("\n"), file=sys.stderr)
        print(f"impots-helper: {error}", file=sys.stderr)
        return 1
    if isinstance(result, dict):
        print(json.dumps(result, sort_keys=True))
    elif result is not None:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
