"""Every generated PowerShell script parses with a real PowerShell grammar (tree-sitter-powershell), also
when built from awkward paths (quotes, typographic quotes, $, backtick, &, accents), as the wrapped text
the connector sends. The dry-run, fact and operation tests run the same check through ``ps_lint.lint``."""

from __future__ import annotations

import inspect

import pytest
from ps_grammar import assigned_verbatim_strings, grammar_errors
from ps_lint import lint
from win_optest import run_op

from provisioning.windows import apache, facts
from provisioning.windows import operations as ops
from provisioning.windows.powershell import STDIN_LOADER, ps_quote, wrap_script

AWKWARD = [
    "C:/Users/O'Brien/l’équipe",
    "C:/dé$env:USERNAME/a`b & c",
    "C:/‘cité’ “dit” ü/$(calc)",
]
# Laragon's desktop user, as the facts report it (PC\user): Windows accepts all of these in a name.
AWKWARD_USERS = [
    "LAB-PC\\O'Brien ’é’",
    "LAB-PC\\dé$env:USERNAME a`b & c",
    "ÉCOLE\\‘cité’ “dit” $(calc)",
]


def test_the_grammar_finds_errors():
    """The check can fail: broken scripts are reported, with the place."""
    assert grammar_errors("if ($a) { Write-Output 1") == ["line 1: MISSING } near 'if ($a) { Write-Output 1'"]
    assert grammar_errors("Write-Output 'it's'")
    assert grammar_errors("$x = @(1, 2")
    assert grammar_errors("foreach ($a in $b) { ) }")
    assert grammar_errors("Write-Output 'a''b'") == []


def fact_scripts(path: str) -> list[str]:
    values = {
        "path": path, "root": path, "laragon_root": path, "venv": path, "httpd": f"{path}/httpd.exe",
        "program": "tar.exe", "service": "Apache 2.4 ’x’", "patterns": [f"{path}/*/bin/psql.exe"],
        "endpoints": ["127.0.0.1:3306"], "accounts": [f".\\{path[3:]}"], "thumbprint": "A" * 40,
    }  # fmt: skip
    found = []
    for _, cls in inspect.getmembers(facts, inspect.isclass):
        if not issubclass(cls, facts.PowerShellJsonFact) or cls is facts.PowerShellJsonFact:
            continue
        parameters = list(inspect.signature(cls.command).parameters)[1:]
        found.append(cls().command(**{name: values[name] for name in parameters if name in values}))
    return found


def operation_scripts(path: str, tmp_path) -> list[str]:
    runs = [
        (ops.directory, {"facts.Directory": {f"path={path}": False}}, {"path": path}),
        (
            ops.restricted_acl,
            {"facts.FileAcl": {f"path={path}": None}},
            {"path": path, "folder": True, "full": ["S-1-5-18"], "read": ["S-1-5-21-1"]},
        ),
        (
            ops.venv,
            {"facts.VenvHome": {f"venv={path}/venv": None}},
            {"python": f"{path}/py.exe", "path": f"{path}/venv"},
        ),
        (
            ops.pip_requirements,
            {"facts.FileText": {f"path={path}/impots-requirements.stamp": None}},
            {"venv_path": path, "requirements": b"flask==3\n"},
        ),
        (
            ops.mod_wsgi,
            {"facts.FileText": {f"path={path}/impots-mod_wsgi.stamp": None}},
            {"venv_path": path, "apache_root": path, "package": "mod-wsgi==6.1.1"},
        ),
        (
            ops.app_release,
            {"facts.LinkTarget": {f"path={path}/app": None}},
            {"artifact_path": "a.tgz", "sha256": "0" * 64, "app": f"{path}/app", "releases": f"{path}/r",
             "instance": f"{path}/i"},
        ),
        (
            ops.secrets_file,
            {
                "facts.JsonKeyDigests": {f"path={path}/s.json": None},
                "facts.FileAcl": {f"path={path}/s.json": None},
            },
            {"path": f"{path}/s.json", "given": {}, "generate": ["secret_key"], "reader_sid": ["S-1-5-21-1"]},
        ),
    ]  # fmt: skip
    found = []
    for op, op_facts, kwargs in runs:
        commands, _ = run_op(op, op_facts, **kwargs)
        found += [c for c in commands if isinstance(c, str)]
    return found + apache_scripts(path, AWKWARD_USERS[AWKWARD.index(path)])


def apache_scripts(path: str, desktop_user: str) -> list[str]:
    """The Apache transaction's scripts: both start recipes (a service; Laragon's desktop user)."""
    check = {"name": "s’$x", "url": "https://s/’", "expect": "impôt ’$x`", "error_log": f"{path}/e.log"}
    return [
        apache.apply_script(f"{path}/httpd.exe", None, desktop_user, f"{path}/snap", "127.0.0.1", path),
        apache.apply_script(f"{path}/httpd.exe", "Apache ’2.4’", None, f"{path}/snap", "::1", path),
        apache.smoke_script([check], "127.0.0.1", f"{path}/ca.pem", True),
        apache.finish_script(f"{path}/snap", f"{path}/stamp"),
    ]


@pytest.mark.parametrize("path", AWKWARD)
def test_every_fact_and_operation_script_parses_with_awkward_paths(path, tmp_path):
    built = fact_scripts(path) + operation_scripts(path, tmp_path)
    assert len(built) >= 25
    # The desktop user is in the Laragon start script as one literal, whatever its characters.
    laragon = next(script for script in built if "$desktopuser = " in script)
    user = AWKWARD_USERS[AWKWARD.index(path)]
    assert f"$desktopuser = {ps_quote(user)}\n" in laragon
    assert assigned_verbatim_strings(laragon, "desktopuser") == [user]
    for script in built:
        assert lint(script) == [], script
        wrapped = wrap_script(script, env={"IMPOTS_INSTANCE_PATH": path}, chdir=path)
        assert grammar_errors(wrapped) == [], wrapped


def test_a_string_that_ends_early_is_not_one_literal():
    """The literal check can fail: a quote left single ends the string, the rest is code."""
    assert assigned_verbatim_strings("$u = 'O''Brien'\n", "u") == ["O'Brien"]
    assert assigned_verbatim_strings("$u = 'l’’équipe'\n", "u") == ["l’équipe"]
    assert assigned_verbatim_strings("$u = 'O' + 'Brien'\n", "u") == [
        "<not one string literal: \"'O' + 'Brien'\">"
    ]
    assert assigned_verbatim_strings("$u = 'O'Brien'\n", "u") != ["O'Brien"]
    # The grammar does not know that Windows PowerShell also ends a string at ’ (ps_quote doubles it
    # anyway, see test_win_powershell): with typographic quotes the check is the decoding, not the parse.
    assert assigned_verbatim_strings("$u = 'l’équipe'\n", "u") == ["l’équipe"]


def test_the_wrapper_and_the_stdin_loader_parse():
    assert grammar_errors(wrap_script("Write-Output 1")) == []
    assert grammar_errors(STDIN_LOADER) == []
