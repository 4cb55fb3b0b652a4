"""The same deploy over SSH (our own sshd on 127.0.0.1) to the machine the session deploy converged."""

from __future__ import annotations

import pytest
from deploy_harness import (
    IMPOTS_ALIAS,
    IMPOTS_SITES,
    PREFIX_URL,
    apache_log_mark,
    apache_restarts_since,
    ca_file,
    https_session,
    run_deploy,
    vhost_files,
)

pytestmark = pytest.mark.deploy


def test_converged_machine_over_ssh_changes_nothing(deployed, ssh_inventory) -> None:
    run = run_deploy(ssh_inventory).check_ok()
    assert run.results["totals"]["error"] == 0
    assert run.results["totals"]["no_change"] > 0
    run.check_no_change("converged machine over SSH")
    # The CA comes back to the controller under the SSH host's name too, and it is the same CA.
    assert ca_file("127.0.0.1").read_bytes() == deployed.ca.read_bytes()


def test_data_change_is_applied_over_ssh(deployed, ssh_inventory, converge_back) -> None:
    log_mark = apache_log_mark()
    run = run_deploy(ssh_inventory, data={"impots_daemon_threads": 7}).check_ok()
    assert run.changed_operations(), f"the thread count change was not applied:\n{run.tail()}"
    assert run.results["totals"]["error"] == 0
    vhosts = vhost_files()
    assert vhosts and all("threads=7" in vhost.read_text() for vhost in vhosts), [str(v) for v in vhosts]

    # Apache took the new configuration and still serves the application.
    assert apache_restarts_since(log_mark), "Apache was not reloaded after its configuration changed"
    url = f"https://{IMPOTS_SITES[0]}{IMPOTS_ALIAS}{PREFIX_URL}/init-session/json"
    with https_session(deployed.ca) as session:
        response = session.get(url, timeout=30)
    assert response.status_code == 200, response.text[:300]

    again = run_deploy(ssh_inventory, data={"impots_daemon_threads": 7}).check_ok()
    again.check_no_change("the same data again over SSH")
