"""Operations with given facts: the exact PowerShell (and uploads) a Windows host gets, and no-ops."""

from __future__ import annotations

import hashlib
import json

import pytest
from ps_lint import lint
from pyinfra.api import OperationError
from win_optest import run_op

from provisioning.windows import operations as ops

SHA = hashlib.sha256


def sha(data: bytes) -> str:
    return SHA(data).hexdigest()


def assert_scripts_lint_clean(commands):
    for command in commands:
        if isinstance(command, str):
            assert lint(command) == [], command


# --- directory ---------------------------------------------------------------------------------------


def test_directory_created():
    commands, _ = run_op(
        ops.directory, {"facts.Directory": {"path=C:/Program Files/x y": False}}, path="C:/Program Files/x y"
    )
    assert commands == ["$p = 'C:\\Program Files\\x y'\n$null = [IO.Directory]::CreateDirectory($p)"]


def test_directory_noop():
    commands, noop = run_op(ops.directory, {"facts.Directory": {"path=C:/impots": True}}, path="C:/impots")
    assert commands == []
    assert noop == "folder C:/impots already exists"


# --- put_bytes / put_local_file --------------------------------------------------------------------------


def test_put_bytes_uploads_when_hash_differs():
    content = b"x\r\n"
    facts = {"facts.FileHash": {"path=C:/a/b.conf": "0" * 64}}
    commands, _ = run_op(ops.put_bytes, facts, dest="C:/a/b.conf", content=content)
    assert commands == [("upload", content, "C:/a/b.conf")]


def test_put_bytes_uploads_when_absent_and_noop_when_equal():
    content = b"x\r\n"
    commands, _ = run_op(
        ops.put_bytes, {"facts.FileHash": {"path=C:/a/b.conf": None}}, dest="C:/a/b.conf", content=content
    )
    assert commands == [("upload", content, "C:/a/b.conf")]
    commands, noop = run_op(
        ops.put_bytes,
        {"facts.FileHash": {"path=C:/a/b.conf": sha(content)}},
        dest="C:/a/b.conf",
        content=content,
    )
    assert commands == []
    assert noop == "C:/a/b.conf is already up to date"


def test_put_local_file(tmp_path):
    local = tmp_path / "server.pem"
    local.write_bytes(b"PEM")
    commands, _ = run_op(
        ops.put_local_file, {"facts.FileHash": {"path=C:/t/s.pem": None}}, src=str(local), dest="C:/t/s.pem"
    )
    assert commands == [("upload", str(local), "C:/t/s.pem")]
    commands, _ = run_op(
        ops.put_local_file,
        {"facts.FileHash": {"path=C:/t/s.pem": sha(b"PEM")}},
        src=str(local),
        dest="C:/t/s.pem",
    )
    assert commands == []


# --- ACLs -----------------------------------------------------------------------------------------------

USER = "S-1-5-21-1-2-3-1001"


def test_restricted_acl_on_folder():
    facts = {"facts.FileAcl": {"path=C:/impots": {"protected": False, "sids": ["S-1-5-11", "S-1-5-32-545"]}}}
    commands, _ = run_op(
        ops.restricted_acl,
        facts,
        path="C:/impots",
        folder=True,
        full=[ops.ADMINISTRATORS_SID, ops.SYSTEM_SID],
        read=[USER],
    )
    assert commands == [
        "$p = 'C:\\impots'\n"
        f"$grants = @('*S-1-5-18:(OI)(CI)F', '*{USER}:(OI)(CI)RX', '*S-1-5-32-544:(OI)(CI)F')\n"
        "& { $ErrorActionPreference = 'Continue'; & icacls.exe $p /inheritance:r /grant:r @grants /Q }\n"
        "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }"
    ]
    assert_scripts_lint_clean(commands)


