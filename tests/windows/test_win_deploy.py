"""deploy_windows' decisions: prerequisites (clear errors before any change), the platform records,
and the exact files both layouts get (vhost, httpd.conf block, hosts block, CRLF)."""

from __future__ import annotations

from string import Template

import pytest
from win_fakes import PYTHON, apache, dry_run, laragon_machine

import provisioning.plan as plan_module
from provisioning.plan import host_plan
from provisioning.settings import app_paths, parse_settings
from provisioning.tls import local_ca_files
from provisioning.windows import facts
from provisioning.windows.deploy import (
    WindowsDeployError,
    WindowsTarget,
    choose_python,
    hosts_block_lines,
    httpd_block_lines,
    ssl_listen,
    vhost_bytes,
)
from provisioning.windows.platforms import (
    PlatformError,
    apache_lounge_platform,
    laragon_apache_folder,
    laragon_platform,
)

pytestmark = pytest.mark.usefixtures("clean_environment")


def settings_for(**data):
    return parse_settings("@winssh/lab-pc", data, environ={}, default_os="windows")


# --- prerequisites, through the connector: one message naming what was found, before any operation ----


def plan_error(monkeypatch, windows) -> str:
    with pytest.raises(WindowsDeployError) as error:
        dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    # The fake saw only facts (JSON queries), never an operation's script.
    assert all("ConvertTo-Json -InputObject" in script for script in windows.seen)
    return str(error.value)


def test_bitness_mismatch(monkeypatch):
    python32 = {**PYTHON, "bits": 32, "executable": "C:\\Program Files (x86)\\Python311-32\\python.exe"}
    message = plan_error(monkeypatch, laragon_machine(python=python32))
    assert message == (
        "@winssh/lab-pc: no usable Python installed (found: 3.11.9 32-bit at "
        "C:/Program Files (x86)/Python311-32/python.exe): install a 64-bit Python 3.11, 3.12, 3.13, 3.14 "
        "(the pinned requirements need 3.11+; psycopg2-binary and msgspec have no 32-bit Windows wheels) "
        "from python.org for all users, or set impots_windows_python"
    )


def test_bitness_mismatch_with_the_python_given_in_data(monkeypatch):
    windows = laragon_machine()
    python32 = {**PYTHON, "bits": 32}
    windows.fact(facts.PythonInstallations, [python32], path="C:/Python311-32/python.exe")
    with pytest.raises(WindowsDeployError, match="impots_windows_python is Python 3.11.9 32-bit at"):
        dry_run(
            monkeypatch,
            windows,
            {"impots_windows_layout": "laragon", "impots_windows_python": "C:/Python311-32/python.exe"},
        )


def test_no_msvc_build_tools(monkeypatch):
    message = plan_error(monkeypatch, laragon_machine(msvc={"vswhere": False, "installations": []}))
    assert "no Microsoft C++ build tools (vswhere.exe not found)" in message
    message = plan_error(monkeypatch, laragon_machine(msvc={"vswhere": True, "installations": []}))
    assert "Visual Studio is installed but without the C++ tools" in message


def test_apache_tree_without_include(monkeypatch):
    windows = laragon_machine()
    root = "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17"
    windows.fact(facts.ApacheInstallation, apache(root, missing=("include/httpd.h",)), root=root)
    message = plan_error(monkeypatch, windows)
    assert message == (
        f"@winssh/lab-pc: the Apache tree at {root} lacks include/httpd.h (mod_wsgi is compiled and linked "
        "against them): use a full Apache Lounge / Laragon Apache, not a trimmed copy"
    )


def test_every_problem_is_reported_at_once(monkeypatch):
    windows = laragon_machine(python=None, msvc={"vswhere": False, "installations": []})
    message = plan_error(monkeypatch, windows)
    assert message.count("@winssh/lab-pc: ") == 2
    assert "found: none" in message and "vswhere.exe not found" in message


def test_no_system_tar(monkeypatch):
    """Point 8: only System32's tar.exe counts (a Git tar on PATH is no answer)."""
    windows = laragon_machine()
    windows.fact(facts.SystemProgram, None, program="tar.exe")
    windows.fact(facts.CommandPath, "C:\\Program Files\\Git\\usr\\bin\\tar.exe", program="tar.exe")
    message = plan_error(monkeypatch, windows)
    assert message.startswith("@winssh/lab-pc: no tar.exe in System32")
    assert not any("Get-Command" in script and "'tar.exe'" in script for script in windows.seen)


