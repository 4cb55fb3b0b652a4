"""Where a fleet keeps its files, and the addresses it uses (all inside 198.18.0.0/15)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

# Bases are cached across runs and checkouts (rebuilt only when absent); fleets live beside them.
CACHE_ROOT = Path(os.environ.get("IMPOTS_FLEET_CACHE", "/var/cache/impots-fleet"))
STATE_ROOT = Path(os.environ.get("IMPOTS_FLEET_STATE", "/var/lib/impots-fleet"))
# RFC 2544 benchmarking range: never routed on the Internet; a blackhole route keeps it on this machine.
FLEET_RANGE = ipaddress.ip_network("198.18.0.0/15")
RELEASES = ("bookworm", "trixie")
PROXY_PORT = 3128
FIRST_HOST_OCTET = 11
MAX_HOSTS = 200
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,7}$")


class FleetError(RuntimeError):
    """A fleet command cannot be done; the message says why."""


@dataclass(frozen=True)
class FleetLayout:
    """Names and addresses of one fleet (index = its /24 inside 198.18.0.0/15)."""

    name: str
    index: int

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / "fleets" / self.name

    @property
    def switch_netns(self) -> str:
        return f"impf-{self.name}-sw"

    @property
    def bridge(self) -> str:
        return f"impf{self.index}br"

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return (
            ipaddress.ip_network(f"198.18.{self.index}.0/24")
            if self.index < 256
            else (ipaddress.ip_network(f"198.19.{self.index - 256}.0/24"))
        )

    @property
    def switch_address(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def proxy_url(self) -> str:
        return f"http://{self.switch_address}:{PROXY_PORT}"

    def host_address(self, number: int) -> str:
        return str(self.subnet.network_address + FIRST_HOST_OCTET + number - 1)

    def host_name(self, number: int) -> str:
        return f"{self.name}-{number:02d}"

    def host_netns(self, number: int) -> str:
        return f"impf-{self.name}-{number:02d}"

    def veth(self, number: int) -> tuple[str, str]:
        """(switch side, host side) interface names; at most 15 characters each."""
        return f"impf{self.index}s{number}", f"impf{self.index}h{number}"

    def host_dir(self, number: int) -> Path:
        return self.state_dir / "hosts" / self.host_name(number)


def base_dir(release: str) -> Path:
    return CACHE_ROOT / "bases" / release