def test_restricted_acl_modify_on_file_and_noop():
    facts = {"facts.FileAcl": {"path=C:/f.txt": None}}
    commands, _ = run_op(
        ops.restricted_acl, facts, path="C:/f.txt", folder=False, full=["S-1-5-18"], modify=[USER]
    )
    assert "$grants = @('*S-1-5-18:F', '*" + USER + ":M')" in commands[0]
    facts = {"facts.FileAcl": {"path=C:/f.txt": {"protected": True, "sids": sorted(["S-1-5-18", USER])}}}
    commands, noop = run_op(
        ops.restricted_acl, facts, path="C:/f.txt", folder=False, full=["S-1-5-18"], modify=[USER]
    )
    assert commands == []
    assert "already restricted" in noop


# --- marked blocks (CRLF) ----------------------------------------------------------------------------------

HOSTS = (
    "# Copyright (c) 1993-2009 Microsoft Corp.\r\n#\r\n"
    "127.0.0.1       localhost\r\n::1             localhost\r\n"
)
BLOCK = ["127.0.0.1 flask-impots-withmysql", "127.0.0.1 date-time-server"]
WANTED_BLOCK = (
    "# BEGIN impots (managed by pyinfra)\r\n"
    "127.0.0.1 flask-impots-withmysql\r\n"
    "127.0.0.1 date-time-server\r\n"
    "# END impots (managed by pyinfra)\r\n"
)


def test_replace_marked_block_appends_with_crlf():
    assert ops.replace_marked_block(HOSTS, ops.MARKER, BLOCK) == HOSTS + WANTED_BLOCK


def test_replace_marked_block_adds_missing_final_newline():
    assert ops.replace_marked_block("a\r\nb", ops.MARKER, BLOCK) == "a\r\nb\r\n" + WANTED_BLOCK


def test_replace_marked_block_replaces_in_place_and_keeps_the_rest():
    old = (
        HOSTS
        + "# BEGIN impots (managed by pyinfra)\r\n10.0.0.1 old\r\n"
        + "# END impots (managed by pyinfra)\r\n# after\r\n"
    )
    assert ops.replace_marked_block(old, ops.MARKER, BLOCK) == HOSTS + WANTED_BLOCK + "# after\r\n"


def test_replace_marked_block_leaves_one_copy_only():
    copy = "# BEGIN impots (managed by pyinfra)\nold\n# END impots (managed by pyinfra)\n"
    text = "a\n" + copy + "b\n" + copy + "c\n"
    assert ops.replace_marked_block(text, ops.MARKER, BLOCK) == "a\n" + WANTED_BLOCK + "b\nc\n"


def test_replace_marked_block_on_missing_file():
    assert ops.replace_marked_block(None, ops.MARKER, BLOCK) == WANTED_BLOCK


def test_without_marked_block():
    assert ops.without_marked_block(HOSTS + WANTED_BLOCK + "x\r\n") == HOSTS + "x\r\n"


def test_marked_block_operation_uploads_copy_then_replaces():
    path = "C:/Windows/System32/drivers/etc/hosts"
    commands, _ = run_op(
        ops.marked_block, {"facts.FileText": {f"path={path}": HOSTS}}, path=path, lines=BLOCK
    )
    assert commands == [
        ("upload", (HOSTS + WANTED_BLOCK).encode(), path + ".impots-new"),
        "$p = 'C:\\Windows\\System32\\drivers\\etc\\hosts'\n"
        "$new = 'C:\\Windows\\System32\\drivers\\etc\\hosts.impots-new'\n"
        "[IO.File]::WriteAllBytes($p, [IO.File]::ReadAllBytes($new))\n"
        "Remove-Item -LiteralPath $new -Force",
    ]


def test_marked_block_operation_noop_when_present():
    path = "C:/Apache24/conf/httpd.conf"
    commands, noop = run_op(
        ops.marked_block, {"facts.FileText": {f"path={path}": HOSTS + WANTED_BLOCK}}, path=path, lines=BLOCK
    )
    assert commands == []
    assert noop == f"the block in {path} is already up to date"


# --- Python ------------------------------------------------------------------------------------------

PYTHON = "C:/Program Files/Python311/python.exe"