def test_no_laragon(monkeypatch):
    windows = laragon_machine()
    windows.fact(facts.LaragonApache, {"versions": [], "selected": None}, laragon_root="C:/laragon")
    message = plan_error(monkeypatch, windows)
    assert message.startswith("@winssh/lab-pc: no Apache in C:/laragon/bin/apache (no httpd-* folder)")


def test_stray_load_module_outside_our_block(monkeypatch):
    windows = laragon_machine()
    root = "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17"
    conf = 'Listen 80\r\nLoadModule wsgi_module "C:/old/mod_wsgi.cp38-win_amd64.pyd"\r\n'
    windows.fact(facts.FileText, conf, path=f"{root}/conf/httpd.conf")
    message = plan_error(monkeypatch, windows)
    assert "already loads mod_wsgi outside the impots block" in message
    assert "'LoadModule wsgi_module \"C:/old/mod_wsgi.cp38-win_amd64.pyd\"'" in message


# --- choices --------------------------------------------------------------------------------------------


def test_laragon_apache_folder_choice():
    versions = ["httpd-2.4.54-win64-VS16", "httpd-2.4.62-240904-win64-VS17", "httpd-2.4.9-win64"]
    assert laragon_apache_folder("C:/laragon", versions, None) == "httpd-2.4.62-240904-win64-VS17"
    assert (
        laragon_apache_folder("C:/laragon", versions, "httpd-2.4.54-win64-VS16") == "httpd-2.4.54-win64-VS16"
    )
    # Laragon's ini names a folder that no longer exists: the newest one.
    assert (
        laragon_apache_folder("C:/laragon", versions, "httpd-2.4.35-win64")
        == "httpd-2.4.62-240904-win64-VS17"
    )
    with pytest.raises(PlatformError):
        laragon_apache_folder("C:/laragon", [], None)


def test_choose_python_prefers_newest_matching_bitness():
    found = [
        {**PYTHON, "version": "3.12.7", "bits": 32},
        {**PYTHON, "version": "3.11.9", "bits": 64},
        {**PYTHON, "version": "3.8.10", "bits": 64},
        {**PYTHON, "version": "3.10.11", "bits": 64},
    ]
    python, problem = choose_python(settings_for(), found)
    assert python["version"] == "3.11.9" and problem == ""


def test_ssl_listen_detection():
    assert ssl_listen("Listen 80\r\n", "127.0.0.1") == "127.0.0.1:443"
    assert ssl_listen("Listen 80\r\n", "*") == "443"
    assert ssl_listen("Listen 80\r\n", "::1") == "[::1]:443"
    assert ssl_listen("Listen [::]:443\r\n", "::1") is None
    assert ssl_listen("Listen 80\r\nListen 443\r\n", "127.0.0.1") is None
    assert ssl_listen("  Listen 0.0.0.0:443 https\r\n", "127.0.0.1") is None
    assert ssl_listen('Include "C:/laragon/etc/apache2/httpd-ssl.conf"\r\n', "127.0.0.1") is None
    assert ssl_listen("#Include conf/extra/httpd-ssl.conf\r\n#Listen 443\r\n", "127.0.0.1") == "127.0.0.1:443"
    # our own block's Listen does not count: the line stays in the block on the next run
    ours = (
        "# BEGIN impots (managed by pyinfra)\r\nListen 127.0.0.1:443\r\n# END impots (managed by pyinfra)\r\n"
    )
    assert ssl_listen("Listen 80\r\n" + ours, "127.0.0.1") == "127.0.0.1:443"


# --- exact files ----------------------------------------------------------------------------------------


def target_for(layout: str, settings) -> WindowsTarget:
    if layout == "laragon":
        platform = laragon_platform("C:/laragon", "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17")
        conf = 'Listen 80\r\nInclude "C:/laragon/etc/apache2/httpd-ssl.conf"\r\n'
    else:
        platform = apache_lounge_platform(None)
        conf = "Listen 80\r\n"
    return WindowsTarget(
        platform=platform,
        apache={"root": platform.apache_root, "version": "2.4.62", "bits": 64},
        python={"version": "3.11.9", "bits": 64, "base_prefix": "C:/Program Files/Python311",
                "executable": "C:/Program Files/Python311/python.exe"},
        service=None if layout == "laragon" else "Apache2.4",
        reader_sids=("S-1-5-18",),
        paths=app_paths(settings),
        httpd_conf=conf,
    )  # fmt: skip


