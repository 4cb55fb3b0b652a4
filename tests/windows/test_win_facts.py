"""PowerShell facts: canned JSON (as Windows PowerShell 5.1 prints it) in, parsed value out; scripts
linted; a few scripts compared exactly."""

from __future__ import annotations

import inspect
import json

import pytest
from ps_lint import lint
from pyinfra.api.exceptions import FactProcessError

from provisioning.windows import facts

EVERY_FACT = [
    (facts.FileHash, {"path": "C:/impots/instance/impots.json"}),
    (facts.FileText, {"path": "C:/Windows/System32/drivers/etc/hosts"}),
    (facts.Directory, {"path": "C:/Program Files/x"}),
    (facts.CommandPath, {"program": "tar.exe"}),
    (facts.LinkTarget, {"path": "C:/impots/app"}),
    (facts.ServiceState, {"service": "Apache2.4"}),
    (facts.PythonInstallations, {"path": None}),
    (facts.PythonInstallations, {"path": "C:/Program Files/Python311/python.exe"}),
    (facts.ApacheInstallation, {"root": "C:/Apache24"}),
    (facts.LaragonApache, {"laragon_root": "C:/laragon"}),
    (facts.MsvcBuildTools, {}),
    (facts.HttpdRuntime, {"httpd": "C:/Apache24/bin/httpd.exe"}),
    (facts.CurrentUser, {}),
    (facts.FileAcl, {"path": "C:/impots/instance/secrets.json"}),
    (facts.JsonKeyDigests, {"path": "C:/impots/instance/secrets.json"}),
    (facts.VenvHome, {"venv": "C:/impots/venv"}),
    (
        facts.ProgramSearch,
        {"program": "psql.exe", "patterns": ["C:/Program Files/PostgreSQL/*/bin/psql.exe"]},
    ),
    (facts.TcpPortsOpen, {"endpoints": ["127.0.0.1:3306", "127.0.0.1:6379"]}),
    (facts.ProcessOwners, {"program": "laragon.exe"}),
    (facts.AccountSids, {"accounts": [".\\eleve", "LAB-PC\\prof"]}),
    (facts.SystemProgram, {"program": "tar.exe"}),
    (facts.CertificateTrusted, {"thumbprint": "0" * 40}),
]


def test_every_fact_class_is_listed():
    classes = {
        cls
        for _, cls in inspect.getmembers(facts, inspect.isclass)
        if issubclass(cls, facts.PowerShellJsonFact) and cls is not facts.PowerShellJsonFact
    }
    assert classes == {cls for cls, _ in EVERY_FACT}


@pytest.mark.parametrize(("fact_cls", "kwargs"), EVERY_FACT, ids=lambda v: getattr(v, "__name__", str(v)))
def test_fact_script_is_plausible_powershell(fact_cls, kwargs):
    script = fact_cls().command(**kwargs)
    assert lint(script) == []
    assert script.endswith(
        "ConvertTo-Json -InputObject "
        + ("@($result)" if "@($result)" in script else "$result")
        + " -Compress -Depth 5"
    )


def parse(fact_cls, stdout: str):
    return fact_cls().process(stdout.splitlines())


def test_file_hash_script_exact():
    assert facts.FileHash().command(path="C:/Program Files/it's/x.conf") == (
        "$p = 'C:\\Program Files\\it''s\\x.conf'\n"
        "\n"
        "$result = $null\n"
        "if (Test-Path -LiteralPath $p -PathType Leaf) {\n"
        "    $result = (Get-FileHash -LiteralPath $p -Algorithm SHA256).Hash.ToLowerInvariant()\n"
        "}\n"
        "ConvertTo-Json -InputObject $result -Compress -Depth 5"
    )


def test_file_hash():
    digest = "a" * 64
    assert parse(facts.FileHash, json.dumps(digest)) == digest
    assert parse(facts.FileHash, "null") is None


def test_file_text_keeps_crlf():
    assert (
        parse(facts.FileText, '"127.0.0.1 localhost\\r\\n::1 localhost\\r\\n"')
        == "127.0.0.1 localhost\r\n::1 localhost\r\n"
    )
    assert parse(facts.FileText, "null") is None


def test_command_path():
    assert (
        parse(facts.CommandPath, '"C:\\\\Windows\\\\system32\\\\tar.exe"') == "C:\\Windows\\system32\\tar.exe"
    )
    assert parse(facts.CommandPath, "null") is None


def test_directory():
    assert parse(facts.Directory, "true") is True
    assert parse(facts.Directory, "false") is False


