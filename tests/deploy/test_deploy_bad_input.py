"""Bad input never breaks a working machine.

Bad host data stops the run before anything changes, with a message naming the host and the key.
A configuration Apache refuses (a bad raw directive in data, or a stray broken file on the target)
fails the configtest: the deploy says so, the vhost files on disk are the previous ones and Apache
keeps serving the previous configuration without a reload.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_harness import (
    DEFAULT_INVENTORY,
    IMPOTS_ALIAS,
    IMPOTS_SITES,
    LOCAL_HOST,
    PREFIX_URL,
    PyinfraRun,
    apache_log_mark,
    apache_restarts_since,
    diff_digests,
    https_session,
    plain,
    run_deploy,
    target_state_paths,
    tree_digest,
    vhost_files,
)

pytestmark = pytest.mark.deploy

DEFAULT_SITES = [
    {"name": "flask-impots-withmysql", "kind": "impots", "dbms": "mysql", "alias": "/impots"},
    {"name": "flask-impots-withpgres", "kind": "impots", "dbms": "pgres", "alias": "/impots"},
    {"name": "date-time-server", "kind": "date-time", "alias": "/"},
]


def sites_with(index: int, **changes: str) -> list[dict]:
    return [{**site, **changes} if i == index else site for i, site in enumerate(DEFAULT_SITES)]


# case -> (data key, bad value, the key the error message must name)
BAD_DATA = {
    "alias without a slash": ("impots_sites", sites_with(0, alias="impots"), "impots_sites[0].alias"),
    "site name with bad characters": (
        "impots_sites",
        sites_with(1, name="bad_name!"),
        "impots_sites[1].name",
    ),
    "zero daemon threads": ("impots_daemon_threads", 0, "impots_daemon_threads"),
    "prefix without a slash": ("impots_prefix_url", "do", "impots_prefix_url"),
    "listen address that is not an address": (
        "impots_listen_address",
        "localhost:80",
        "impots_listen_address",
    ),
}


@pytest.mark.parametrize("case", BAD_DATA, ids=list(BAD_DATA))
def test_bad_host_data_stops_before_any_change(deployed, case: str) -> None:
    key, value, named_key = BAD_DATA[case]
    before = tree_digest(target_state_paths())

    run = run_deploy(DEFAULT_INVENTORY, data={key: value})

    assert run.returncode != 0, f"bad {key}={value!r} was accepted:\n{run.tail()}"
    log = plain(run.stderr + run.stdout)
    assert f"{LOCAL_HOST}: {named_key}:" in log, f"no error naming the host and {named_key}:\n{run.tail()}"
    assert diff_digests(before, tree_digest(target_state_paths())) == []


def site_answers(ca: Path) -> int:
    url = f"https://{IMPOTS_SITES[0]}{IMPOTS_ALIAS}{PREFIX_URL}/init-session/json"
    with https_session(ca) as session:
        return session.get(url, timeout=30).status_code


def assert_rejected_and_still_serving(
    run: PyinfraRun, vhosts_before: dict[str, str], log_mark: int, complaint: str, ca: Path
) -> None:
    """The deploy failed on the configtest, put the vhost files back and never reloaded Apache."""
    assert run.returncode != 0, f"the deploy succeeded with a configuration Apache refuses:\n{run.tail()}"
    log = plain(run.stderr)
    assert "configtest failed" in log, f"the deploy does not say the configtest failed:\n{run.tail()}"
    assert complaint in log, f"the deploy does not show Apache's complaint about {complaint}:\n{run.tail()}"
    changed = diff_digests(vhosts_before, tree_digest(list(vhosts_before)))
    assert changed == [], f"the rejected vhost files were left in place: {changed}"
    restarts = apache_restarts_since(log_mark)
    assert not restarts, f"Apache was reloaded with a configuration that failed its test: {restarts}"
    assert site_answers(ca) == 200, "Apache stopped serving the previous configuration"


def test_bad_directive_in_data_fails_the_configtest(deployed, converge_back) -> None:
    """`impots_vhost_extra` (raw directives) is the one knob whose value Apache alone can judge."""
    vhosts = tree_digest(vhost_files())
    assert vhosts, "no Apache vhost with WSGIDaemonProcess found under /etc/apache2"
    log_mark = apache_log_mark()

    run = run_deploy(DEFAULT_INVENTORY, data={"impots_vhost_extra": ["ImpotsTestsNotADirective on"]})

    assert_rejected_and_still_serving(run, vhosts, log_mark, "ImpotsTestsNotADirective", deployed.ca)


@pytest.fixture
def broken_apache_conf(converge_back) -> Iterator[Path]:
    """A configuration file Apache refuses, as a stray local edit would leave it (removed afterwards)."""
    path = Path("/etc/apache2/conf-enabled/zz-impots-tests-broken.conf")
    path.write_text("# left by tests/deploy/test_deploy_bad_input.py\nImpotsTestsNotADirective on\n")
    yield path
    path.unlink(missing_ok=True)


def test_stray_broken_conf_fails_the_configtest_of_a_valid_change(deployed, broken_apache_conf) -> None:
    vhosts = tree_digest(vhost_files())
    assert vhosts, "no Apache vhost with WSGIDaemonProcess found under /etc/apache2"
    log_mark = apache_log_mark()

    # A valid change that rewrites every vhost, so the deploy must run the configtest.
    run = run_deploy(DEFAULT_INVENTORY, data={"impots_daemon_threads": 7})

    assert_rejected_and_still_serving(run, vhosts, log_mark, broken_apache_conf.name, deployed.ca)


def test_listen_address_not_on_the_target_keeps_apache_serving(deployed, converge_back) -> None:
    """192.0.2.10 (TEST-NET-1) is a valid address but not one of this machine's: Apache cannot bind it.

    configtest does not bind, so only the reload would find out; the deploy must not leave the
    sites down because of a typo in the listen address."""
    before = tree_digest(target_state_paths())

    run = run_deploy(DEFAULT_INVENTORY, data={"impots_listen_address": "192.0.2.10"})

    assert run.returncode != 0, f"the deploy accepted a listen address Apache cannot bind:\n{run.tail()}"
    log = plain(run.stderr)
    assert "impots_listen_address" in log and "192.0.2.10" in log, f"no error naming the key:\n{run.tail()}"
    assert site_answers(deployed.ca) == 200, "Apache stopped serving after the failed deploy"
    assert diff_digests(before, tree_digest(target_state_paths())) == [], "the failed deploy left changes"
