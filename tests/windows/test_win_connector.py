"""The @winssh connector: command encoding, exit codes, output, paths -- in memory, then end to end
through a real sshd on 127.0.0.1 whose ``powershell`` is a fake that decodes what it receives."""

from __future__ import annotations

import base64
from io import BytesIO

import pytest
from pyinfra.api import Config, Inventory, State, StringCommand
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import ConnectError
from pyinfra.api.operations import run_ops
from pyinfra.connectors.util import CommandOutput, OutputLine
from pyinfra.operations import server

from provisioning.connectors.winssh import WinSSHConnector, WinSSHError, _clean_output, build_command_line
from provisioning.windows import facts, operations
from provisioning.windows.powershell import STDIN_LOADER, decode_command, wrap_script

PREFIX = "powershell -NoProfile -NonInteractive -EncodedCommand "


# --- in memory ---------------------------------------------------------------------------------------


def test_command_line_is_encoded_wrapped_script():
    line, stdin = build_command_line("Write-Output 'été'", env={"A": "1"}, chdir="C:/Program Files")
    assert stdin is None
    assert line.startswith(PREFIX)
    assert decode_command(line[len(PREFIX) :]) == wrap_script(
        "Write-Output 'été'", env={"A": "1"}, chdir="C:/Program Files"
    )
    assert " " not in line[len(PREFIX) :]  # one argument, nothing for cmd.exe to split or quote


def test_long_script_goes_through_stdin_loader():
    script = "Write-Output '" + "x" * 5000 + "'"
    line, stdin = build_command_line(script)
    assert len(line) < 1000
    assert decode_command(line[len(PREFIX) :]) == STDIN_LOADER
    assert base64.b64decode(stdin).decode("utf-8") == wrap_script(script)


def test_names_data_puts_host_in_windows_group():
    assert list(WinSSHConnector.make_names_data("lab-pc")) == [
        ("@winssh/lab-pc", {"ssh_hostname": "lab-pc", "impots_os": "windows"}, ["windows"])
    ]


def test_clean_output_strips_cr_and_decodes_clixml():
    output = CommandOutput(
        [
            OutputLine("stdout", "ok\r"),
            OutputLine("stderr", "#< CLIXML\r"),
            OutputLine(
                "stderr",
                '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
                '<S S="Error">Restart-Service : boom_x000D__x000A_</S></Objs>',
            ),
        ]
    )
    cleaned = _clean_output(output)
    assert cleaned.stdout_lines == ["ok"]
    assert cleaned.stderr_lines == ["Restart-Service : boom"]


def test_scp_is_refused_with_a_clear_error():
    inventory = Inventory(([("@winssh/lab-pc", {"ssh_file_transfer_protocol": "scp"})], {}))
    state = State(inventory, Config())
    host = inventory.get_host("@winssh/lab-pc")
    with pytest.raises(ConnectError, match="ssh_file_transfer_protocol must be 'sftp' with @winssh"):
        WinSSHConnector(state, host).connect()


# --- end to end over a real sshd --------------------------------------------------------------------------


@pytest.fixture
def winssh_host(windows_sshd):
    inventory = Inventory(([("@winssh/127.0.0.1", windows_sshd.host_data())], {}))
    state = State(inventory, Config())
    connect_all(state)
    host = inventory.get_host("@winssh/127.0.0.1")
    assert host.connected, "could not connect to the test sshd"
    yield state, host
    disconnect_all(state)


def test_exit_code_stdout_stderr_faithful(windows_sshd, winssh_host):
    _, host = winssh_host
    script = "Write-Output 'impôts'\n[Console]::Error.WriteLine('warn')\nexit 3"
    windows_sshd.answer(wrap_script(script), stdout="impôts\nligne 2\n", stderr="warn\n", status=3)
    status, output = host.run_shell_command(StringCommand(script))
    assert status is False
    assert output.stdout_lines == ["impôts", "ligne 2"]  # CRLF from Windows, CR stripped
    assert output.stderr_lines == ["warn"]
    assert windows_sshd.received()[-1]["script"] == wrap_script(script)

    status, _ = host.run_shell_command(StringCommand(script), _success_exit_codes=[0, 3])
    assert status is True


def test_output_in_the_oem_code_page_does_not_break_the_read(windows_sshd, winssh_host):
    _, host = winssh_host
    script = "& icacls.exe 'C:\\x'"
    windows_sshd.answer(wrap_script(script), stdout="Fichier traité\nfin\n", status=0, encoding="cp850")
    status, output = host.run_shell_command(StringCommand(script))
    assert status is True
    assert output.stdout_lines == ["Fichier trait\ufffd", "fin"]


