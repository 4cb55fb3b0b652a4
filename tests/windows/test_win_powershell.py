"""PowerShell text helpers: quoting, paths, the wrapper, encoding, CLIXML."""

from __future__ import annotations

import base64

import pytest

from provisioning.windows.powershell import (
    CMD_LINE_LIMIT,
    POWERSHELL,
    PowerShellError,
    decode_clixml,
    decode_command,
    encode_command,
    json_fact_script,
    ps_array,
    ps_assign,
    ps_quote,
    sftp_path,
    win_path,
    wrap_script,
)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("C:\\Program Files\\Python311", "'C:\\Program Files\\Python311'"),
        ("it's", "'it''s'"),
        ("$env:PATH `n", "'$env:PATH `n'"),  # no expansion inside single quotes
        ("l\u2019app", "'l\u2019\u2019app'"),  # PowerShell ends a string at a typographic quote too
        ("\u2018a\u201a\u201b", "'\u2018\u2018a\u201a\u201a\u201b\u201b'"),
        ('say "hi"', "'say \"hi\"'"),
        ("", "''"),
    ],
)
def test_ps_quote(value, quoted):
    assert ps_quote(value) == quoted


def test_ps_quote_refuses_nul():
    with pytest.raises(PowerShellError, match="NUL"):
        ps_quote("a\0b")


def test_ps_assign_and_array():
    assert ps_assign(p="C:\\a b", n="x'y") == "$p = 'C:\\a b'\n$n = 'x''y'\n"
    assert ps_array(["*S-1-5-18:F", "a'b"]) == "@('*S-1-5-18:F', 'a''b')"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("C:\\impots\\app\\x.txt", "/C:/impots/app/x.txt"),
        ("C:/impots/app", "/C:/impots/app"),
        ("c:\\Program Files\\My App\\f.conf", "/C:/Program Files/My App/f.conf"),
        ("D:", "/D:/"),
        ("C:\\", "/C:/"),
        ("relative\\file.txt", "relative/file.txt"),
        ("/C:/already", "/C:/already"),
    ],
)
def test_sftp_path(path, expected):
    assert sftp_path(path) == expected


def test_win_path():
    assert win_path("C:/impots/app/instance") == "C:\\impots\\app\\instance"


def test_encode_is_base64_of_utf16le_and_round_trips():
    script = "Write-Output 'impôts €'"
    encoded = encode_command(script)
    assert base64.b64decode(encoded) == script.encode("utf-16-le")
    assert decode_command(encoded) == script


def test_wrap_script_exact():
    wrapped = wrap_script("Write-Output 1", env={"MOD_WSGI_APACHE_ROOTDIR": "C:/Apache 24"}, chdir="C:\\x y")
    assert wrapped == (
        "$ErrorActionPreference = 'Stop'\n"
        "$ProgressPreference = 'SilentlyContinue'\n"
        "try { [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false } catch { }\n"
        "$env:PYTHONIOENCODING = 'utf-8'\n"
        "$global:LASTEXITCODE = 0\n"
        "try {\n"
        "$env:MOD_WSGI_APACHE_ROOTDIR = 'C:/Apache 24'\n"
        "Set-Location -LiteralPath 'C:\\x y'\n"
        "Write-Output 1\n"
        "} catch {\n"
        "    [Console]::Error.WriteLine(($_ | Out-String).Trim())\n"
        "    exit 1\n"
        "}\n"
        "exit $LASTEXITCODE\n"
    )


def test_wrap_script_refuses_bad_env_name():
    with pytest.raises(PowerShellError, match="environment variable name"):
        wrap_script("x", env={"A;rm": "1"})


def test_wrap_keeps_here_string_terminator_at_column_zero():
    wrapped = wrap_script("$t = @'\nline\n'@\nWrite-Output $t")
    assert "\n'@\n" in wrapped


def test_json_fact_script_uses_input_object():
    assert (
        json_fact_script("$result = 1\n")
        == "$result = 1\nConvertTo-Json -InputObject $result -Compress -Depth 5"
    )


def test_command_line_prefix_and_limit_constant():
    assert POWERSHELL == "powershell -NoProfile -NonInteractive -EncodedCommand"
    assert CMD_LINE_LIMIT == 8191


def test_decode_clixml_errors():
    lines = [
        "#< CLIXML",
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<Obj S="progress" RefId="0"><TN RefId="0">'
        "<T>System.Management.Automation.PSCustomObject</T></TN></Obj>"
        '<S S="Error">httpd -t failed: AH00526: Syntax error_x000D__x000A_</S>'
        '<S S="Error">at line 3 of impôts.conf_x000A_</S></Objs>',
    ]
    assert decode_clixml(lines) == ["httpd -t failed: AH00526: Syntax error", "at line 3 of impôts.conf"]


def test_decode_clixml_leaves_plain_text_alone():
    lines = ["AH00558: httpd: Could not reliably determine", "Syntax OK"]
    assert decode_clixml(lines) is lines


def test_decode_clixml_nested_header():
    lines = [
        "#< CLIXML",
        "#< CLIXML",
        '<Objs xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">x_x000A_</S></Objs>',
    ]
    assert decode_clixml(lines) == ["x"]
