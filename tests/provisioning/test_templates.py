"""Templates rendered as the deploy renders them: vhosts, listen addresses, instance configuration."""

from __future__ import annotations

import json
import re

import pytest

from provisioning.linux.operations.hosts import with_block
from provisioning.linux.platforms import DEBIAN, RHEL
from provisioning.plan import TlsPlan, render, smoke_url
from provisioning.settings import app_paths, instance_config_json, parse_settings
from provisioning.windows.platforms import laragon_platform

TLS = TlsPlan(
    cert="/opt/impots/tls/server.pem",
    key="/opt/impots/tls/server.key",
    chain=None,
    trust_anchor="/opt/impots/tls/ca.pem",
    uploads=(),
    client_ca=None,
)


def vhost(data: dict, index: int = 0, platform=DEBIAN) -> str:
    settings = parse_settings("h", data, {})
    return render(
        "vhost.conf.j2",
        site=settings.sites[index],
        settings=settings,
        paths=app_paths(settings),
        platform=platform,
        tls=TLS,
    )


def directive(text: str, name: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith(name + " ")]


def test_vhost_under_impots_alias() -> None:
    text = vhost({})
    assert directive(text, "WSGIScriptAlias") == [
        'WSGIScriptAlias /impots "/opt/impots/app/main_withmysql.wsgi"'
    ]
    (daemon,) = directive(text, "WSGIDaemonProcess")
    assert daemon.split()[1] == "flask-impots-withmysql"
    for option in (
        "python-home=/opt/impots/venv",
        "python-path=/opt/impots/app",
        "processes=2",
        "threads=15",
        "lang=C.UTF-8",
        "locale=C.UTF-8",
        "display-name=%{GROUP}",
        # Each site's daemons run as the site's own system user and group (provisioning/site_users.py).
        "user=impots-flask-impots-withmysql",
        "group=impots-flask-impots-withmysql",
        "home=/opt/impots/app/instance/flask-impots-withmysql",  # the site user has no home of its own
    ):
        assert option in daemon.split(), option
    assert directive(text, "WSGIProcessGroup") == ["WSGIProcessGroup flask-impots-withmysql"]
    assert directive(text, "WSGIApplicationGroup") == ["WSGIApplicationGroup %{GLOBAL}"]
    assert directive(text, "DocumentRoot") == ['DocumentRoot "/opt/impots/www"'] * 2


def test_vhost_at_the_root_alias_for_the_date_time_site() -> None:
    text = vhost({}, index=2)
    assert directive(text, "WSGIScriptAlias") == ['WSGIScriptAlias / "/opt/impots/app/date_time_server.wsgi"']
    assert "ServerName date-time-server" in text


def test_vhost_custom_alias_and_daemon_sizes() -> None:
    data = {
        "impots_sites": [{"name": "clock", "kind": "date-time", "alias": "/show-date-time"}],
        "impots_daemon_processes": 3,
        "impots_daemon_threads": 7,
        "impots_install_root": "/srv/impots",
    }
    text = vhost(data)
    assert directive(text, "WSGIScriptAlias") == [
        'WSGIScriptAlias /show-date-time "/srv/impots/app/date_time_server.wsgi"'
    ]
    assert "processes=3" in text and "threads=7" in text


def test_vhost_tls_is_mozilla_intermediate() -> None:
    text = vhost({})
    assert directive(text, "SSLProtocol") == ["SSLProtocol -all +TLSv1.2 +TLSv1.3"]
    (ciphers,) = directive(text, "SSLCipherSuite")
    suites = ciphers.split()[1].split(":")
    assert suites[0] == "ECDHE-ECDSA-AES128-GCM-SHA256" and len(suites) == 9
    assert not any(weak in ciphers for weak in ("RC4", "3DES", "CBC", "SHA1", "MD5"))
    assert directive(text, "SSLCertificateFile") == ['SSLCertificateFile "/opt/impots/tls/server.pem"']
    assert re.search(r"<VirtualHost \*:80>.*Redirect permanent / https://flask-impots-withmysql/", text, re.S)


def test_vhost_grants_only_the_wsgi_script() -> None:
    text = vhost({})
    assert '<Files "main_withmysql.wsgi">' in text
    assert text.count("Require all granted") == 1
    deny = render("linux/impots.conf.j2", paths=app_paths(parse_settings("h", {}, {})))
    assert re.search(r"<Directory /opt/impots>.*?Require all denied.*?</Directory>", deny, re.S)


def test_vhost_uses_the_platform_log_dir() -> None:
    assert 'ErrorLog "/var/log/httpd/flask-impots-withmysql-error.log"' in vhost({}, platform=RHEL)


def test_vhost_extra_lines_go_into_the_https_vhost() -> None:
    text = vhost({"impots_vhost_extra": ["Header always set X-Lab on"]})
    https = text.split("<VirtualHost *:443>")[1]
    assert "    Header always set X-Lab on" in https


