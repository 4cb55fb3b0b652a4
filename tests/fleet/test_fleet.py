"""A lab room for real: one pyinfra run over 4 bare hosts (3 Debian 12, 1 Debian 13) in parallel.

The tests run in file order on one session fleet; each starts from the state the previous one left.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fleet_harness import FleetRun, run_pyinfra, site_checks
from fleetlab.fleet import Fleet, restart


@pytest.fixture(scope="module")
def first_run(fleet: Fleet) -> FleetRun:
    return run_pyinfra(fleet)


def names(fleet: Fleet) -> list[str]:
    return sorted(fleet.host_names())


def test_every_bare_host_converges_in_one_parallel_run(fleet: Fleet, first_run: FleetRun) -> None:
    assert first_run.returncode == 0, first_run.tail()
    for host in names(fleet):
        assert first_run.errors(host) == [], first_run.tail()
        assert "impots: Linux host | Packages (Apache, build tools, databases)" in first_run.changed(host)
    releases = {info["release"] for info in fleet.hosts.values()}
    assert releases == {"bookworm", "trixie"}
    summary = first_run.summary()
    assert summary[""] == ["impots: summary: 4 of 4 hosts serve their sites"]
    for host in names(fleet):
        assert summary[host] == [
            f"ok, smoke check passed; CA for clients: .artifacts/{host}/impots-ca.pem",
            "https://flask-impots-withmysql/impots/do",
            "https://flask-impots-withpgres/impots/do",
            "https://date-time-server/",
        ]


@pytest.mark.parametrize("index", range(4))
def test_every_site_answers_over_https_with_the_hosts_ca_and_the_json_flow_passes(
    fleet: Fleet, first_run: FleetRun, index: int
) -> None:
    host = names(fleet)[index]
    outcome = site_checks(fleet, host)
    assert len(outcome) == 5 and set(outcome.values()) == {"ok"}, f"{host}: {outcome}"


def test_a_foreign_ca_is_refused(fleet: Fleet, first_run: FleetRun, tmp_path: Path) -> None:
    # The controller's one local CA signs every host's certificate (provisioning/tls.py): the checks above
    # really verify against the fetched file, since a CA that did not sign it is refused.
    foreign = tmp_path / "foreign-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=foreign",
         "-keyout", str(tmp_path / "foreign.key"), "-out", str(foreign)],
        check=True, capture_output=True,
    )  # fmt: skip
    wrong = site_checks(fleet, names(fleet)[0], json_flow=False, ca_file=foreign)
    assert all("CERTIFICATE_VERIFY_FAILED" in value for value in wrong.values()), wrong


def test_hosts_reach_only_the_mirror_and_the_index(fleet: Fleet, first_run: FleetRun) -> None:
    proxy = fleet.layout.proxy_url.removeprefix("http://").replace(":", "/")
    probe = (
        # no route out: no default route, only the fleet's own subnet
        'awk \'$2 == "00000000" {print "default route"} END {print NR - 1, "routes"}\' /proc/net/route; '
        # the proxy: another host (CONNECT), and the mirror on another port, are refused
        f"exec 3<>/dev/tcp/{proxy}; printf 'CONNECT example.com:443 HTTP/1.1\\r\\n\\r\\n' >&3; head -1 <&3; "
        f"exec 4<>/dev/tcp/{proxy}; printf 'GET http://deb.debian.org:8080/ HTTP/1.1\\r\\n\\r\\n' >&4; "
        "head -1 <&4"
    )
    lines = fleet.ssh(names(fleet)[0], probe).stdout.splitlines()
    assert [line.strip() for line in lines] == [
        "1 routes",
        "HTTP/1.1 403 Forbidden",
        "HTTP/1.1 403 Forbidden",
    ]


def test_second_run_changes_nothing(fleet: Fleet, first_run: FleetRun) -> None:
    run = run_pyinfra(fleet)
    assert run.returncode == 0, run.tail()
    assert {host: run.changed(host) for host in names(fleet)} == {host: [] for host in names(fleet)}


def drift(fleet: Fleet, host: str) -> None:
    """Something a user could do by hand: the date-time site disabled."""
    done = fleet.ssh(host, "rm /etc/apache2/sites-enabled/date-time-server.conf")
    assert done.returncode == 0, done.stderr


def site_enabled(fleet: Fleet, host: str) -> bool:
    return fleet.ssh(host, "test -e /etc/apache2/sites-enabled/date-time-server.conf").returncode == 0


def test_limit_changes_only_that_host(fleet: Fleet, first_run: FleetRun) -> None:
    first, second = names(fleet)[:2]
    drift(fleet, first)
    drift(fleet, second)
    run = run_pyinfra(fleet, "--limit", first)
    assert run.returncode == 0, run.tail()
    assert run.changed(first), run.tail()
    assert run.hosts_with("success") | run.hosts_with("no_change") == {first}
    assert site_enabled(fleet, first)
    assert not site_enabled(fleet, second)  # left for the next test to converge


def test_an_unreachable_and_a_broken_host_do_not_spoil_the_others(fleet: Fleet, first_run: FleetRun) -> None:
    first, drifted, unreachable, broken = names(fleet)
    stop_sshd = fleet.ssh(unreachable, "kill $(cat /run/sshd.pid)")
    assert stop_sshd.returncode == 0, stop_sshd.stderr
    edit = fleet.ssh(broken, "echo 'ThisIsNotAnApacheDirective on' >> /etc/apache2/apache2.conf")
    assert edit.returncode == 0, edit.stderr
    try:
        run = run_pyinfra(fleet)
        assert run.returncode != 0, run.tail()
        log = run.stderr
        assert unreachable in run.report["results"]["failed_hosts"] or unreachable in log
        assert any(unreachable in line and "connect" in line.lower() for line in log.splitlines()), run.tail()
        assert run.errors(broken), run.tail()
        assert any(broken in line and "ThisIsNotAnApacheDirective" in line for line in log.splitlines()), (
            run.tail()
        )
        assert run.changed(drifted) and not run.errors(drifted), run.tail()
        assert site_enabled(fleet, drifted)
        assert run.changed(first) == [] and run.errors(first) == []
        assert set(site_checks(fleet, drifted, json_flow=False).values()) == {"ok"}
        summary = run.summary()
        assert summary[""] == ["impots: summary: 2 of 4 hosts serve their sites"]
        assert summary[unreachable][0] == "FAILED" and "connect" in " ".join(summary[unreachable]).lower()
        assert summary[broken][0] == "FAILED" and "ThisIsNotAnApacheDirective" in " ".join(summary[broken])
        assert summary[drifted][0].startswith("ok, smoke check passed")
    finally:
        fleet.ssh(broken, "sed -i '/ThisIsNotAnApacheDirective/d' /etc/apache2/apache2.conf")
        restart(fleet, unreachable)  # sshd back; everything else of that host is stopped, as after a reboot


def test_a_restarted_host_is_brought_back(fleet: Fleet, first_run: FleetRun) -> None:
    host = names(fleet)[2]
    restart(fleet, host)
    down = site_checks(fleet, host, json_flow=False)
    assert "ok" not in down.values(), down  # nothing but sshd runs after a restart
    run = run_pyinfra(fleet)
    assert run.returncode == 0, run.tail()
    assert "impots: Linux host | Database services running" in run.changed(host), run.tail()
    for name in names(fleet):
        assert set(site_checks(fleet, name).values()) == {"ok"}, name