def test_venv_created():
    commands, _ = run_op(
        ops.venv, {"facts.VenvHome": {"venv=C:/impots/venv": None}}, python=PYTHON, path="C:/impots/venv"
    )
    assert commands == [
        "$python = 'C:\\Program Files\\Python311\\python.exe'\n"
        "$venv = 'C:\\impots\\venv'\n"
        "if (Test-Path -LiteralPath $venv) {\n"
        "    & { $ErrorActionPreference = 'Continue'; & cmd.exe /d /c rmdir /s /q $venv }\n"
        "    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }\n"
        "}\n"
        "& { $ErrorActionPreference = 'Continue'; & $python -m venv $venv }\n"
        "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }"
    ]


def test_venv_remade_from_another_python_and_noop_case_insensitive():
    facts = {"facts.VenvHome": {"venv=C:/impots/venv": "C:/Python39"}}
    commands, _ = run_op(ops.venv, facts, python=PYTHON, path="C:/impots/venv")
    assert len(commands) == 1
    facts = {"facts.VenvHome": {"venv=C:/impots/venv": "c:/program files/python311"}}
    commands, noop = run_op(ops.venv, facts, python=PYTHON, path="C:/impots/venv")
    assert commands == []
    assert noop == f"C:/impots/venv already uses {PYTHON}"


def test_pip_requirements_installs_then_writes_stamp():
    requirements = b"flask==3.1.3\n"
    digest = sha(requirements)
    facts = {"facts.FileText": {"path=C:/impots/venv/impots-requirements.stamp": None}}
    commands, _ = run_op(ops.pip_requirements, facts, venv_path="C:/impots/venv", requirements=requirements)
    assert commands == [
        ("upload", requirements, "C:/impots/venv/impots-requirements.txt"),
        "$python = 'C:\\impots\\venv\\Scripts\\python.exe'\n"
        "$requirements = 'C:\\impots\\venv\\impots-requirements.txt'\n"
        "$stamp = 'C:\\impots\\venv\\impots-requirements.stamp'\n"
        f"$digest = '{digest}'\n"
        "& { $ErrorActionPreference = 'Continue'; & $python -m pip install --disable-pip-version-check "
        "--no-input `\n"
        "    --requirement $requirements }\n"
        "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }\n"
        "[IO.File]::WriteAllText($stamp, $digest)",
    ]
    facts = {"facts.FileText": {"path=C:/impots/venv/impots-requirements.stamp": digest}}
    commands, noop = run_op(
        ops.pip_requirements, facts, venv_path="C:/impots/venv", requirements=requirements
    )
    assert commands == []
    assert noop == "requirements already installed"


def test_mod_wsgi_built_with_forward_slash_apache_root():
    facts = {
        "facts.FileText": {"path=C:/impots/venv/impots-mod_wsgi.stamp": "mod-wsgi==6.1.1 apache=C:/Apache24"}
    }
    commands, _ = run_op(
        ops.mod_wsgi,
        facts,
        venv_path="C:/impots/venv",
        apache_root="C:\\laragon\\bin\\apache\\httpd-2.4.62",
        package="mod-wsgi==6.1.1",
    )
    assert commands == [
        "$python = 'C:\\impots\\venv\\Scripts\\python.exe'\n"
        "$apache = 'C:/laragon/bin/apache/httpd-2.4.62'\n"
        "$package = 'mod-wsgi==6.1.1'\n"
        "$stamp = 'C:\\impots\\venv\\impots-mod_wsgi.stamp'\n"
        "$wanted = 'mod-wsgi==6.1.1 apache=C:/laragon/bin/apache/httpd-2.4.62'\n"
        "$env:MOD_WSGI_APACHE_ROOTDIR = $apache\n"
        "& { $ErrorActionPreference = 'Continue'; & $python -m pip install --disable-pip-version-check "
        "--no-input `\n"
        "    --no-cache-dir --force-reinstall --no-deps $package }\n"
        "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }\n"
        "[IO.File]::WriteAllText($stamp, $wanted)"
    ]
    assert_scripts_lint_clean(commands)


def test_mod_wsgi_noop_when_stamp_matches():
    facts = {
        "facts.FileText": {"path=C:/impots/venv/impots-mod_wsgi.stamp": "mod-wsgi==6.1.1 apache=C:/Apache24"}
    }
    commands, noop = run_op(
        ops.mod_wsgi, facts, venv_path="C:/impots/venv", apache_root="C:/Apache24", package="mod-wsgi==6.1.1"
    )
    assert commands == []
    assert noop == "mod-wsgi==6.1.1 already built for C:/Apache24"