# The vhost both layouts get, with what differs per site and layout as $placeholders.
VHOST = Template("""\
# $site: $what
# Managed by impots-provisioning (vhost.conf.j2): local edits are overwritten.

# Plain HTTP only sends clients to HTTPS: the session cookie never travels in clear.
<VirtualHost *:80>
    ServerName $site
    DocumentRoot "C:/impots/www"
    Redirect permanent / https://$site/

    ErrorLog "$logs/$site-error.log"
    CustomLog "$logs/$site-access.log" combined
</VirtualHost>

<IfModule ssl_module>
<IfModule wsgi_module>
<VirtualHost *:443>
    ServerName $site
    # An empty folder: nothing of the app is ever served as a file.
    DocumentRoot "C:/impots/www"
    <Directory "C:/impots/www">
        Require all denied
    </Directory>

    SSLEngine on
    SSLCertificateFile "C:/impots/tls/server.pem"
    SSLCertificateKeyFile "C:/impots/tls/server.key"
$chain    # Mozilla "intermediate" (guideline 5.7): TLS 1.2 and 1.3 only, their cipher list.
    SSLProtocol -all +TLSv1.2 +TLSv1.3
    SSLCipherSuite ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305
    SSLOpenSSLConfCmd Curves X25519:prime256v1:secp384r1
    SSLHonorCipherOrder off
    SSLSessionTickets off

    # Browsers keep to HTTPS (impots_hsts_max_age), never sniff types, never frame the app, and send
    # no full URL to other sites. "unset" drops the app's own copy: each header is sent once.
    <IfModule headers_module>
    Header unset Strict-Transport-Security
    Header always set Strict-Transport-Security "max-age=31536000"
    Header unset X-Content-Type-Options
    Header always set X-Content-Type-Options "nosniff"
    Header unset X-Frame-Options
    Header always set X-Frame-Options "DENY"
    Header unset Content-Security-Policy
    Header always set Content-Security-Policy "frame-ancestors 'none'"
    Header unset Referrer-Policy
    Header always set Referrer-Policy "same-origin"
    </IfModule>

    # A backstop above the app's own limit (impots_max_request_bytes), which answers 413 in the app's
    # format; Apache refuses what the app would never read (a chunked body without end, say).
    LimitRequestBody 262144
    # psycopg2 and other C extensions want the main interpreter.
    WSGIApplicationGroup %{GLOBAL}
    WSGIScriptAlias $alias "C:/impots/app/$wsgi"
    <Directory "C:/impots/app">
        <Files "$wsgi">
            Require all granted
        </Files>
    </Directory>

    ErrorLog "$logs/$site-error.log"
    CustomLog "$logs/$site-access.log" combined
</VirtualHost>
</IfModule>
</IfModule>
""")  # noqa: E501


def expected_vhost(site: str, what: str, logs: str, alias: str, wsgi: str, chain: bool) -> bytes:
    """The exact vhost file (CRLF) for a site; ``chain``: a CA file is given with the certificate."""
    chain_line = '    SSLCertificateChainFile "C:/impots/tls/ca.pem"\n' if chain else ""
    text = VHOST.substitute(site=site, what=what, logs=logs, alias=alias, wsgi=wsgi, chain=chain_line)
    return text.replace("\n", "\r\n").encode()


def windows_vhost(layout: str, settings, site) -> bytes:
    """The vhost file the Windows deploy writes for ``site``: the plan's text with CRLF line ends."""
    platform = target_for(layout, settings).platform
    return vhost_bytes(host_plan("@winssh/lab-pc", settings, platform))[platform.vhost_file(site.name)]


def given_tls_files(with_ca: bool) -> dict:
    """``impots_tls`` with given files (a certificate of the controller's local CA naming every site)."""
    names = ["flask-impots-withmysql", "flask-impots-withpgres", "date-time-server"]
    made = local_ca_files("given", names, plan_module.ARTIFACTS_DIR)
    return {"source": "files", "cert": made.cert, "key": made.key, **({"ca": made.ca} if with_ca else {})}