def test_env_and_chdir_are_set_inside_the_script(windows_sshd, winssh_host):
    _, host = winssh_host
    script = "Write-Output $env:MOD_WSGI_APACHE_ROOTDIR"
    wrapped = wrap_script(
        script, env={"MOD_WSGI_APACHE_ROOTDIR": "C:/Apache24"}, chdir="C:\\Program Files\\x"
    )
    windows_sshd.answer(wrapped, stdout="C:/Apache24\n")
    status, output = host.run_shell_command(
        StringCommand(script), _env={"MOD_WSGI_APACHE_ROOTDIR": "C:/Apache24"}, _chdir="C:\\Program Files\\x"
    )
    assert status and output.stdout_lines == ["C:/Apache24"]
    received = windows_sshd.received()[-1]["script"]
    assert (
        "$env:MOD_WSGI_APACHE_ROOTDIR = 'C:/Apache24'\nSet-Location -LiteralPath 'C:\\Program Files\\x'\n"
        in received
    )
    assert "export" not in received and "sh -c" not in received


def test_long_script_end_to_end(windows_sshd, winssh_host):
    _, host = winssh_host
    script = "$x = '" + "y" * 9000 + "'\nWrite-Output $x.Length"
    windows_sshd.answer(wrap_script(script), stdout="9000\n")
    status, output = host.run_shell_command(StringCommand(script))
    assert status and output.stdout_lines == ["9000"]
    assert windows_sshd.received()[-1]["script"] == wrap_script(script)


def test_clixml_errors_decoded_end_to_end(windows_sshd, winssh_host):
    _, host = winssh_host
    script = "Restart-Service -Name 'Apache2.4'"
    clixml = (
        "#< CLIXML\n"
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<S S="Error">Restart-Service : Cannot open Apache2.4 service_x000D__x000A_</S></Objs>\n'
    )
    windows_sshd.answer(wrap_script(script), stderr=clixml, status=1)
    status, output = host.run_shell_command(StringCommand(script))
    assert status is False
    assert output.stderr_lines == ["Restart-Service : Cannot open Apache2.4 service"]


def test_sudo_is_refused_before_anything_runs(windows_sshd, winssh_host):
    _, host = winssh_host
    before = len(windows_sshd.received())
    with pytest.raises(WinSSHError, match="_sudo cannot be used with @winssh"):
        host.run_shell_command(StringCommand("Write-Output 1"), _sudo=True)
    with pytest.raises(WinSSHError, match="_su_user cannot be used"):
        host.put_file(BytesIO(b"x"), "C:/x.txt", _su_user="bob")
    assert len(windows_sshd.received()) == before


def test_sftp_paths_with_spaces_and_backslashes(windows_sshd, winssh_host, drive_c):
    _, host = winssh_host
    (drive_c / "dossier avec espaces").mkdir()
    remote = f"C:\\{drive_c.name}\\dossier avec espaces\\fichier été.txt"
    assert host.put_file(BytesIO(b"contenu\r\n"), remote)
    assert (drive_c / "dossier avec espaces" / "fichier été.txt").read_bytes() == b"contenu\r\n"
    downloaded = BytesIO()
    assert host.get_file(f"C:/{drive_c.name}/dossier avec espaces/fichier été.txt", downloaded)
    assert downloaded.getvalue() == b"contenu\r\n"


def test_our_operation_and_pyinfra_server_shell_run_through_the_connector(windows_sshd, winssh_host, drive_c):
    """pyinfra's own execution path: facts over PowerShell, FileUploadCommand over SFTP, server.shell."""
    state, host = winssh_host
    dest = f"C:/{drive_c.name}/conf/site.conf"
    (drive_c / "conf").mkdir()
    windows_sshd.answer(wrap_script(facts.FileHash().command(path=dest)), stdout="null\n")
    windows_sshd.answer(
        wrap_script("Write-Output 'hello from server.shell'"), stdout="hello from server.shell\n"
    )

    def plan():
        operations.put_bytes(name="site conf", dest=dest, content=b"<VirtualHost *:443>\r\n")
        server.shell(name="shell", commands=["Write-Output 'hello from server.shell'"])

    add_deploy(state, plan)
    run_ops(state)
    assert (drive_c / "conf" / "site.conf").read_bytes() == b"<VirtualHost *:443>\r\n"
    scripts = [r["script"] for r in windows_sshd.received()]
    assert wrap_script("Write-Output 'hello from server.shell'") in scripts
    assert state.results[host].success_ops == 2
