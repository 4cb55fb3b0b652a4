"""One lab host: its own layer over a base, its identity files, and its PID 1 (fleetlab.init)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from fleetlab.config import FleetError, FleetLayout, base_dir

PACKAGE_PARENT = Path(__file__).resolve().parent.parent  # so `python3 -m fleetlab.init` imports this copy
SYSTEM_PYTHON = "/usr/bin/python3"


def _mirror_parents(upper: Path, lower: Path, relative: str) -> None:
    # A folder made in the upper layer hides the base's mode and owner: copy them (/root must stay 0700).
    path = Path()
    for part in Path(relative).parts:
        path /= part
        made, original = upper / path, lower / path
        if not made.exists():
            made.mkdir()
            info = original.stat() if original.exists() else None
            if info:
                os.chown(made, info.st_uid, info.st_gid)
                os.chmod(made, info.st_mode & 0o7777)


def _put(upper: Path, lower: Path, relative: str, text: str, mode: int = 0o644) -> None:
    _mirror_parents(upper, lower, str(Path(relative).parent))
    target = upper / relative
    target.write_text(text)
    os.chmod(target, mode)


def make_layer(layout: FleetLayout, number: int, release: str, client_key: Path) -> str:
    """A fresh, empty layer with the host's identity; returns the host's public SSH host key line."""
    directory = layout.host_dir(number)
    shutil.rmtree(directory, ignore_errors=True)
    for name in ("upper", "work", "root"):
        (directory / name).mkdir(parents=True)
    upper, lower = directory / "upper", base_dir(release)
    name, address = layout.host_name(number), layout.host_address(number)
    _put(upper, lower, "etc/hostname", f"{name}\n")
    _put(
        upper, lower, "etc/hosts", f"127.0.0.1\tlocalhost\n{address}\t{name}\n::1\tlocalhost ip6-localhost\n"
    )
    proxy = layout.proxy_url
    _put(
        upper,
        lower,
        "etc/apt/apt.conf.d/90impots-fleet-proxy",
        f'Acquire::http::Proxy "{proxy}";\nAcquire::https::Proxy "{proxy}";\n',
    )
    _put(upper, lower, "etc/pip.conf", f"[global]\nproxy = {proxy}\n")
    _put(upper, lower, "root/.ssh/authorized_keys", Path(f"{client_key}.pub").read_text(), 0o600)
    os.chmod(upper / "root/.ssh", 0o700)
    _mirror_parents(upper, lower, "etc/ssh")
    key = upper / "etc/ssh/ssh_host_ed25519_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", str(key)], check=True
    )
    (directory / "release").write_text(release)
    return " ".join(Path(f"{key}.pub").read_text().split(" ")[0:2])


def start_host(layout: FleetLayout, number: int, release: str) -> int:
    """Start the host's PID 1 in its namespaces; returns the pid to stop it by (unshare's)."""
    directory = layout.host_dir(number)
    for leftover in ("work/work",):  # overlayfs refuses a work dir left from an unclean stop
        shutil.rmtree(directory / leftover, ignore_errors=True)
    console = open(directory / "console.log", "ab")
    process = subprocess.Popen(
        ["ip", "netns", "exec", layout.host_netns(number),
         "unshare", "--mount", "--pid", "--uts", "--ipc", "--fork", "--kill-child",
         SYSTEM_PYTHON, "-m", "fleetlab.init",
         str(directory / "root"), str(base_dir(release)), str(directory / "upper"), str(directory / "work"),
         layout.host_name(number)],
        stdin=subprocess.DEVNULL, stdout=console, stderr=console, start_new_session=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(PACKAGE_PARENT), "LANG": "C.UTF-8"},
        cwd="/",
    )  # fmt: skip
    console.close()
    return process.pid


def wait_for_sshd(layout: FleetLayout, number: int, pid: int, timeout: float = 30) -> None:
    probe = f"exec 3<>/dev/tcp/{layout.host_address(number)}/22"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _stopped(pid, layout.host_name(number)):
            log = (layout.host_dir(number) / "console.log").read_text(errors="replace")[-800:]
            raise FleetError(f"{layout.host_name(number)} stopped while starting:\n{log}")
        probe_run = subprocess.run(
            ["ip", "netns", "exec", layout.switch_netns, "bash", "-c", probe], capture_output=True
        )
        if probe_run.returncode == 0:
            return
        time.sleep(0.2)
    raise FleetError(f"{layout.host_name(number)}: sshd did not answer within {timeout:.0f} s")


def _stopped(pid: int, host_name: str) -> bool:
    """A host that is starting may show an empty command line for a moment (``ip netns exec`` and
    ``unshare`` exec in turn): only a process that is gone, a zombie, or another program has stopped."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        zombie = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
    return zombie or (command != b"" and not pid_is_host(pid, host_name))


def pid_is_host(pid: int, host_name: str) -> bool:
    """True when pid is still the unshare of that host (never signal a recycled pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"fleetlab.init" in command and host_name.encode() in command


def stop_host(pid: int, host_name: str, timeout: float = 10) -> None:
    """End a host by its pid: unshare's --kill-child takes its PID 1, and with it every process inside."""
    if not pid_is_host(pid, host_name):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_is_host(pid, host_name):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # only when this process started it (pytest fixture); else init reaps
    except ChildProcessError:
        pass


def kill_and_reap(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        _reap(pid)
        if not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/cmdline").read_bytes() == b"":
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _reap(pid)