def test_link_target():
    assert parse(facts.LinkTarget, '{"target":"C:\\\\impots\\\\releases\\\\0123","type":"Junction"}') == {
        "type": "Junction",
        "target": "C:/impots/releases/0123",
    }
    assert parse(facts.LinkTarget, '{"target":null,"type":"Directory"}') == {
        "type": "Directory",
        "target": None,
    }
    assert parse(facts.LinkTarget, "null") is None


def test_service_state():
    out = '{"start_type":"Automatic","account":"LocalSystem","status":"Running","name":"Apache2.4"}'
    assert parse(facts.ServiceState, out) == {
        "start_type": "Automatic",
        "account": "LocalSystem",
        "status": "Running",
        "name": "Apache2.4",
    }
    assert parse(facts.ServiceState, "null") is None


def test_python_installations():
    out = (
        '[{"executable":"C:\\\\Program Files\\\\Python311\\\\python.exe","version":"3.11.9","bits":64,'
        '"base_prefix":"C:\\\\Program Files\\\\Python311"}]'
    )
    assert parse(facts.PythonInstallations, out) == [
        {
            "executable": "C:/Program Files/Python311/python.exe",
            "version": "3.11.9",
            "bits": 64,
            "base_prefix": "C:/Program Files/Python311",
        }
    ]
    assert parse(facts.PythonInstallations, "[]") == []


def test_python_probe_has_no_double_quote():
    # Windows PowerShell 5.1 mangles embedded double quotes in native arguments.
    assert '"' not in facts.PYTHON_PROBE
    script = facts.PythonInstallations().command(path=None)
    assert "$probe = 'import json, struct, sys;" in script
    assert '"$env:ProgramFiles\\Python3*\\python.exe"' in script
    assert "'*\\WindowsApps\\*'" in script


def test_apache_installation_architecture_from_httpd_V():
    out = '{"missing":[],"machine":34404,"root":"C:\\\\Apache24","version":"2.4.62","architecture":64}'
    assert parse(facts.ApacheInstallation, out) == {
        "root": "C:/Apache24",
        "version": "2.4.62",
        "bits": 64,
        "missing": [],
        "has_include": True,
        "has_lib": True,
    }


def test_apache_installation_checks_every_build_file():
    """Point 7: the four .lib files mod_wsgi links and include/apr.h are looked for, not just libhttpd."""
    script = facts.ApacheInstallation().command(root="C:/Apache24")
    assert (
        "$build = @('include\\httpd.h', 'include\\apr.h', 'lib\\libhttpd.lib', 'lib\\libapr-1.lib', "
        "'lib\\libaprutil-1.lib', 'lib\\libapriconv-1.lib')"
    ) in script
    out = json.dumps({"root": "C:\\Apache24", "version": "2.4.62", "architecture": 64, "machine": 34404,
                      "missing": ["include\\apr.h", "lib\\libapriconv-1.lib"]})  # fmt: skip
    parsed = parse(facts.ApacheInstallation, out)
    assert parsed["missing"] == ["include/apr.h", "lib/libapriconv-1.lib"]
    assert parsed["has_include"] is False and parsed["has_lib"] is False


@pytest.mark.parametrize(("machine", "bits"), [(34404, 64), (332, 32), (43620, None)])
def test_apache_installation_bits_from_pe_header(machine, bits):
    out = json.dumps(
        {"root": "C:\\Apache24", "version": None, "architecture": None, "machine": machine,
         "missing": ["include\\httpd.h"]}
    )  # fmt: skip
    parsed = parse(facts.ApacheInstallation, out)
    assert parsed["bits"] == bits
    assert parsed["version"] is None
    assert parsed["has_include"] is False


def test_laragon_apache():
    out = (
        '{"selected":"httpd-2.4.54-win64-VS16",'
        '"versions":["httpd-2.4.62-240904-win64-VS17","httpd-2.4.54-win64-VS16"],'
        '"running":["C:\\\\laragon\\\\bin\\\\apache\\\\httpd-2.4.54-win64-VS16\\\\bin\\\\httpd.exe"]}'
    )
    assert parse(facts.LaragonApache, out) == {
        "versions": ["httpd-2.4.54-win64-VS16", "httpd-2.4.62-240904-win64-VS17"],
        "selected": "httpd-2.4.54-win64-VS16",
        "running": ["httpd-2.4.54-win64-VS16"],
    }
    assert parse(facts.LaragonApache, '{"selected":null,"versions":[]}') == {
        "versions": [],
        "selected": None,
        "running": [],
    }