# --- app release -------------------------------------------------------------------------------------

RELEASE_ARGS = {
    "artifact_path": "/repo/.artifacts/impots-app-0123456789abcdef.tar.gz",
    "sha256": "0123456789abcdef" + "f" * 48,
    "app": "C:/impots/app",
    "releases": "C:/impots/releases",
    "instance": "C:/impots/instance",
}


def test_app_release_first_time():
    commands, _ = run_op(ops.app_release, {"facts.LinkTarget": {"path=C:/impots/app": None}}, **RELEASE_ARGS)
    assert commands[0] == (
        "upload",
        RELEASE_ARGS["artifact_path"],
        "C:/impots/releases/0123456789abcdef.tar.gz",
    )
    script = commands[1]
    assert script.startswith(
        "$archive = 'C:\\impots\\releases\\0123456789abcdef.tar.gz'\n"
        f"$sha256 = '{RELEASE_ARGS['sha256']}'\n"
        "$staging = 'C:\\impots\\releases\\0123456789abcdef.new'\n"
        "$release = 'C:\\impots\\releases\\0123456789abcdef'\n"
        "$instance = 'C:\\impots\\instance'\n"
        "$app = 'C:\\impots\\app'\n"
    )
    # Point 8: System32's tar, never one found on PATH (Git/MSYS2 tar reads C:\... as a remote host).
    assert (
        "$tar = Join-Path ([Environment]::GetFolderPath('System')) 'tar.exe'\n"
        "& { $ErrorActionPreference = 'Continue'; & $tar -x -z -f $archive -C $staging }\n"
    ) in script
    assert "tar.exe -x" not in script
    assert (
        "$null = New-Item -ItemType Junction -Path (Join-Path $staging 'instance') -Value $instance\n"
        in script
    )
    # the junction only, never its target
    assert "& { $ErrorActionPreference = 'Continue'; & cmd.exe /d /c rmdir $app }\n" in script
    assert "Remove-Item -Recurse" not in script
    assert script.endswith("$null = New-Item -ItemType Junction -Path $app -Value $release")
    assert_scripts_lint_clean(commands)


def test_app_release_noop_and_switch():
    facts = {
        "facts.LinkTarget": {
            "path=C:/impots/app": {"type": "Junction", "target": "C:/impots/releases/0123456789abcdef"}
        }
    }
    commands, noop = run_op(ops.app_release, facts, **RELEASE_ARGS)
    assert commands == []
    assert noop == "release 0123456789abcdef is already in place"
    facts = {
        "facts.LinkTarget": {
            "path=C:/impots/app": {"type": "Junction", "target": "C:/impots/releases/aaaaaaaaaaaaaaaa"}
        }
    }
    commands, _ = run_op(ops.app_release, facts, **RELEASE_ARGS)
    assert len(commands) == 2


def test_app_release_refuses_a_real_folder():
    facts = {"facts.LinkTarget": {"path=C:/impots/app": {"type": "Directory", "target": None}}}
    with pytest.raises(
        OperationError, match="C:/impots/app is a directory, not the junction this deploy manages"
    ):
        run_op(ops.app_release, facts, **RELEASE_ARGS)


# --- secrets -------------------------------------------------------------------------------------------

SECRETS = "C:/impots/instance/secrets.json"
GOOD_ACL = {"protected": True, "sids": sorted([ops.ADMINISTRATORS_SID, ops.SYSTEM_SID, USER])}


