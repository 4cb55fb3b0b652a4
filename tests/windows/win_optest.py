"""Run one of our operations against given facts (pyinfra-testing's fake host) and return what it yields."""

from __future__ import annotations

from io import BytesIO

from pyinfra.api import FileUploadCommand, StringCommand
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeState, create_host


def run_op(op, facts: dict, *args, **kwargs):
    """``(commands, noop description)``; a script is its text, an upload is ``("upload", src, dest)``
    where ``src`` is the bytes of an in-memory upload or the controller path."""
    state = FakeState()
    host = create_host(state, facts=facts)
    with ctx_state.use(state), ctx_host.use(host):
        yielded = list(op._inner(*args, **kwargs))
    commands = []
    for command in yielded:
        if isinstance(command, str):
            commands.append(StringCommand(command.strip()).get_raw_value())
        elif isinstance(command, FileUploadCommand):
            src = command.src.getvalue() if isinstance(command.src, BytesIO) else command.src
            commands.append(("upload", src, command.dest))
        else:
            raise AssertionError(f"unexpected command {command!r}")
    return commands, host.noop_description
