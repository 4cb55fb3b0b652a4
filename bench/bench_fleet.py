"""Benchmark of the deploy over lab fleets of bare hosts (scripts/fleet), as root: prints figures only.

    .venv/bin/python bench/bench_fleet.py [--sizes 1 2 4 8] [--release bookworm] [--keep-wheels]

For each size N: a fresh fleet of N bare hosts, one pyinfra run over all of them in parallel (first run:
apt, the mod_wsgi compile, databases, TLS, vhosts), then a no-change run; per host, the memory of all its
processes (PSS, so shared pages are split between hosts) and the disk of its layer. The fleet is taken
down after each size, and the controller's cache of mod_wsgi wheels is emptied before each size (unless
``--keep-wheels``), so each first run includes one compile, as on a new controller. Targets (issue "A lab
room, for real"): first run of 4 hosts <= 2x one host; no-change run of 8 hosts <= 1.5x one host.
This machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "fleet"), str(REPO)]

from fleet_harness import build_bases, run_pyinfra, running_fleet  # noqa: E402
from fleetlab.fleet import Fleet  # noqa: E402

from provisioning.wheels import WHEELS_DIR  # noqa: E402


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(child) for child in task.read_text().split()]
    return found


def host_memory_mib(pid: int) -> float:
    """PSS of a host's processes: its unshare, its PID 1 and all they started (daemons re-parent there)."""
    total_kib = 0
    for process in descendants(pid):
        try:
            for line in Path(f"/proc/{process}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def layer_mib(fleet: Fleet, number: int) -> float:
    du = subprocess.run(
        ["du", "-sxk", str(fleet.layout.host_dir(number) / "upper")], capture_output=True, text=True
    )
    return int(du.stdout.split()[0]) / 1024


def measure(size: int, release: str, keep_wheels: bool) -> dict:
    if not keep_wheels:  # each size starts from a controller that has built no mod_wsgi wheel yet
        shutil.rmtree(WHEELS_DIR, ignore_errors=True)
    with running_fleet(f"bench{size}", {release: size}) as fleet:
        first = run_pyinfra(fleet)
        if first.returncode != 0:
            print(first.tail(), file=sys.stderr)
        again = run_pyinfra(fleet)
        memory = [host_memory_mib(info["pid"]) for info in fleet.hosts.values()]
        disk = [layer_mib(fleet, number) for number in fleet.hosts]
    return {
        "size": size,
        "first": first.seconds,
        "first_ok": first.returncode == 0,
        "again": again.seconds,
        "again_changes": sum(len(op["success"]) for op in again.operations) if again.report else None,
        "memory": sum(memory) / len(memory),
        "disk": sum(disk) / len(disk),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--release", default="bookworm")
    parser.add_argument(
        "--keep-wheels", action="store_true", help="keep the controller's mod_wsgi wheels between sizes"
    )
    args = parser.parse_args()
    build_bases((args.release,))
    rows = []
    header = ("hosts", "first run", "ok", "no-change", "changes", "MiB/host", "disk MiB/host")
    print("{:>5} {:>10} {:>3} {:>10} {:>8} {:>9} {:>14}".format(*header))
    for size in args.sizes:
        row = measure(size, args.release, args.keep_wheels)
        rows.append(row)
        print(
            f"{row['size']:>5} {row['first']:>9.1f}s {'yes' if row['first_ok'] else 'NO':>3}"
            f" {row['again']:>9.1f}s {row['again_changes']!s:>8} {row['memory']:>9.0f} {row['disk']:>14.0f}",
            flush=True,
        )
    by_size = {row["size"]: row for row in rows}
    if 1 in by_size and 4 in by_size:
        ratio = by_size[4]["first"] / by_size[1]["first"]
        print(f"first run, 4 hosts / 1 host: {ratio:.2f}x (target <= 2x)")
    if 1 in by_size and 8 in by_size:
        ratio = by_size[8]["again"] / by_size[1]["again"]
        print(f"no-change run, 8 hosts / 1 host: {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