def test_secrets_file_written_without_secret_on_command_line():
    facts = {"facts.JsonKeyDigests": {f"path={SECRETS}": None}, "facts.FileAcl": {f"path={SECRETS}": None}}
    given = {"secret_key": None, "mysql_password": "s3cret-Pa55word", "smtp_password": None}
    commands, _ = run_op(
        ops.secrets_file,
        facts,
        path=SECRETS,
        given=given,
        generate=["secret_key", "mysql_password"],
        reader_sid=USER,
    )
    upload, script = commands
    assert upload == (
        "upload",
        json.dumps({"mysql_password": "s3cret-Pa55word"}).encode(),
        SECRETS + ".impots-new",
    )
    assert "s3cret" not in script
    assert script.startswith(
        "$target = 'C:\\impots\\instance\\secrets.json'\n"
        "$staged = 'C:\\impots\\instance\\secrets.json.impots-new'\n"
        "$generate = @('secret_key', 'mysql_password')\n"
        f"$grants = @('*S-1-5-32-544:F', '*S-1-5-18:F', '*{USER}:R')\n"
    )
    assert (
        "& { $ErrorActionPreference = 'Continue'; & icacls.exe $target /inheritance:r /grant:r @grants /Q }\n"
        in script
    )
    assert_scripts_lint_clean(commands)


def test_secrets_file_noop_and_changes():
    digests = {"secret_key": "1" * 64, "mysql_password": sha(b"s3cret-Pa55word")}
    facts = {
        "facts.JsonKeyDigests": {f"path={SECRETS}": digests},
        "facts.FileAcl": {f"path={SECRETS}": GOOD_ACL},
    }
    args = {"path": SECRETS, "generate": ["secret_key", "mysql_password"], "reader_sid": USER}
    commands, noop = run_op(
        ops.secrets_file, facts, given={"secret_key": None, "mysql_password": "s3cret-Pa55word"}, **args
    )
    assert commands == []
    assert noop == f"{SECRETS} already holds every secret"
    # a new value from the environment
    commands, _ = run_op(ops.secrets_file, facts, given={"mysql_password": "other-Pa55word"}, **args)
    assert len(commands) == 2
    # a key to generate is missing
    commands, _ = run_op(
        ops.secrets_file, facts, given={}, **{**args, "generate": ["secret_key", "pgres_password"]}
    )
    assert len(commands) == 2
    # the ACL was widened by hand
    loose = {**GOOD_ACL, "sids": sorted(GOOD_ACL["sids"] + ["S-1-5-32-545"])}
    facts["facts.FileAcl"] = {f"path={SECRETS}": loose}
    commands, _ = run_op(ops.secrets_file, facts, given={}, **args)
    assert len(commands) == 2


def test_secrets_file_service_account_system_gets_no_extra_grant():
    facts = {"facts.JsonKeyDigests": {f"path={SECRETS}": None}, "facts.FileAcl": {f"path={SECRETS}": None}}
    commands, _ = run_op(
        ops.secrets_file, facts, path=SECRETS, given={}, generate=["secret_key"], reader_sid=ops.SYSTEM_SID
    )
    assert "$grants = @('*S-1-5-32-544:F', '*S-1-5-18:F')\n" in commands[1]


# --- the local CA ---------------------------------------------------------------------------------------


def test_trusted_root_ca_imports_once(tmp_path):
    """Point 6: the local CA is put in LocalMachine Root, compared by thumbprint (no-op when there)."""
    import subprocess

    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=t", "-days", "2",
         "-keyout", str(tmp_path / "k"), "-out", str(tmp_path / "ca.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha1", "-in", str(tmp_path / "ca.pem")],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    thumbprint = out.strip().split("=")[1].replace(":", "").upper()
    ca = str(tmp_path / "ca.pem")
    facts = {"facts.CertificateTrusted": {f"thumbprint={thumbprint}": False}}
    commands, _ = run_op(ops.trusted_root_ca, facts, ca_pem=ca, dest="C:/impots/tls/impots-ca.pem")
    assert commands == [
        ("upload", ca, "C:/impots/tls/impots-ca.pem"),
        "$p = 'C:\\impots\\tls\\impots-ca.pem'\n"
        "$null = Import-Certificate -FilePath $p -CertStoreLocation 'Cert:\\LocalMachine\\Root'",
    ]
    assert_scripts_lint_clean(commands)
    facts = {"facts.CertificateTrusted": {f"thumbprint={thumbprint}": True}}
    commands, noop = run_op(ops.trusted_root_ca, facts, ca_pem=ca, dest="C:/impots/tls/impots-ca.pem")
    assert commands == [] and noop == f"CA {thumbprint} is already trusted"
