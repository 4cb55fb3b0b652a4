"""Benchmark of the Linux deploy on this machine (as root): prints figures, asserts nothing.

    .venv/bin/python bench/bench_deploy.py [--repeat N] [--skip-clean]

Measures, through pyinfra's command line:
- the re-converge after removing the app install and every Apache file that refers to it (vhosts, the
  mod_wsgi module files): the closest to a from-scratch deploy this shared machine allows, since the
  packages and the database servers are shared with the other tests;
- the no-change re-run via @local and via SSH (a private sshd on 127.0.0.1), and `--dry`;
- the number of remote commands of a no-change run, counted by wrapping pyinfra's connectors.
Targets (issue "Provision Linux lab machines"): no-change <= 2 s @local, <= 3 s over SSH.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deploy"))

from deploy_harness import (  # noqa: E402 - the harness lives with the deploy tests
    DEFAULT_INVENTORY,
    REPO,
    PyinfraRun,
    SshServer,
    default_paths,
    deploy_lock,
    free_port,
    run_deploy,
)

TARGETS = {"@local": 2.0, "ssh": 3.0}

# Runs pyinfra's CLI with every connector call counted; the counts go to $BENCH_COUNTS at exit.
COUNTING_LAUNCHER = """
import atexit, json, os, sys
from pyinfra.connectors.local import LocalConnector
from pyinfra.connectors.ssh import SSHConnector
counts = {"commands": 0, "uploads": 0, "downloads": 0}
def counted(cls, name, key):
    original = getattr(cls, name)
    def wrapper(self, *args, **kwargs):
        counts[key] += 1
        return original(self, *args, **kwargs)
    setattr(cls, name, wrapper)
for cls in (LocalConnector, SSHConnector):
    counted(cls, "run_shell_command", "commands")
    counted(cls, "put_file", "uploads")
    counted(cls, "get_file", "downloads")
atexit.register(lambda: open(os.environ["BENCH_COUNTS"], "w").write(json.dumps(counts)))
sys.argv = ["pyinfra", *sys.argv[1:]]
from pyinfra_cli.main import main
sys.exit(main())
"""


def checked(run: PyinfraRun, what: str) -> PyinfraRun:
    if run.returncode != 0:
        raise SystemExit(f"{what}: pyinfra exited {run.returncode}\n{run.tail()}")
    return run


def remove_app_install() -> list[str]:
    """Delete the install root and every Apache file that mentions it (and the links enabling them)."""
    install_root = default_paths().install_root
    apache = Path("/etc/apache2")
    files = [
        path
        for path in apache.rglob("*")
        if path.is_file() and not path.is_symlink() and install_root in path.read_text(errors="replace")
    ]
    links = [path for path in apache.rglob("*") if path.is_symlink() and path.resolve() in files]
    for path in [*links, *files]:
        path.unlink()
    shutil.rmtree(install_root, ignore_errors=True)
    return [install_root, *map(str, files), *map(str, links)]


def timed_runs(inventory: Path, repeat: int, label: str, dry: bool = False) -> list[float]:
    seconds = []
    for _ in range(repeat):
        run = checked(run_deploy(inventory, dry=dry), label)
        changed = run.planned_changes() if dry else run.changed_operations()
        if changed:
            print(f"  warning: {label} changed/planned {len(changed)} operations: {changed[:5]}")
        seconds.append(run.seconds)
    return seconds


def summary(seconds: list[float]) -> str:
    runs = ", ".join(f"{s:.2f}" for s in seconds)
    return f"min {min(seconds):.2f} s, median {statistics.median(seconds):.2f} s  (runs: {runs})"


def counted_no_change_run(inventory: Path, workdir: Path) -> dict[str, int]:
    counts_file = workdir / "counts.json"
    launcher = [str(REPO / ".venv" / "bin" / "python"), "-c", COUNTING_LAUNCHER]
    run = run_deploy(inventory, launcher=launcher, env={"BENCH_COUNTS": str(counts_file)})
    checked(run, "counted run")
    counts = json.loads(counts_file.read_text())
    counts["changed operations"] = len(run.changed_operations())
    counts["operations"] = len(run.results["operations"])
    return counts


def measure_clean_reconverge() -> None:
    removed = remove_app_install()
    # What `--dry` says on a machine without the app: the README's first command on a new host.
    dry = run_deploy(DEFAULT_INVENTORY, dry=True)
    if dry.returncode == 0:
        planned = len(dry.planned_changes())
        print(f"--dry without the app install:  {dry.seconds:6.2f} s, {planned} ops planned")
    else:
        print(f"--dry without the app install:  FAILED (exit {dry.returncode}):\n{dry.tail(8)}")
    run = checked(run_deploy(DEFAULT_INVENTORY), "re-converge")
    changed, total = len(run.changed_operations()), len(run.results["operations"])
    print(
        f"re-converge after removing the app install and {len(removed) - 1} Apache files and links: "
        f"{run.seconds:6.2f} s, {changed} of {total} ops changed"
    )


def run_benchmark(options: argparse.Namespace, ssh: SshServer, workdir: Path) -> None:
    ssh_inventory = ssh.write_inventory(workdir / "inventory_ssh.py")
    print("deploy benchmark: pyinfra CLI, inventory.py (@local) and 127.0.0.1 over SSH")

    first = checked(run_deploy(DEFAULT_INVENTORY), "initial converge")
    changed = len(first.changed_operations())
    print(f"initial converge:           {first.seconds:6.2f} s, {changed} ops changed")

    if not options.skip_clean:
        measure_clean_reconverge()

    local = timed_runs(DEFAULT_INVENTORY, options.repeat, "no-change @local")
    print(f"no-change run @local:       {summary(local)}")
    over_ssh = timed_runs(ssh_inventory, options.repeat, "no-change ssh")
    print(f"no-change run over SSH:     {summary(over_ssh)}")
    dry = timed_runs(DEFAULT_INVENTORY, options.repeat, "--dry @local", dry=True)
    print(f"--dry run @local:           {summary(dry)}")

    for label, inventory in (("@local", DEFAULT_INVENTORY), ("ssh", ssh_inventory)):
        counts = counted_no_change_run(inventory, workdir)
        print(
            f"remote commands, no-change run {label:6}: {counts['commands']} shell commands, "
            f"{counts['uploads']} uploads, {counts['downloads']} downloads "
            f"({counts['operations']} operations, {counts['changed operations']} changed)"
        )

    for label, seconds in (("@local", local), ("ssh", over_ssh)):
        median = statistics.median(seconds)
        verdict = "met" if median <= TARGETS[label] else "MISSED"
        print(f"target no-change {label} <= {TARGETS[label]:.0f} s: {verdict} (median {median:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per no-change measurement")
    parser.add_argument("--skip-clean", action="store_true", help="do not remove the app install")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    ssh = SshServer(workdir / "sshd", free_port()).start()
    try:
        with deploy_lock():
            run_benchmark(options, ssh, workdir)
    finally:
        ssh.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
