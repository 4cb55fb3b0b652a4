"""Fact parsers (pure ``process``) and the choice of a platform record from them."""

from __future__ import annotations

import subprocess

import pytest

from provisioning.linux.facts import (
    ApacheState,
    MissingPackages,
    PathsState,
    SelinuxState,
    ServicesState,
    SiteUsers,
    TargetPlatform,
    VenvState,
)
from provisioning.linux.platforms import DEBIAN, RHEL, UnsupportedPlatform, choose_platform

DEBIAN_OS_RELEASE = ['PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', 'NAME="Debian GNU/Linux"', "ID=debian"]
UBUNTU_OS_RELEASE = ['PRETTY_NAME="Ubuntu 24.04 LTS"', "ID=ubuntu", "ID_LIKE=debian"]
ROCKY_OS_RELEASE = ['PRETTY_NAME="Rocky Linux 9.4"', 'ID="rocky"', 'ID_LIKE="rhel centos fedora"']
ALPINE_OS_RELEASE = ['PRETTY_NAME="Alpine Linux v3.20"', "ID=alpine"]


def target(lines: list[str], init: str = "sysvinit") -> dict:
    return TargetPlatform().process([*lines, f"IMPOTS_INIT={init}"])


@pytest.mark.parametrize(
    ("lines", "record"),
    [
        (DEBIAN_OS_RELEASE, DEBIAN),
        (UBUNTU_OS_RELEASE, DEBIAN),
        (ROCKY_OS_RELEASE, RHEL),
        (["ID=fedora"], RHEL),
    ],
)
def test_platform_from_os_release(lines: list[str], record) -> None:
    assert choose_platform(target(lines)) is record


def test_unsupported_platform_names_what_was_found() -> None:
    with pytest.raises(UnsupportedPlatform, match="'Alpine Linux v3.20'"):
        choose_platform(target(ALPINE_OS_RELEASE))
    with pytest.raises(UnsupportedPlatform, match="no /etc/os-release"):
        choose_platform(target([]))


def test_platform_records_differ_where_the_platforms_do() -> None:
    assert (DEBIAN.apache_service, DEBIAN.apache_user, DEBIAN.apxs) == (
        "apache2",
        "www-data",
        "/usr/bin/apxs",
    )
    assert (RHEL.apache_service, RHEL.apache_user, RHEL.site_dir) == ("httpd", "apache", "/etc/httpd/conf.d")
    assert {"httpd-devel", "gcc"} <= set(RHEL.mod_wsgi_build_packages) and "mod_ssl" in RHEL.packages
    assert {"apache2-dev", "gcc", "python3-dev"} <= set(DEBIAN.mod_wsgi_build_packages)
    assert "python3-venv" in DEBIAN.all_packages
    # Only the host that compiles mod_wsgi installs a compiler and headers.
    for record in (DEBIAN, RHEL):
        assert not set(record.all_packages) & set(record.mod_wsgi_build_packages)
    assert not any("mod-wsgi" in p or "mod_wsgi" in p for p in DEBIAN.packages + RHEL.packages)


def test_target_platform_init_and_bind_error() -> None:
    fact = target(DEBIAN_OS_RELEASE, init="systemd")
    assert fact["init"] == "systemd" and fact["bind_error"] is None
    assert fact["release_meta"]["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    failed = TargetPlatform().process(
        ["ID=debian", "IMPOTS_INIT=sysvinit", "IMPOTS_BIND_ERROR=Cannot assign"]
    )
    assert failed["bind_error"] == "Cannot assign" and "IMPOTS_BIND_ERROR" not in failed["release_meta"]


def test_target_platform_command_checks_the_listen_address_only_when_one_is_set() -> None:
    assert "socket" in TargetPlatform().command(bind_address="10.0.0.5")
    assert "socket" not in TargetPlatform().command(bind_address="*")
    assert "socket" not in TargetPlatform().command()


def test_paths_state() -> None:
    output = [
        "stat\t/opt/impots\tdirectory\troot\troot\t755",
        "stat\t/opt/impots/instance/impots.json\tregular file\troot\twww-data\t640",
        "ab12  /opt/impots/instance/impots.json",
    ]
    assert PathsState().process(output) == {
        "/opt/impots": {"type": "directory", "user": "root", "group": "root", "mode": "755"},
        "/opt/impots/instance/impots.json": {
            "type": "regular file",
            "user": "root",
            "group": "www-data",
            "mode": "640",
            "sha256": "ab12",
        },
    }


