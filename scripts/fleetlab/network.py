"""The fleet's network: a switch namespace with a bridge, one namespace per host, a blackhole route here."""

from __future__ import annotations

import subprocess

from fleetlab.config import FLEET_RANGE, FleetLayout


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def namespaces() -> set[str]:
    return {line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()}


def blackhole_present() -> bool:
    return str(FLEET_RANGE) in ip("route", "show", "type", "blackhole").stdout


def add_blackhole() -> None:
    # A command aimed at a fleet address from this machine's own namespace must die here, not leave by eth0.
    if not blackhole_present():
        ip("route", "add", "blackhole", str(FLEET_RANGE))


def remove_blackhole() -> None:
    if blackhole_present():
        ip("route", "del", "blackhole", str(FLEET_RANGE))


def create_switch(layout: FleetLayout) -> None:
    if layout.switch_netns in namespaces():
        return
    sw = layout.switch_netns
    ip("netns", "add", sw)
    ip("-n", sw, "link", "set", "lo", "up")
    ip("-n", sw, "link", "add", layout.bridge, "type", "bridge")
    ip("-n", sw, "addr", "add", f"{layout.switch_address}/24", "dev", layout.bridge)
    ip("-n", sw, "link", "set", layout.bridge, "up")


def create_host_network(layout: FleetLayout, number: int) -> None:
    netns, (switch_end, host_end) = layout.host_netns(number), layout.veth(number)
    if netns in namespaces():
        delete_namespace(netns)
    ip("netns", "add", netns)
    # Both ends are created straight into their namespaces: nothing of the fleet ever sits in ours.
    ip(
        "-n",
        layout.switch_netns,
        "link",
        "add",
        switch_end,
        "type",
        "veth",
        "peer",
        "name",
        host_end,
        "netns",
        netns,
    )
    ip("-n", layout.switch_netns, "link", "set", switch_end, "master", layout.bridge, "up")
    ip("-n", netns, "link", "set", "lo", "up")
    ip("-n", netns, "addr", "add", f"{layout.host_address(number)}/24", "dev", host_end)
    ip("-n", netns, "link", "set", host_end, "up")


def delete_namespace(netns: str) -> None:
    if netns in namespaces():
        ip("netns", "delete", netns)  # its veth end goes with it, and the peer in the switch too