def test_laragon_vhost_exact():
    """Point 6: the local CA's certificate on Laragon too (Laragon's own names only its *.test sites)."""
    settings = settings_for()
    site = settings.sites[1]
    assert (
        target_for("laragon", settings).platform.vhost_file(site.name)
        == "C:/laragon/etc/apache2/sites-enabled/flask-impots-withpgres.conf"
    )
    assert windows_vhost("laragon", settings, site) == expected_vhost(
        "flask-impots-withpgres",
        "impots (pgres) under /impots",
        "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17/logs",
        "/impots",
        "main_withpgres.wsgi",
        chain=False,
    )


def test_apache_lounge_vhost_exact():
    settings = settings_for(impots_windows_layout="apache-lounge", impots_tls=given_tls_files(with_ca=True))
    target = target_for("apache-lounge", settings)
    site = settings.sites[2]
    assert target.platform.vhost_file(site.name) == "C:/Apache24/conf/extra/impots-date-time-server.conf"
    assert windows_vhost("apache-lounge", settings, site) == expected_vhost(
        "date-time-server",
        "date-time under /",
        "C:/Apache24/logs",
        "/",
        "date_time_server.wsgi",
        chain=True,
    )


def test_vhost_files_are_never_named_auto():
    settings = settings_for()
    for layout in ("laragon", "apache-lounge"):
        platform = target_for(layout, settings).platform
        for name in ("auto.example", "auto", "flask-impots-withmysql"):
            assert not platform.vhost_file(name).rsplit("/", 1)[1].startswith("auto.")
    laragon = target_for("laragon", settings).platform
    assert (
        laragon.vhost_file("auto.example") == "C:/laragon/etc/apache2/sites-enabled/impots-auto.example.conf"
    )


def test_laragon_httpd_block_exact():
    settings = settings_for()
    lines = httpd_block_lines(target_for("laragon", settings), settings)
    module = "C:/impots/venv/Lib/site-packages/mod_wsgi/server/mod_wsgi.cp311-win_amd64.pyd"
    assert lines == [
        "# mod_wsgi for the impots app, loaded once, here only (embedded mode: one Python per Apache).",
        'LoadFile "C:/Program Files/Python311/python311.dll"',
        f'LoadModule wsgi_module "{module}"',
        "# No WSGIPythonHome: on Windows mod_wsgi (4.8 and later) never sets Python's home, that directive "
        "only",
        "# adds <home>/Lib/site-packages to sys.path. Python finds its standard library from the DLL loaded",
        "# above (the base installation); the venv's packages are added here.",
        'WSGIPythonPath "C:/impots/venv/Lib/site-packages"',
    ]


def test_apache_lounge_httpd_block_exact():
    settings = settings_for(impots_windows_layout="apache-lounge")
    lines = httpd_block_lines(target_for("apache-lounge", settings), settings)
    assert lines[6:] == [
        'WSGIPythonPath "C:/impots/venv/Lib/site-packages"',
        "<IfModule !ssl_module>",
        "    LoadModule ssl_module modules/mod_ssl.so",
        "</IfModule>",
        "Listen 127.0.0.1:443",
        'Include "C:/Apache24/conf/extra/impots-flask-impots-withmysql.conf"',
        'Include "C:/Apache24/conf/extra/impots-flask-impots-withpgres.conf"',
        'Include "C:/Apache24/conf/extra/impots-date-time-server.conf"',
    ]


def test_32_bit_module_name():
    settings = settings_for()
    target = target_for("laragon", settings)
    target = WindowsTarget(
        **{**target.__dict__, "python": {**target.python, "bits": 32, "version": "3.10.11"}}
    )
    assert target.mod_wsgi_module.endswith("/mod_wsgi.cp310-win32.pyd")
    assert target.python_dll == "C:/Program Files/Python311/python310.dll"


def test_hosts_block_lines():
    settings = settings_for(impots_hosts_address="192.0.2.7")
    assert hosts_block_lines(settings) == [
        "192.0.2.7 flask-impots-withmysql",
        "192.0.2.7 flask-impots-withpgres",
        "192.0.2.7 date-time-server",
    ]