def test_windows_vhost_is_embedded_and_guards_its_modules() -> None:
    """The same template on Windows: no daemon mode, and the HTTPS vhost only where mod_ssl and
    mod_wsgi are loaded (Laragon's shared sites-enabled folder, another Apache version, SSL off)."""
    platform = laragon_platform("C:/laragon", "C:/laragon/bin/apache/httpd-2.4.62-win64-VS17")
    text = vhost({"impots_vhost_extra": ["Header always set X-Lab on"]}, platform=platform)
    assert not directive(text, "WSGIDaemonProcess") and not directive(text, "WSGIProcessGroup")
    https = text.split("<IfModule ssl_module>\n<IfModule wsgi_module>\n")[1]
    assert https.startswith("<VirtualHost *:443>") and https.rstrip().endswith("</IfModule>\n</IfModule>")
    assert "SSLCipherSuite ECDHE-ECDSA-AES128-GCM-SHA256" in https
    assert "    Header always set X-Lab on" in https
    assert directive(text, "ErrorLog")[0].startswith('ErrorLog "C:/laragon/bin/apache/httpd-2.4.62')


@pytest.mark.parametrize(
    ("address", "platform", "expected"),
    [
        ("127.0.0.1", DEBIAN, ["Listen 127.0.0.1:80", "Listen 127.0.0.1:443"]),
        ("*", DEBIAN, ["Listen 80", "Listen 443"]),
        ("::1", DEBIAN, ["Listen [::1]:80", "Listen [::1]:443"]),
        ("10.0.0.5", RHEL, ["Listen 10.0.0.5:80", "Listen 10.0.0.5:443 https"]),
    ],
)
def test_ports(address: str, platform, expected: list[str]) -> None:
    settings = parse_settings("h", {"impots_listen_address": address}, {})
    text = render("linux/ports.conf.j2", settings=settings, platform=platform)
    assert directive(text, "Listen") == expected


def test_wsgi_module_files_from_module_config() -> None:
    config = ['LoadModule wsgi_module "/opt/impots/venv/lib/x.so"', 'WSGIPythonHome "/opt/impots/venv"']
    load = render("linux/wsgi.load.j2", module_config=config, platform=DEBIAN)
    conf = render("linux/wsgi.conf.j2", module_config=config, platform=DEBIAN)
    assert directive(load, "LoadModule") == [config[0]]
    assert directive(conf, "WSGIPythonHome") == [config[1]]
    assert "WSGIRestrictEmbedded On" in conf
    pending = render("linux/wsgi.load.j2", module_config=[], platform=DEBIAN)
    assert directive(pending, "LoadModule") == []


def instance_config(data: dict, environ: dict | None = None) -> tuple[dict, str]:
    settings = parse_settings("h", data, environ or {})
    text = instance_config_json(settings, app_paths(settings))
    return json.loads(text), text


def test_instance_config_follows_contract_1() -> None:
    config, _ = instance_config({})
    assert config["prefix_url"] == "/do"
    assert config["with_csrftoken"] is False and config["with_redissession"] is True
    assert config["databases"]["mysql"] == {
        "host": "127.0.0.1", "port": 3306, "database": "dbimpots-2019", "user": "admimpots",
    }  # fmt: skip
    assert config["databases"]["pgres"]["port"] == 5432
    assert config["users"][0]["login"] == "admin"
    assert config["users"][0]["password"].startswith("$pbkdf2-sha256$")
    assert config["admin_mail"]["subject"] == "plantage du serveur de calcul d'impôts"
    assert config["admin_mail"]["from"] == "guest@localhost.com"
    assert config["log_file"] == "/opt/impots/app/instance/logs/impots-{dbms}.log"
    assert config["secrets_file"] == "/opt/impots/app/instance/secrets.json"


def test_instance_config_has_no_secret() -> None:
    secrets = {
        "impots_mysql_password": "mysql-secret-1",
        "impots_pgres_password": "pgres-secret-1",
        "impots_secret_key": "flask-secret-1",
        "impots_smtp_password": "smtp-secret-1",
    }
    config, text = instance_config({**secrets, "impots_admin_mail": {"user": "mailer", "tls": True}})
    for value in secrets.values():
        assert value not in text
    assert not {"password", "secret_key", "mysql_password", "smtp_password"} & set(config)
    assert config["admin_mail"]["user"] == "mailer"
    assert "password" not in config["admin_mail"]


def test_smoke_urls() -> None:
    settings = parse_settings("h", {}, {})
    assert [smoke_url(settings, s) for s in settings.sites] == [
        "https://flask-impots-withmysql/impots/do/",
        "https://flask-impots-withpgres/impots/do/",
        "https://date-time-server/",
    ]


def test_hosts_block_is_stable() -> None:
    lines = ["127.0.0.1 localhost", "::1 ip6-localhost"]
    once = with_block(lines, "127.0.0.1", ["a", "b"])
    assert once[:2] == lines
    assert with_block(once, "127.0.0.1", ["a", "b"]) == once
