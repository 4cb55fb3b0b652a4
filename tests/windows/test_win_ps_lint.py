"""The PowerShell linter used on every generated script catches what it claims to catch."""

from __future__ import annotations

import pytest
from ps_lint import lint


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("if ($a) { Write-Output 1", "unclosed"),
        ("Write-Output (1))", "unbalanced"),
        ("Test-Path 'C:\\x' && Write-Output 1", "&& / || need PowerShell 7"),
        ("$x = & { $ErrorActionPreference = 'Continue'; & $python -V 2>&1 }", "redirected stderr"),
        ("$y = $x?.Name", "?. and ??"),
        ("& $httpd -t", "native call outside a Continue block"),
        ("& icacls.exe $p /Q", "native call outside a Continue block"),
    ],
)
def test_lint_finds(script, problem):
    assert any(problem in found for found in lint(script)), lint(script)


def test_unterminated_string_is_an_error():
    with pytest.raises(AssertionError, match="unterminated"):
        lint("Write-Output 'it's'")


@pytest.mark.parametrize(
    "script",
    [
        "Write-Output 'a { ( ['",  # brackets inside strings do not count
        'Write-Output "$($x.Name) ) ("',
        "$t = @'\n{ unbalanced ( in a here-string\n'@",
        "# a comment with { and &&\nWrite-Output 1",
        "& { $ErrorActionPreference = 'Continue'; & $httpd -t }",
        "Write-Output 'it''s'",
    ],
)
def test_lint_accepts(script):
    assert lint(script) == []