def test_services_and_apache_state() -> None:
    services = ServicesState().process(
        ["mariadb.running=1", "mariadb.enabled=0", "redis-server.running=0", "redis-server.enabled=0"]
    )
    assert services == {
        "mariadb": {"running": True, "enabled": False},
        "redis-server": {"running": False, "enabled": False},
    }
    apache = ApacheState().process(
        ["apache.running=1", "apache.enabled=1", "changed=/etc/apache2/ports.conf"]
    )
    assert apache == {"running": True, "enabled": True, "changed": ["/etc/apache2/ports.conf"]}
    assert ApacheState().process(["apache.running=1", "apache.enabled=1"])["changed"] == []


def test_venv_state() -> None:
    state = VenvState().process(
        ["python=1", "requirements=abc", "mod_wsgi=6.1.1", 'module_config=LoadModule wsgi_module "/v/x.so"']
    )
    assert state == {
        "python": True,
        "requirements": "abc",
        "mod_wsgi": "6.1.1",
        "module_config": ['LoadModule wsgi_module "/v/x.so"'],
    }


def test_target_platform_selinux_mode() -> None:
    assert target(ROCKY_OS_RELEASE)["selinux"] == "disabled"
    enforcing = TargetPlatform().process([*ROCKY_OS_RELEASE, "IMPOTS_INIT=systemd", "IMPOTS_SELINUX=1"])
    permissive = TargetPlatform().process([*ROCKY_OS_RELEASE, "IMPOTS_INIT=systemd", "IMPOTS_SELINUX=0"])
    assert (enforcing["selinux"], permissive["selinux"]) == ("enforcing", "permissive")
    assert "IMPOTS_SELINUX" not in enforcing["release_meta"]
    assert "/sys/fs/selinux/enforce" in TargetPlatform().command()


def test_selinux_state() -> None:
    output = [
        "boolean=httpd_can_network_connect_db --> on",
        "boolean=httpd_can_network_connect --> off",
        "rule=SELinux fcontext                                   type               Context",
        "rule=",
        "rule=/opt/impots(/.*)?                                  all files          "
        "system_u:object_r:httpd_sys_content_t:s0",
        "rule=/opt/impots/instance/logs(/.*)?                    all files          "
        "system_u:object_r:httpd_sys_rw_content_t:s0",
        "rule=/srv/old(/.*)?                                     all files          <<None>>",
        "relabel=Would relabel /opt/impots/app from system_u:object_r:usr_t:s0 to "
        "system_u:object_r:httpd_sys_content_t:s0",
    ]
    state = SelinuxState().process(output)
    assert state["booleans"] == {"httpd_can_network_connect_db": "on", "httpd_can_network_connect": "off"}
    assert state["rules"] == {
        "/opt/impots(/.*)?": "httpd_sys_content_t",
        "/opt/impots/instance/logs(/.*)?": "httpd_sys_rw_content_t",
    }
    assert len(state["relabel"]) == 1 and "/opt/impots/app" in state["relabel"][0]
    assert SelinuxState().process([]) == SelinuxState.default()


def test_target_platform_reports_the_user_id_operations_run_as() -> None:
    assert "id -u" in TargetPlatform().command()
    assert target([*DEBIAN_OS_RELEASE, "IMPOTS_UID=0"])["uid"] == 0
    fact = target([*DEBIAN_OS_RELEASE, "IMPOTS_UID=1000"])
    assert fact["uid"] == 1000 and "IMPOTS_UID" not in fact["release_meta"]
    assert target(DEBIAN_OS_RELEASE)["uid"] is None


def test_missing_packages_with_the_real_dpkg() -> None:
    """One dpkg-query for all packages: an installed one is not listed, an unknown or removed one is."""
    query = ["dpkg-query", "-W", "-f=${Package}\n", "dpkg", "coreutils"]
    installed = subprocess.run(query, capture_output=True, text=True, check=True).stdout.split()
    assert sorted(installed) == ["coreutils", "dpkg"]  # the premise: both are installed here (Debian)
    wanted = ["dpkg", "impots-no-such-package", "coreutils", "impots-other-missing"]
    command = MissingPackages().command("apt", wanted)
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    missing = MissingPackages().process(output.splitlines())
    assert missing == ["impots-no-such-package", "impots-other-missing"]
    assert command.count("dpkg-query") == 1


def test_site_users_with_the_real_accounts() -> None:
    """Only the named accounts are looked at: their primary group, and whether a group of the name exists."""
    command = SiteUsers().command(["root", "impots-no-such-user", "www-data"])
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    state = SiteUsers().process(output.splitlines())
    assert state == {"users": {"root": "root", "www-data": "www-data"}, "groups": ["root", "www-data"]}
