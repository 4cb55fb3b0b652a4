"""scripts/fleet: throw-away lab hosts to try the deploy on (README: "Try it on throw-away lab machines")."""

from __future__ import annotations

import argparse
import os
import sys

from fleetlab import fleet as fleets
from fleetlab.config import RELEASES, FleetError


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="scripts/fleet", description=__doc__)
    top.add_argument(
        "--name", default=os.environ.get("IMPOTS_FLEET", "lab"), help="fleet name (default: lab)"
    )
    commands = top.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="add N bare Debian hosts (bases are built once and cached)")
    up.add_argument("count", type=int)
    up.add_argument("--release", choices=RELEASES, default="bookworm")
    commands.add_parser("inventory", help="write the pyinfra inventory of the running hosts, print its path")
    run = commands.add_parser(
        "run", help="run a command where the hosts are reachable ($FLEET_INVENTORY set)"
    )
    run.add_argument("argv", nargs=argparse.REMAINDER)
    restart = commands.add_parser("restart", help="stop a host and start it again (only sshd runs after)")
    restart.add_argument("host")
    commands.add_parser("down", help="stop every host and the proxy, delete namespaces, layers and the route")
    return top


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if os.geteuid() != 0:
        print("fleet: needs root (namespaces, mounts, routes)", file=sys.stderr)
        return 2
    try:
        if args.command == "up":
            fleet = fleets.up(args.count, args.release, args.name)
            print(f"fleet: inventory {fleet.inventory_file}")
        elif args.command == "inventory":
            print(fleets.write_inventory(fleets.load(args.name)))
        elif args.command == "restart":
            fleets.restart(fleets.load(args.name), args.host)
        elif args.command == "down":
            fleets.down(args.name)
        elif args.command == "run":
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                raise FleetError("nothing to run: scripts/fleet run -- COMMAND ...")
            fleet = fleets.load(args.name)
            os.environ["FLEET_INVENTORY"] = str(fleets.write_inventory(fleet))
            argv = fleet.in_switch(command)
            os.execvp(argv[0], argv)
    except FleetError as error:
        print(f"fleet: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
