"""``@winssh/HOST``: pyinfra's SSH connector speaking PowerShell to a Windows OpenSSH server.

Connection, authentication, host keys and SFTP are pyinfra's own (``SSHConnector``). What changes:

- every command is a PowerShell script, sent as ``powershell -NoProfile -NonInteractive -EncodedCommand
  <base64 of UTF-16LE>`` -- no ``sh -c``, no ``sudo``, no ``export``: ``_env`` and ``_chdir`` are set
  inside the script, and the script's exit code comes back unchanged (see ``wrap_script``);
- a script too long for cmd.exe's 8191-character command line is sent on stdin to a short loader;
- CLIXML on stderr (Windows PowerShell's way of writing errors to a pipe) is decoded to plain text;
- file paths are converted for Windows OpenSSH's SFTP server (``C:\\x`` -> ``/C:/x``).

Privilege escalation does not exist here: connect as an administrator (see docs/windows.md).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from paramiko import Channel
from pyinfra import logger
from pyinfra.api.exceptions import ConnectError, PyinfraError
from pyinfra.api.output import echo
from pyinfra.connectors.ssh import SSHConnector
from pyinfra.connectors.util import CommandOutput, OutputLine, read_output_buffers, write_stdin
from typing_extensions import Unpack, override

from provisioning.windows.powershell import (
    CMD_LINE_LIMIT,
    STDIN_LOADER,
    decode_clixml,
    powershell_command_line,
    sftp_path,
    wrap_script,
)

if TYPE_CHECKING:
    from pyinfra.api.arguments import ConnectorArguments
    from pyinfra.api.command import StringCommand

# Global arguments that make pyinfra build POSIX privilege-escalation commands.
_ESCALATION_ARGUMENTS = ("_sudo", "_sudo_user", "_su_user", "_doas", "_doas_user", "_dzdo", "_dzdo_user")


class WinSSHError(PyinfraError):
    """A pyinfra feature that has no meaning on a Windows host was asked for."""


def _refuse_escalation(host_name: str, arguments: dict[str, Any]) -> None:
    used = [name for name in _ESCALATION_ARGUMENTS if arguments.get(name)]
    if used:
        raise WinSSHError(
            f"{host_name}: {', '.join(used)} cannot be used with @winssh: Windows has no sudo/su; "
            "connect as an administrator instead"
        )


def build_command_line(
    script: str, env: dict[str, str] | None = None, chdir: str | None = None
) -> tuple[str, str | None]:
    """``(command line, stdin or None)`` for one script; stdin is used only for very long scripts."""
    wrapped = wrap_script(script, env=env, chdir=chdir)
    command_line = powershell_command_line(wrapped)
    # Margin for what sshd puts around the command (`cmd.exe /c "..."`).
    if len(command_line) <= CMD_LINE_LIMIT - 200:
        return command_line, None
    return powershell_command_line(STDIN_LOADER), base64.b64encode(wrapped.encode("utf-8")).decode("ascii")


class WinSSHConnector(SSHConnector):
    """
    Connect to Windows hosts over their built-in OpenSSH server and run PowerShell.

    .. code:: python

        hosts = [("@winssh/lab-pc-01", {"ssh_user": "Administrateur", "ssh_key": "~/.ssh/id_ed25519"})]

    Hosts are put in the ``windows`` group (so ``group_data/windows.py`` applies) and get
    ``impots_os = "windows"``.
    """

    @override
    @staticmethod
    def make_names_data(name: str) -> Iterator[tuple[str, dict, list[str]]]:
        if not name:
            raise ConnectError("@winssh needs a host name: @winssh/HOST")
        yield f"@winssh/{name}", {"ssh_hostname": name, "impots_os": "windows"}, ["windows"]

    @override
    def connect(self) -> None:
        if self.data["ssh_file_transfer_protocol"] != "sftp":
            raise ConnectError(
                f"{self.host.name}: ssh_file_transfer_protocol must be 'sftp' with @winssh "
                f"(got {self.data['ssh_file_transfer_protocol']!r}): scp paths go through cmd.exe"
            )
        super().connect()

    @override
    def run_shell_command(
        self,
        command: StringCommand | str,
        print_output: bool = False,
        print_input: bool = False,
        **arguments: Unpack[ConnectorArguments],
    ) -> tuple[bool, CommandOutput]:
        """
        Run one PowerShell script on the host and return ``(success, output)``.

        ``_env`` and ``_chdir`` are applied inside the script; ``_timeout``, ``_get_pty`` and
        ``_success_exit_codes`` work as with ``@ssh``; ``_sudo``/``_su_user``/``_doas`` raise.
        """
        _refuse_escalation(self.host.name, arguments)
        get_pty = arguments.pop("_get_pty", False)
        timeout = arguments.pop("_timeout", None)
        stdin = arguments.pop("_stdin", None)
        success_exit_codes = arguments.pop("_success_exit_codes", None)

        # Facts hand over a plain str, operations a StringCommand (whose masked form hides secrets).
        script = command if isinstance(command, str) else command.get_raw_value()
        command_line, loader_stdin = build_command_line(
            script, env=arguments.get("_env"), chdir=arguments.get("_chdir")
        )
        if loader_stdin is not None and stdin:
            raise WinSSHError(f"{self.host.name}: a script this long cannot also take _stdin")

        logger.debug("Running PowerShell on %s: %s", self.host.name, command)
        if print_input:
            # The script itself (with secrets masked), not its unreadable base64.
            echo(f"{self.host.print_prefix}>>> {command}", err=True)

        assert self.client is not None
        stdin_buffer, stdout_buffer, stderr_buffer = self.client.exec_command(command_line, get_pty=get_pty)
        if loader_stdin is not None:
            write_stdin(loader_stdin, stdin_buffer)
        elif stdin:
            write_stdin(stdin, stdin_buffer)
        stdin_buffer.close()

        channel = stdout_buffer.channel
        if isinstance(channel, Channel):
            # Bytes decoded leniently: a native tool may still print in the OEM code page (é in
            # cp850 is not UTF-8), which would otherwise end the read with a UnicodeDecodeError.
            stdout_buffer = _LenientLines(channel.makefile("rb"))
            stderr_buffer = _LenientLines(channel.makefile_stderr("rb"))
        output = read_output_buffers(
            stdout_buffer,
            stderr_buffer,
            timeout=timeout,
            print_output=print_output,
            print_prefix=self.host.print_prefix,
        )
        exit_status = channel.recv_exit_status()
        logger.debug("PowerShell exit status: %i", exit_status)

        output = self._clean_output(output)
        if success_exit_codes:
            return exit_status in success_exit_codes, output
        return exit_status == 0, output

    def _clean_output(self, output: CommandOutput) -> CommandOutput:
        # stderr kept as received (CLIXML included) for the first-real-machine checklist's report.
        self.last_raw_stderr = [line.line for line in output.combined_lines if line.buffer_name == "stderr"]
        return _clean_output(output)

    @override
    def put_file(
        self,
        filename_or_io,
        remote_filename,
        remote_temp_filename=None,
        print_output: bool = False,
        print_input: bool = False,
        **arguments: Unpack[ConnectorArguments],
    ) -> bool:
        """Upload over SFTP to a Windows path (``C:/x`` or ``C:\\x``)."""
        _refuse_escalation(self.host.name, arguments)
        return super().put_file(
            filename_or_io, remote_filename, remote_temp_filename, print_output, print_input, **arguments
        )

    @override
    def get_file(
        self,
        remote_filename,
        filename_or_io,
        remote_temp_filename=None,
        print_output: bool = False,
        print_input: bool = False,
        **arguments: Unpack[ConnectorArguments],
    ) -> bool:
        """Download over SFTP from a Windows path (``C:/x`` or ``C:\\x``)."""
        _refuse_escalation(self.host.name, arguments)
        return super().get_file(
            remote_filename, filename_or_io, remote_temp_filename, print_output, print_input, **arguments
        )

    # pyinfra's put_file/get_file end in these two: the one place where paths become SFTP paths.
    @override
    def _put_file(self, filename_or_io, remote_location):
        return super()._put_file(filename_or_io, sftp_path(remote_location))

    @override
    def _get_file(self, remote_filename: str, filename_or_io):
        return super()._get_file(sftp_path(remote_filename), filename_or_io)

    @override
    def check_can_rsync(self) -> None:
        raise NotImplementedError("@winssh does not support rsync: use files over SFTP")


class _LenientLines:
    """Lines of a binary channel file as text, undecodable bytes replaced (U+FFFD)."""

    def __init__(self, stream):
        self.stream = stream

    def __iter__(self):
        for line in self.stream:
            yield line.decode("utf-8", errors="replace")


def _clean_output(output: CommandOutput) -> CommandOutput:
    """Drop the CR of CRLF line ends and decode CLIXML stderr into plain lines."""
    stdout = [line.line.rstrip("\r") for line in output.combined_lines if line.buffer_name == "stdout"]
    stderr = [line.line.rstrip("\r") for line in output.combined_lines if line.buffer_name == "stderr"]
    decoded = decode_clixml(stderr)
    if decoded is stderr:
        return CommandOutput(
            [OutputLine(line.buffer_name, line.line.rstrip("\r")) for line in output.combined_lines]
        )
    return CommandOutput(
        [OutputLine("stdout", s) for s in stdout] + [OutputLine("stderr", s) for s in decoded]
    )
