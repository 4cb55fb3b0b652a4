"""A converged machine: a second run changes nothing, and `--dry --diff` shows a change without making it."""

from __future__ import annotations

import subprocess

import pytest
from deploy_harness import (
    DEFAULT_INVENTORY,
    diff_digests,
    plain,
    run_deploy,
    target_state_paths,
    tree_digest,
    vhost_files,
)

from provisioning.linux.facts import VenvState

pytestmark = pytest.mark.deploy


def test_second_run_changes_nothing(deployed) -> None:
    run = run_deploy(DEFAULT_INVENTORY).check_ok()
    run.check_no_change("second run on a converged machine")
    assert run.results["totals"]["no_change"] > 0
    assert run.results["totals"]["error"] == 0


def test_dry_diff_shows_the_vhost_change_and_changes_nothing(deployed) -> None:
    vhosts = vhost_files()
    assert vhosts, "no Apache vhost with WSGIDaemonProcess found under /etc/apache2"
    before = tree_digest(target_state_paths())

    run = run_deploy(DEFAULT_INVENTORY, data={"impots_daemon_threads": 7}, dry=True, diff=True).check_ok()

    assert diff_digests(before, tree_digest(target_state_paths())) == [], "--dry changed files"
    log = plain(run.stderr)
    assert any(f"Will modify {vhost}" in log for vhost in vhosts), f"no vhost diff announced:\n{run.tail()}"
    added = [line.strip() for line in log.splitlines() if line.strip().startswith("+ ")]
    assert any("threads=7" in line for line in added), f"the diff does not add threads=7:\n{run.tail()}"
    removed = [line.strip() for line in log.splitlines() if line.strip().startswith("- ")]
    assert any("threads=15" in line for line in removed), f"no threads=15 removed:\n{run.tail()}"
    assert run.planned_changes(), "the --dry plan lists no change"
    assert run.report["results"] is None


def test_the_venv_fact_reads_what_mod_wsgi_express_prints(deployed) -> None:
    """VenvState reads mod_wsgi's version and module-config in one Python start: the same lines as the
    ``mod_wsgi-express module-config`` command the vhost's LoadModule comes from."""
    venv = "/opt/impots/venv"
    express = subprocess.run(
        [f"{venv}/bin/mod_wsgi-express", "module-config"], capture_output=True, text=True, check=True
    )
    output = subprocess.run(["sh", "-c", VenvState().command(venv)], capture_output=True, text=True).stdout
    state = VenvState().process(output.splitlines())
    pip_show = subprocess.run(
        [f"{venv}/bin/pip", "show", "mod-wsgi"], capture_output=True, text=True, check=True
    ).stdout
    assert state["python"] and f"Version: {state['mod_wsgi']}" in pip_show.splitlines()
    assert state["module_config"] == express.stdout.strip().splitlines()
    assert state["module_config"][0].startswith("LoadModule wsgi_module")
