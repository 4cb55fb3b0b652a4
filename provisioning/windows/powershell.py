"""PowerShell 5.1 helpers: quoting, paths, the wrapper every command runs in, and CLIXML decoding.

Everything here is pure string work so that it can be tested on Linux: nobody can run PowerShell on the
controller, so the exact text sent to a Windows host is what the tests pin down.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from xml.etree import ElementTree

# PowerShell treats the typographic quotes as single quotes too: all of them must be doubled inside a
# single-quoted literal, or a path like `C:/l’app` would end the string early.
_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"

# Windows OpenSSH runs the command through cmd.exe, whose command line is limited to 8191 characters.
CMD_LINE_LIMIT = 8191

POWERSHELL = "powershell -NoProfile -NonInteractive -EncodedCommand"

# Runs every script: UTF-8 on stdout/stderr (the console default is the OEM code page, which mangles
# "impôts"; Python children too, which print in the ANSI code page to a pipe), no progress records
# (they come out as CLIXML on a pipe), errors stop the script, a terminating error becomes exit code 1
# with its message on stderr, and a script that ends normally exits with the code of the last native
# program it ran (0 if none). `exit` inside the script wins.
WRAPPER_HEAD = """\
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try { [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false } catch { }
$env:PYTHONIOENCODING = 'utf-8'
$global:LASTEXITCODE = 0
try {
"""
WRAPPER_TAIL = """
} catch {
    [Console]::Error.WriteLine(($_ | Out-String).Trim())
    exit 1
}
exit $LASTEXITCODE
"""


class PowerShellError(ValueError):
    """A value cannot be put into a PowerShell script safely."""


def ps_quote(value: str) -> str:
    """A PowerShell single-quoted literal for ``value`` (no expansion of ``$`` or backticks)."""
    if "\0" in value:
        raise PowerShellError(f"NUL character in {value!r}")
    escaped = "".join(c + c if c in _SINGLE_QUOTES else c for c in value)
    return f"'{escaped}'"


def ps_assign(**variables: str) -> str:
    """Lines assigning quoted literals to PowerShell variables: ``$name = 'value'``, one per line."""
    return "".join(f"${name} = {ps_quote(value)}\n" for name, value in variables.items())


def ps_array(values: Iterable[str]) -> str:
    """A PowerShell array literal of quoted strings, e.g. ``@('a', 'b')``."""
    return "@(" + ", ".join(ps_quote(v) for v in values) + ")"


def win_path(path: str) -> str:
    """A Windows path with backslashes (what native tools such as icacls and tar.exe expect)."""
    return path.replace("/", "\\")


def fwd_path(path: str) -> str:
    """A Windows path with forward slashes (what Apache, Python and mod_wsgi's build want)."""
    return path.replace("\\", "/")


_DRIVE_PATH = re.compile(r"^([A-Za-z]):(?:[/\\]|$)")


def sftp_path(path: str) -> str:
    """The path Windows OpenSSH's SFTP server understands: ``C:\\x y\\z`` -> ``/C:/x y/z``.

    SFTP carries paths as protocol strings, so spaces need no quoting; only the separators and the
    leading slash before the drive letter matter. Relative paths stay relative (to the user's home).
    """
    converted = fwd_path(path)
    match = _DRIVE_PATH.match(converted)
    if match:
        rest = converted[2:] or "/"
        return f"/{match.group(1).upper()}:{rest}"
    return converted


def wrap_script(script: str, env: Mapping[str, str] | None = None, chdir: str | None = None) -> str:
    """The full script sent to ``powershell``: wrapper, environment and working folder set inside it."""
    lines = []
    for key, value in (env or {}).items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise PowerShellError(f"invalid environment variable name {key!r}")
        lines.append(f"$env:{key} = {ps_quote(str(value))}")
    if chdir:
        lines.append(f"Set-Location -LiteralPath {ps_quote(chdir)}")
    # Not indented: a here-string's closing '@ must start its line.
    lines.append(script.strip("\n"))
    return WRAPPER_HEAD + "\n".join(lines) + WRAPPER_TAIL


def encode_command(script: str) -> str:
    """Base64 of the script in UTF-16LE, as ``powershell -EncodedCommand`` wants it."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def decode_command(encoded: str) -> str:
    """The inverse of ``encode_command`` (used by tests and the fake PowerShell)."""
    return base64.b64decode(encoded).decode("utf-16-le")


def powershell_command_line(script: str) -> str:
    """The command line for one wrapped script: ``powershell ... -EncodedCommand <base64>``."""
    return f"{POWERSHELL} {encode_command(script)}"


# A short fixed script that runs a long one read from stdin (base64 of UTF-8, so the console's input
# code page cannot mangle it). Used only when the encoded script would not fit cmd.exe's line limit.
# Either `exit N` in the wrapped script ends powershell.exe with N, or it ends the script block and sets
# $LASTEXITCODE to N, which the last line passes on: the exit code is the same both ways.
STDIN_LOADER = (
    "$s = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String([Console]::In.ReadToEnd()))\n"
    "& ([ScriptBlock]::Create($s))\n"
    "exit $LASTEXITCODE\n"
)


def json_fact_script(body: str, value: str = "$result") -> str:
    """A fact script: ``body`` computes ``value``, printed as one line of compact JSON.

    ``-InputObject`` keeps a one-element array an array (the pipeline would unwrap it) and turns
    ``$null`` into ``null``; the depth covers every fact's nesting (the default, 2, silently
    flattens deeper objects into strings).
    """
    return f"{body.strip()}\nConvertTo-Json -InputObject {value} -Compress -Depth 5"


_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def decode_clixml(stderr_lines: list[str]) -> list[str]:
    """Turn CLIXML error output (``#< CLIXML`` then XML) into plain lines; other text passes through.

    Windows PowerShell serialises its error and progress streams this way when stderr is a pipe (no
    pty), e.g. for errors written by a native program's wrapper or by PowerShell itself.
    """
    if not stderr_lines or stderr_lines[0].strip() != "#< CLIXML":
        return stderr_lines
    xml = "".join(line for line in stderr_lines[1:] if line.strip() != "#< CLIXML")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return stderr_lines
    text = ""
    for element in root.iter():
        if element.tag.endswith("}S") and element.get("S") == "Error":
            text += _CLIXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), element.text or "")
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1]:
        lines.pop()
    return lines
