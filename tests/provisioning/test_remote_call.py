"""The typed calls of the target helper (``provisioning/remote_call.py``) and the zipapp they run:
hostile values reach the helper intact through the target's shell, each call agrees with the remote
function's signature, and the zipapp is the same bytes on every build, standard library only, and
Python 3.9 syntax."""

from __future__ import annotations

import ast
import inspect
import io
import json
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from provisioning import remote_call
from provisioning.remote.__main__ import COMMANDS, command_function, parse
from provisioning.remote.errors import UsageError

# Quotes, spaces, shell expansions, a command separator, a newline, a tab, globs, a backslash, non-ASCII.
HOSTILE = 'it\'s "x" $HOME `id` $(id) ; rm -rf / &\nline 2\t* ? ~ \\ é'


def every_call(helper: str, value: str) -> list[remote_call.HelperCall]:
    """One typed call per remote command, ``value`` in every string and list argument."""
    return [
        remote_call.secrets_status(helper, value),
        remote_call.secrets_merge(helper, value, value, [value, value], value),
        remote_call.database_state(helper, value, value, value, [value], value, value, value),
        remote_call.mysql_ensure(helper, value, value, value, value),
        remote_call.pg_ensure(helper, value, value, value, value),
        remote_call.db_seed(helper, value, value, value, value, value, value),
        remote_call.apache_snapshot(helper, value, value),
        remote_call.apache_restore(helper, value, value),
        remote_call.apache_reload(helper, value, value, [value, value], [value], [value], value),
        remote_call.smoke_check(helper, value, value, value, value, value, value),
        remote_call.redis_status(helper, value, value, [value], 6379, 64, value),
        remote_call.redis_apply(helper, value, value, value, [value], 6379, 64, value, [value, value]),
    ]


def test_every_remote_command_has_a_typed_call_that_fits_its_signature() -> None:
    calls = every_call("/opt/impots/bin/impots-helper.pyz", "x")
    assert sorted(call.command for call in calls) == sorted(COMMANDS)
    for call in calls:
        words = shlex.split(call.get_raw_value())
        assert words[:3] == ["python3", "/opt/impots/bin/impots-helper.pyz", call.command]
        assert len(words) == 4, f"{call.command}: the arguments must be one word"
        inspect.signature(command_function(call.command)).bind(**json.loads(words[3]))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_helper_checks_arguments_as_inspect_would(command: str) -> None:
    """The helper checks arguments without importing inspect: same verdict on missing, extra, all."""
    function = command_function(command)
    parameters = list(inspect.signature(function).parameters)
    tries = [{}, {name: "x" for name in parameters}, {**{name: "x" for name in parameters}, "nope": 1}]
    tries += [{name: "x" for name in parameters if name != left_out} for left_out in parameters]
    for arguments in tries:
        try:
            inspect.signature(function).bind(**arguments)
            accepted = True
        except TypeError:
            accepted = False
        if accepted:
            assert parse([command, json.dumps(arguments)]) == (function, arguments)
        else:
            with pytest.raises(UsageError, match=f"^{command}: "):
                parse([command, json.dumps(arguments)])


@pytest.fixture
def argv_echo(tmp_path: Path) -> str:
    """A stand-in helper that prints the arguments it received, at a path that needs quoting too."""
    script = tmp_path / "a dir; $(x) 'q'" / "echo helper.py"
    script.parent.mkdir()
    script.write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    return str(script)


def test_hostile_values_reach_the_helper_intact_through_sh(argv_echo: str) -> None:
    for call in every_call(argv_echo, HOSTILE):
        line = call.get_raw_value()
        assert "\n" not in line, "a call is one line (JSON escapes newlines)"
        result = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True)
        command, arguments = json.loads(result.stdout)
        assert command == call.command
        assert json.loads(arguments) == call.arguments
        leaves = [
            v for value in call.arguments.values() for v in (value if isinstance(value, list) else [value])
        ]
        texts = {leaf for leaf in leaves if not isinstance(leaf, int)}  # ports and sizes are ints
        assert texts == {HOSTILE}, "every text argument carries the hostile value"


