"""Host data validation (Contract 3): defaults, and every bad value named by host and key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provisioning.settings import (
    DEFAULT_ADMIN_HASH,
    Settings,
    SettingsError,
    Site,
    app_paths,
    parse_settings,
)

HOST = "lab-01"
MYSQL_SITE = {"name": "flask-impots-withmysql", "kind": "impots", "dbms": "mysql", "alias": "/impots"}


def settings(data: dict | None = None, environ: dict | None = None, **kwargs) -> Settings:
    return parse_settings(HOST, data or {}, environ or {}, **kwargs)


def error_for(data: dict, environ: dict | None = None) -> str:
    with pytest.raises(SettingsError) as caught:
        settings(data, environ)
    return str(caught.value)


def test_defaults_follow_contract_3() -> None:
    s = settings()
    assert s.os == "linux"
    assert s.sites == (
        Site("flask-impots-withmysql", "impots", "mysql", "/impots"),
        Site("flask-impots-withpgres", "impots", "pgres", "/impots"),
        Site("date-time-server", "date-time", None, "/"),
    )
    assert (s.prefix_url, s.with_csrftoken, s.with_redissession) == ("/do", False, True)
    assert (s.daemon_processes, s.daemon_threads) == (2, 15)
    assert s.tls.source == "local-ca"
    assert (s.database.name, s.database.user) == ("dbimpots-2019", "admimpots")
    assert s.mysql_password is s.pgres_password is s.secret_key is s.smtp_password is None
    assert s.users == ({"login": "admin", "password_hash": DEFAULT_ADMIN_HASH},)
    assert s.install_root == "/opt/impots"
    assert (s.listen_address, s.hosts_address) == ("127.0.0.1", "127.0.0.1")
    assert s.admin_mail["subject"] == "plantage du serveur de calcul d'impôts"
    assert s.dbms_in_use == ("mysql", "pgres")


def test_default_admin_hash_is_admin() -> None:
    from passlib.hash import pbkdf2_sha256

    assert pbkdf2_sha256.verify("admin", DEFAULT_ADMIN_HASH)


def test_windows_defaults() -> None:
    s = settings({"impots_os": "windows"})
    assert (s.install_root, s.windows_layout, s.laragon_root) == ("C:/impots", "laragon", "C:/laragon")
    assert settings(default_os="windows").os == "windows"


def test_secrets_come_from_data_then_environment() -> None:
    environ = {"IMPOTS_MYSQL_PASSWORD": "from-the-env-1", "IMPOTS_SECRET_KEY": "env-secret-key-1"}
    s = settings({"impots_mysql_password": "from-the-data-1"}, environ)
    assert s.mysql_password == "from-the-data-1"
    assert s.secret_key == "env-secret-key-1"
    assert s.pgres_password is None


def test_repr_never_shows_a_secret() -> None:
    s = settings({"impots_mysql_password": "very-secret-value"})
    assert "very-secret-value" not in repr(s)


def test_cli_strings_for_integers_and_booleans() -> None:
    s = settings({"impots_daemon_threads": "7", "impots_with_csrftoken": "true"})
    assert (s.daemon_threads, s.with_csrftoken) == (7, True)


def test_sites_kind_alias_and_urls() -> None:
    s = settings(
        {
            "impots_sites": [
                {"name": "impots.lab.example", "kind": "impots", "dbms": "pgres", "alias": "/"},
                {"name": "clock", "kind": "date-time", "alias": "/show-date-time"},
            ],
            "impots_prefix_url": "",
        }
    )
    assert s.dbms_in_use == ("pgres",)
    assert [site.wsgi_file for site in s.sites] == ["main_withpgres.wsgi", "date_time_server.wsgi"]
    assert s.site_urls() == ["https://impots.lab.example", "https://clock/show-date-time/"]


def test_app_paths() -> None:
    paths = app_paths(settings({"impots_install_root": "/srv/impots"}))
    assert paths.app == "/srv/impots/app"
    assert paths.secrets_file == "/srv/impots/app/instance/secrets.json"
    assert paths.log_file == "/srv/impots/app/instance/logs/impots-{dbms}.log"
    assert app_paths(settings({"impots_os": "windows"})).venv == "C:/impots/venv"


def sites_with(**changes) -> list[dict]:
    return [{**MYSQL_SITE, **changes}]


# case -> (data, key the message must name, words the message must contain)
BAD_DATA = {
    "alias without slash": (
        {"impots_sites": sites_with(alias="impots")},
        "impots_sites[0].alias",
        "'impots'",
    ),
    "alias with trailing slash": (
        {"impots_sites": sites_with(alias="/impots/")},
        "impots_sites[0].alias",
        "/",
    ),
    "alias with a space": (
        {"impots_sites": sites_with(alias="/my app")},
        "impots_sites[0].alias",
        "'/my app'",
    ),
    "site name not a hostname": (
        {"impots_sites": sites_with(name="bad_name!")},
        "impots_sites[0].name",
        "host",
    ),
    "site name upper case": ({"impots_sites": sites_with(name="Impots")}, "impots_sites[0].name", "host"),
    "site name label too long": ({"impots_sites": sites_with(name="a" * 64)}, "impots_sites[0].name", "host"),
    "duplicate site names": (
        {"impots_sites": [MYSQL_SITE, {**MYSQL_SITE, "dbms": "pgres"}]},
        "impots_sites[1].name",
        "duplicate",
    ),
    "unknown dbms": ({"impots_sites": sites_with(dbms="oracle")}, "impots_sites[0].dbms", "'oracle'"),
    "impots site without dbms": (
        {"impots_sites": [{"name": "x", "kind": "impots"}]},
        "impots_sites[0].dbms",
        "None",
    ),
    "date-time site with dbms": (
        {"impots_sites": [{"name": "x", "kind": "date-time", "dbms": "mysql"}]},
        "impots_sites[0].dbms",
        "date-time",
    ),
    "unknown kind": ({"impots_sites": sites_with(kind="blog")}, "impots_sites[0].kind", "'blog'"),
    "unknown site key": ({"impots_sites": sites_with(port=8080)}, "impots_sites[0].port", "unknown"),
    "no sites": ({"impots_sites": []}, "impots_sites", "non-empty"),
    "prefix without slash": ({"impots_prefix_url": "do"}, "impots_prefix_url", "'do'"),
    "prefix with trailing slash": ({"impots_prefix_url": "/do/"}, "impots_prefix_url", "'/do/'"),
    "prefix with a dot-dot segment": ({"impots_prefix_url": "/do/.."}, "impots_prefix_url", "'/do/..'"),
    "prefix of three segments": ({"impots_prefix_url": "/a/b/c"}, "impots_prefix_url", "'/a/b/c'"),
    "alias with a dot segment": (
        {"impots_sites": sites_with(alias="/./impots")},
        "impots_sites[0].alias",
        "/./",
    ),
    "non-ascii mysql password": (
        {"impots_mysql_password": "mot-de-passe-wö"},
        "impots_mysql_password",
        "ASCII",
    ),
    "csrf not a boolean": ({"impots_with_csrftoken": "yes"}, "impots_with_csrftoken", "'yes'"),
    "zero threads": ({"impots_daemon_threads": 0}, "impots_daemon_threads", "1 to 500"),
    "processes a bool": ({"impots_daemon_processes": True}, "impots_daemon_processes", "True"),
    "unknown os": ({"impots_os": "macos"}, "impots_os", "'macos'"),
    "unknown tls source": ({"impots_tls": {"source": "acme"}}, "impots_tls.source", "'acme'"),
    "tls files missing": (
        {"impots_tls": {"source": "files", "cert": "/nonexistent.pem", "key": "/nonexistent.key"}},
        "impots_tls.cert",
        "/nonexistent.pem",
    ),
    "bad database name": (
        {"impots_database": {"name": "db`; DROP"}},
        "impots_database.name",
        "database name",
    ),
    "bad database user": ({"impots_database": {"user": "adm-impots"}}, "impots_database.user", "user name"),
    "short mysql password": ({"impots_mysql_password": "short"}, "impots_mysql_password", "too short"),
    "missing smtp secret": (
        {"impots_admin_mail": {"user": "mailer", "tls": True}},
        "impots_smtp_password",
        "missing",
    ),
    "bad smtp port": ({"impots_admin_mail": {"smtp_port": 0}}, "impots_admin_mail.smtp_port", "port"),
    "bad mail address": ({"impots_admin_mail": {"to": "nobody"}}, "impots_admin_mail.to", "'nobody'"),
    "clear password instead of hash": (
        {"impots_users": [{"login": "admin", "password_hash": "admin"}]},
        "impots_users[0].password_hash",
        "pbkdf2",
    ),
    "relative install root": ({"impots_install_root": "opt/impots"}, "impots_install_root", "absolute"),
    "install root with a space": (
        {"impots_install_root": "/opt/my impots"},
        "impots_install_root",
        "absolute",
    ),
    "windows root not a windows path": (
        {"impots_os": "windows", "impots_install_root": "/opt/impots"},
        "impots_install_root",
        "Windows",
    ),
    "listen address not an address": (
        {"impots_listen_address": "localhost:80"},
        "impots_listen_address",
        "'localhost:80'",
    ),
    "hosts address star": ({"impots_hosts_address": "*"}, "impots_hosts_address", "IP address"),
    "unknown layout": ({"impots_windows_layout": "xampp"}, "impots_windows_layout", "'xampp'"),
    "typo in a key": ({"impots_prefix": "/do"}, "impots_prefix", "unknown key"),
    "vhost extra with a line break": (
        {"impots_vhost_extra": ["Header set A b\nOther"]},
        "impots_vhost_extra",
        "line break",
    ),
    "mod_wsgi version not offered": (
        {"impots_mod_wsgi_version": "5.0.1"},
        "impots_mod_wsgi_version",
        "'5.0.1' is not one of 6.1.1, 5.0.2",
    ),
    "trust ca not a boolean": ({"impots_windows_trust_ca": "yes"}, "impots_windows_trust_ca", "'yes'"),
    "apache accounts a string": (
        {"impots_windows_apache_accounts": "LAB\\student"},
        "impots_windows_apache_accounts",
        "list of Windows account names",
    ),
    "apache account with a semicolon": (
        {"impots_windows_apache_accounts": [".\\labuser", "LAB\\st;udent"]},
        "impots_windows_apache_accounts[1]",
        "'LAB\\\\st;udent' is not a Windows account name",
    ),
    "apache account with two domains": (
        {"impots_windows_apache_accounts": ["A\\B\\c"]},
        "impots_windows_apache_accounts[0]",
        "Windows account",
    ),
    "negative hsts max age": ({"impots_hsts_max_age": -1}, "impots_hsts_max_age", "integer >= 0"),
    "hsts max age a float": ({"impots_hsts_max_age": 1.5}, "impots_hsts_max_age", "1.5"),
    "request limit too small": (
        {"impots_max_request_bytes": 1023},
        "impots_max_request_bytes",
        "1023 is not an integer from 1024 to 10485760",
    ),
    "request limit too large": (
        {"impots_max_request_bytes": "10485761"},
        "impots_max_request_bytes",
        "from 1024 to 10485760",
    ),
    "windows database admin not an account": (
        {"impots_mysql_admin_user": "root; drop"},
        "impots_mysql_admin_user",
        "'root; drop' is not an account name",
    ),
    "site not a dict": ({"impots_sites": ["clock"]}, "impots_sites[0]", "name, kind, dbms, alias"),
    "tls with a typo": (
        {"impots_tls": {"source": "files", "crt": "/etc/hostname"}},
        "impots_tls.crt",
        "unknown key (expected source, cert, key, ca)",
    ),
}


@pytest.mark.parametrize("case", BAD_DATA, ids=list(BAD_DATA))
def test_bad_data_names_host_and_key(case: str) -> None:
    data, key, words = BAD_DATA[case]
    message = error_for(data)
    assert message.startswith(f"{HOST}: {key}: "), message
    assert words in message


def test_secret_from_environment_is_validated_without_echoing_it() -> None:
    message = error_for({}, {"IMPOTS_PGRES_PASSWORD": "abc"})
    assert message.startswith(f"{HOST}: impots_pgres_password: ")
    assert "IMPOTS_PGRES_PASSWORD" in message
    assert "'abc'" not in message


def test_windows_database_admins_from_data_then_environment() -> None:
    s = settings({"impots_os": "windows"})
    assert (s.mysql_admin_user, s.mysql_admin_password, s.pgres_admin_user, s.pgres_admin_password) == (
        "root", None, "postgres", None,
    )  # fmt: skip
    environ = {"IMPOTS_MYSQL_ADMIN_PASSWORD": "ignored", "IMPOTS_PGRES_ADMIN_PASSWORD": "root"}
    s = settings({"impots_pgres_admin_user": "pgadmin", "impots_mysql_admin_password": "from-data"}, environ)
    assert (s.mysql_admin_password, s.pgres_admin_user, s.pgres_admin_password) == (
        "from-data",
        "pgadmin",
        "root",
    )
    assert "from-data" not in repr(s)


def test_windows_admin_password_from_environment_is_checked_without_echoing_it() -> None:
    message = error_for({}, {"IMPOTS_PGRES_ADMIN_PASSWORD": "sec\nret"})
    assert message == (
        f"{HOST}: impots_pgres_admin_password: must be a string without line breaks or NUL "
        "(from environment variable IMPOTS_PGRES_ADMIN_PASSWORD)"
    )


def test_new_keys_defaults() -> None:
    s = settings()
    assert (s.mod_wsgi_version, s.hsts_max_age, s.max_request_bytes) == ("6.1.1", 31536000, 65536)
    assert (s.windows_trust_ca, s.windows_apache_accounts) == (True, ())


def test_new_keys_accept_their_values_and_cli_strings() -> None:
    s = settings(
        {
            "impots_mod_wsgi_version": "5.0.2",
            "impots_windows_trust_ca": "False",
            "impots_windows_apache_accounts": ["LAB\\student", ".\\labuser", "NT AUTHORITY\\NETWORK SERVICE"],
            "impots_hsts_max_age": "0",
            "impots_max_request_bytes": "1048576",
        }
    )
    assert (s.mod_wsgi_version, s.windows_trust_ca, s.hsts_max_age, s.max_request_bytes) == (
        "5.0.2", False, 0, 1048576,
    )  # fmt: skip
    assert s.windows_apache_accounts == ("LAB\\student", ".\\labuser", "NT AUTHORITY\\NETWORK SERVICE")


def test_settings_are_frozen() -> None:
    s = settings()
    with pytest.raises(ValueError):
        s.max_request_bytes = 1  # type: ignore[misc]


def test_other_hosts_keys_are_ignored() -> None:
    assert settings({"ssh_user": "root", "pyinfra_thing": 1}).os == "linux"


def make_certificate(folder: Path, names: list[str], name: str = "server") -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    san = ",".join(f"DNS:{n}" for n in names)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={names[0]}",
         "-addext", f"subjectAltName={san}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_files_accepted_when_they_cover_every_site(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, ["flask-impots-withmysql", "*.lab.example"])
    sites = [MYSQL_SITE, {"name": "clock.lab.example", "kind": "date-time", "alias": "/"}]
    s = settings(
        {"impots_sites": sites, "impots_tls": {"source": "files", "cert": str(cert), "key": str(key)}}
    )
    assert (s.tls.source, s.tls.cert, s.tls.key, s.tls.ca) == ("files", str(cert), str(key), None)


def test_tls_files_rejected_when_a_site_is_not_covered(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, ["other-name"])
    message = error_for(
        {"impots_sites": [MYSQL_SITE], "impots_tls": {"source": "files", "cert": str(cert), "key": str(key)}}
    )
    assert message.startswith(f"{HOST}: impots_tls: ") and "flask-impots-withmysql" in message


def test_tls_key_of_another_certificate_is_rejected(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path, ["flask-impots-withmysql"])
    _, other_key = make_certificate(tmp_path, ["flask-impots-withmysql"], name="other")
    message = error_for(
        {
            "impots_sites": [MYSQL_SITE],
            "impots_tls": {"source": "files", "cert": str(cert), "key": str(other_key)},
        }
    )
    assert message.startswith(f"{HOST}: impots_tls: ") and "does not match" in message


def test_tls_file_that_is_not_a_certificate(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate\n")
    message = error_for({"impots_tls": {"source": "files", "cert": str(cert), "key": str(cert)}})
    assert message.startswith(f"{HOST}: impots_tls: ") and "not a PEM certificate" in message


def test_urls_command_prints_the_default_sites() -> None:
    """`python -m provisioning.urls` (the README's deploy command ends with it), in its own process."""
    import sys

    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "provisioning.urls"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [
        "https://flask-impots-withmysql/impots/do",
        "https://flask-impots-withpgres/impots/do",
        "https://date-time-server/",
    ]