def test_msvc_build_tools():
    out = (
        '{"installations":["C:\\\\Program Files (x86)\\\\Microsoft Visual Studio\\\\2022\\\\BuildTools"],'
        '"vswhere":true}'
    )
    assert parse(facts.MsvcBuildTools, out) == {
        "vswhere": True,
        "installations": ["C:\\Program Files (x86)\\Microsoft Visual Studio\\2022\\BuildTools"],
        "sdks": [],
    }
    assert parse(facts.MsvcBuildTools, '{"installations":[],"vswhere":false,"sdks":["10.0.22621.0"]}') == {
        "vswhere": False,
        "installations": [],
        "sdks": ["10.0.22621.0"],
    }
    # Point 7: the Windows SDK is looked for where its installer records it.
    script = facts.MsvcBuildTools().command()
    assert "Windows Kits\\Installed Roots" in script and "'um\\x64\\kernel32.lib'" in script


def test_httpd_runtime():
    out = (
        '{"processes":[{"pid":4242,"owner_sid":"S-1-5-21-1-2-3-1001"}],'
        '"services":[{"account_sid":"S-1-5-18","state":"Running","name":"Apache2.4"}]}'
    )
    assert parse(facts.HttpdRuntime, out) == {
        "services": [{"account_sid": "S-1-5-18", "state": "Running", "name": "Apache2.4"}],
        "processes": [{"pid": 4242, "owner_sid": "S-1-5-21-1-2-3-1001"}],
    }
    assert parse(facts.HttpdRuntime, '{"processes":[],"services":[]}') == {"services": [], "processes": []}


def test_current_user():
    out = '{"name":"LAB-PC\\\\prof","sid":"S-1-5-21-1-2-3-1001","admin":true}'
    assert parse(facts.CurrentUser, out) == {
        "name": "LAB-PC\\prof",
        "sid": "S-1-5-21-1-2-3-1001",
        "admin": True,
    }


def test_file_acl():
    out = '{"sids":["S-1-5-32-544","S-1-5-18"],"protected":true}'
    assert parse(facts.FileAcl, out) == {"protected": True, "sids": ["S-1-5-18", "S-1-5-32-544"]}
    assert parse(facts.FileAcl, "null") is None


def test_json_key_digests():
    out = '{"secret_key":"' + "b" * 64 + '"}'
    assert parse(facts.JsonKeyDigests, out) == {"secret_key": "b" * 64}
    assert parse(facts.JsonKeyDigests, "{}") == {}
    assert parse(facts.JsonKeyDigests, "null") is None


def test_venv_home():
    assert parse(facts.VenvHome, '"C:\\\\Program Files\\\\Python311\\\\"') == "C:/Program Files/Python311"
    assert parse(facts.VenvHome, "null") is None


def test_powershell_json_escapes_are_understood():
    # Windows PowerShell 5.1 escapes <, >, & and ' as \u003c... in ConvertTo-Json.
    assert parse(facts.FileText, '"a \\u003cb\\u003e \\u0026 \\u0027c\\u0027"') == "a <b> & 'c'"


def test_garbage_output_is_a_clear_error():
    with pytest.raises(FactProcessError, match="not JSON"):
        parse(facts.FileHash, "Get-FileHash : Access denied")


def test_service_account_dot_backslash_is_this_machine():
    """Point 10: a service account written .\\name (services.msc's way) is resolved as <computer>\\name."""
    script = facts.HttpdRuntime().command(httpd="C:/Apache24/bin/httpd.exe")
    assert (
        "if ($account.StartsWith('.\\')) { $account = $env:COMPUTERNAME + $account.Substring(1) }" in script
    )
    assert "Get-AccountSid $account" in script
    assert "Get-AccountSid $account" in facts.AccountSids().command(accounts=[".\\eleve"])


def test_python_search_includes_the_install_manager():
    """Point 12: python.org's install manager (3.14+) puts Python in %LOCALAPPDATA%\\Python\\pythoncore-*."""
    script = facts.PythonInstallations().command(path=None)
    assert '"$env:LOCALAPPDATA\\Python\\pythoncore-3*\\python.exe"' in script


def test_process_owners_and_system_program():
    out = (
        '[{"pid":4100,"owner_sid":"S-1-5-21-1-2-3-1002","owner":"LAB-PC\\\\eleve","session":1,'
        '"path":"C:\\\\laragon\\\\laragon.exe"}]'
    )
    assert parse(facts.ProcessOwners, out)[0]["owner"] == "LAB-PC\\eleve"
    assert parse(facts.ProcessOwners, "[]") == []
    assert (
        parse(facts.SystemProgram, '"C:\\\\Windows\\\\system32\\\\tar.exe"') == "C:/Windows/system32/tar.exe"
    )
    assert "GetFolderPath('System')" in facts.SystemProgram().command(program="tar.exe")