def test_a_hostile_path_is_used_as_given_by_the_real_helper(tmp_path: Path) -> None:
    pyz = str(remote_call.build_helper(tmp_path / "build"))
    folder = tmp_path / "it's $HOME `id`\nnext"
    folder.mkdir()
    secrets = folder / "secrets $(id).json"
    secrets.write_text(json.dumps({"secret_key": "v"}))
    secrets.chmod(0o600)
    line = remote_call.secrets_status(pyz, str(secrets)).get_raw_value()
    status = json.loads(subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True).stdout)
    assert (set(status["values"]), status["mode"]) == ({"secret_key"}, "600")


def test_helper_fact_checks_the_installed_helper_first() -> None:
    from provisioning.linux.facts import HelperJson

    call = remote_call.secrets_status("/opt/my impots/bin/impots-helper.pyz", "/s.json")
    assert HelperJson().command(call).get_raw_value() == (
        "if test -f '/opt/my impots/bin/impots-helper.pyz' && command -v python3 >/dev/null; then "
        "python3 '/opt/my impots/bin/impots-helper.pyz' secrets-status '{\"path\": \"/s.json\"}' ; fi"
    )


def test_zipapp_is_the_same_bytes_on_every_build(tmp_path: Path) -> None:
    first = remote_call.build_helper(tmp_path / "one").read_bytes()
    second = remote_call.build_helper(tmp_path / "two").read_bytes()
    assert first == second
    archive = zipfile.ZipFile(io.BytesIO(first))
    names = archive.namelist()
    sources = sorted(p.name for p in Path(remote_call.__file__).with_name("remote").glob("*.py"))
    assert names == [
        "__main__.py",
        "provisioning/__init__.py",
        *(f"provisioning/remote/{n}" for n in sources),
    ]
    assert {info.date_time for info in archive.infolist()} == {(2020, 1, 1, 0, 0, 0)}
    assert first.startswith(b"#!/usr/bin/env python3\n")


def test_rebuild_leaves_an_identical_file_untouched(tmp_path: Path) -> None:
    path = remote_call.build_helper(tmp_path)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    assert remote_call.build_helper(tmp_path) == path
    assert path.stat().st_mtime == 1_000_000_000, "an unchanged zipapp must not be rewritten"
    path.write_bytes(b"stale")
    assert remote_call.build_helper(tmp_path).read_bytes() == remote_call.helper_zipapp_bytes()


def zipped_modules() -> dict[str, str]:
    archive = zipfile.ZipFile(io.BytesIO(remote_call.helper_zipapp_bytes()))
    return {name: archive.read(name).decode() for name in archive.namelist()}


def test_zipapp_is_python_3_9_syntax_and_standard_library_only() -> None:
    for name, source in zipped_modules().items():
        tree = ast.parse(source, filename=name, feature_version=(3, 9))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                tops = [(node.module or "").split(".")[0]]
            else:
                continue
            for top in tops:
                assert top in sys.stdlib_module_names or top == "provisioning", f"{name} imports {top}"


def test_zipapp_runs_without_site_packages(tmp_path: Path) -> None:
    """-S: no site-packages, so a stray third-party import would fail here."""
    pyz = remote_call.build_helper(tmp_path)
    result = subprocess.run(
        ["python3", "-S", str(pyz), "secrets-status", json.dumps({"path": str(tmp_path / "none.json")})],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, '{"values": {}}\n', "")


def test_bad_arguments_are_a_usage_error_naming_them(tmp_path: Path) -> None:
    pyz = str(remote_call.build_helper(tmp_path))
    for arguments, problem in (
        ("{}", "secrets-status: missing a required argument: 'path'"),
        ('{"path": "/x", "mode": 1}', "secrets-status: got an unexpected keyword argument 'mode'"),
        ("[1]", "secrets-status: the arguments must be a JSON object"),
    ):
        result = subprocess.run(
            ["python3", pyz, "secrets-status", arguments], capture_output=True, text=True, check=False
        )
        assert (result.returncode, result.stderr) == (2, f"impots-helper: {problem}\n")
