"""A fleet: its state file, `up`, `down`, `inventory`, `restart`; what scripts/fleet and tests/fleet call."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fleetlab import hosts, network
from fleetlab.base import debian_mirror, ensure_base
from fleetlab.config import MAX_HOSTS, NAME_PATTERN, PROXY_PORT, RELEASES, STATE_ROOT, FleetError, FleetLayout
from fleetlab.hosts import PACKAGE_PARENT, SYSTEM_PYTHON
from fleetlab.index_hosts import package_index_hosts


@dataclass
class Fleet:
    layout: FleetLayout
    proxy_pid: int | None = None
    hosts: dict[int, dict] = field(default_factory=dict)  # number -> {"release", "pid"}

    @property
    def state_file(self) -> Path:
        return self.layout.state_dir / "state.json"

    @property
    def client_key(self) -> Path:
        return self.layout.state_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.layout.state_dir / "known_hosts"

    @property
    def inventory_file(self) -> Path:
        return self.layout.state_dir / "inventory.py"

    def save(self) -> None:
        data = {
            "name": self.layout.name,
            "index": self.layout.index,
            "proxy_pid": self.proxy_pid,
            "hosts": self.hosts,
        }
        self.state_file.write_text(json.dumps(data, indent=1))

    def host_names(self) -> dict[str, int]:
        return {self.layout.host_name(number): number for number in self.hosts}

    def number_of(self, host_name: str) -> int:
        try:
            return self.host_names()[host_name]
        except KeyError:
            raise FleetError(f"no host {host_name!r} in fleet {self.layout.name!r}") from None

    def address(self, host_name: str) -> str:
        return self.layout.host_address(self.number_of(host_name))

    def in_switch(self, command: list[str]) -> list[str]:
        """A command line run where the hosts are reachable (the fleet's switch namespace), with the
        fleet's proxy as its only way out (``https_proxy``): the controller downloads what it ships to
        the hosts (the mod_wsgi sdist) through the same allow-list as the hosts."""
        proxy = f"http://{self.layout.switch_address}:{PROXY_PORT}"
        return ["ip", "netns", "exec", self.layout.switch_netns,
                "env", f"https_proxy={proxy}", f"HTTPS_PROXY={proxy}", *command]  # fmt: skip

    def ssh(self, host_name: str, remote: str, **kwargs) -> subprocess.CompletedProcess:
        command = ["ssh", "-i", str(self.client_key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                   "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                   f"root@{self.address(host_name)}", remote]  # fmt: skip
        return subprocess.run(self.in_switch(command), capture_output=True, text=True, **kwargs)


@contextmanager
def _machine_lock() -> Iterator[None]:
    STATE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(STATE_ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _fleets() -> dict[str, dict]:
    found = {}
    for state in (STATE_ROOT / "fleets").glob("*/state.json"):
        found[state.parent.name] = json.loads(state.read_text())
    return found


def load(name: str = "lab") -> Fleet:
    data = _fleets().get(name)
    if data is None:
        raise FleetError(f"no fleet {name!r} is up: start one with `scripts/fleet up N`")
    fleet = Fleet(FleetLayout(name, data["index"]), data["proxy_pid"])
    fleet.hosts = {int(number): info for number, info in data["hosts"].items()}
    return fleet


def _new_fleet(name: str) -> Fleet:
    if not NAME_PATTERN.match(name):
        raise FleetError(f"bad fleet name {name!r}: 1-8 lowercase letters or digits, starting with a letter")
    used = {data["index"] for data in _fleets().values()}
    index = next(i for i in range(1, 511) if i not in used)
    fleet = Fleet(FleetLayout(name, index))
    fleet.layout.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(fleet.layout.state_dir, 0o700)  # the controller's private key lives here
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"impots-fleet-{name}",
            "-f",
            str(fleet.client_key),
        ],
        check=True,
    )
    fleet.known_hosts.write_text("")
    fleet.save()
    return fleet


def up(count: int, release: str = "bookworm", name: str = "lab", log=print) -> Fleet:
    """Add `count` bare hosts of `release` to fleet `name` (made when absent); every host answers SSH."""
    if release not in RELEASES:
        raise FleetError(f"unknown release {release!r}: choose one of {', '.join(RELEASES)}")
    if not 1 <= count <= MAX_HOSTS:
        raise FleetError(f"host count must be between 1 and {MAX_HOSTS}, not {count}")
    for tool in ("ip", "unshare", "ssh-keygen", "debootstrap"):
        if not shutil.which(tool):
            raise FleetError(f"{tool} is not installed: run scripts/setup --for-tests")
    ensure_base(release, log=log)
    with _machine_lock():
        fleet = load(name) if name in _fleets() else _new_fleet(name)
        if len(fleet.hosts) + count > MAX_HOSTS:
            raise FleetError(f"fleet {name!r} would have more than {MAX_HOSTS} hosts")
        network.add_blackhole()
        network.create_switch(fleet.layout)
        _ensure_proxy(fleet)
        first = max(fleet.hosts, default=0) + 1
        numbers = list(range(first, first + count))
        for number in numbers:
            network.create_host_network(fleet.layout, number)
            key = hosts.make_layer(fleet.layout, number, release, fleet.client_key)
            with fleet.known_hosts.open("a") as known:
                known.write(f"{fleet.layout.host_address(number)} {key}\n")
            fleet.hosts[number] = {"release": release, "pid": hosts.start_host(fleet.layout, number, release)}
            fleet.save()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: hosts.wait_for_sshd(fleet.layout, n, fleet.hosts[n]["pid"]), numbers))
        write_inventory(fleet)
    for number in numbers:
        log(f"fleet: {fleet.layout.host_name(number)} ({release}) at {fleet.layout.host_address(number)}")
    return fleet


def _ensure_proxy(fleet: Fleet) -> None:
    if fleet.proxy_pid and _pid_is_proxy(fleet.proxy_pid, fleet.layout):
        return
    allowed = [_host_of(debian_mirror()), *package_index_hosts()]
    log = open(fleet.layout.state_dir / "proxy.log", "ab")
    process = subprocess.Popen(
        [SYSTEM_PYTHON, "-m", "fleetlab.proxy", f"/run/netns/{fleet.layout.switch_netns}",
         fleet.layout.switch_address, str(PROXY_PORT), *allowed],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd="/",
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(PACKAGE_PARENT)},
    )  # fmt: skip
    log.close()
    fleet.proxy_pid = process.pid
    fleet.save()
    deadline = time.monotonic() + 10
    while "listening" not in (fleet.layout.state_dir / "proxy.log").read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise FleetError(f"the fleet proxy did not start: see {fleet.layout.state_dir / 'proxy.log'}")
        time.sleep(0.05)


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


def _pid_is_proxy(pid: int, layout: FleetLayout) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"fleetlab.proxy" in command and f"/run/netns/{layout.switch_netns}".encode() in command


def restart(fleet: Fleet, host_name: str) -> None:
    """Stop a host and start it again on the same layer: only sshd runs afterwards, as after a reboot."""
    number = fleet.number_of(host_name)
    info = fleet.hosts[number]
    hosts.stop_host(info["pid"], host_name)
    info["pid"] = hosts.start_host(fleet.layout, number, info["release"])
    fleet.save()
    hosts.wait_for_sshd(fleet.layout, number, info["pid"])


def down(name: str = "lab", log=print) -> None:
    """Stop every process of the fleet by its pid, delete its namespaces and layers; last fleet: the route."""
    with _machine_lock():
        if name not in _fleets():
            log(f"fleet: no fleet {name!r} is up")
        else:
            fleet = load(name)
            for number, info in sorted(fleet.hosts.items()):
                hosts.stop_host(info["pid"], fleet.layout.host_name(number))
                network.delete_namespace(fleet.layout.host_netns(number))
            if fleet.proxy_pid and _pid_is_proxy(fleet.proxy_pid, fleet.layout):
                hosts.kill_and_reap(fleet.proxy_pid)
            network.delete_namespace(fleet.layout.switch_netns)
            # rm is several times faster than shutil.rmtree on ~1.4 GB of small files per deployed host;
            # --one-file-system: never into a mount, should one be left.
            subprocess.run(["rm", "-rf", "--one-file-system", str(fleet.layout.state_dir)], check=True)
            log(f"fleet: {name} is down ({len(fleet.hosts)} hosts)")
        if not _fleets():
            network.remove_blackhole()


def write_inventory(fleet: Fleet) -> Path:
    """A pyinfra inventory of the running hosts, one group per release."""
    common = {
        "ssh_user": "root",
        "ssh_key": str(fleet.client_key),
        "ssh_known_hosts_file": str(fleet.known_hosts),
        "ssh_strict_host_key_checking": "yes",
        # The sites answer on the host's own address too, so the controller can check them over HTTPS.
        "impots_listen_address": "*",
    }
    lines = [
        f'"""Hosts of lab fleet {fleet.layout.name!r}, written by scripts/fleet.',
        "",
        "Reachable only inside the fleet: scripts/fleet run -- .venv/bin/pyinfra <this file> deploy.py",
        '"""',
        "",
    ]
    for release in RELEASES:
        members = [
            (fleet.layout.host_name(number), {"ssh_hostname": fleet.layout.host_address(number), **common})
            for number, info in sorted(fleet.hosts.items())
            if info["release"] == release
        ]
        if members:
            lines.append(f"{release} = {members!r}")
    fleet.inventory_file.write_text("\n".join(lines) + "\n")
    return fleet.inventory_file
