"""PID 1 of a lab host: mounts its filesystems, starts `sshd -D` in the chroot, reaps orphans.

Started by hosts.start_host as `unshare --mount --pid --uts --ipc --fork --kill-child python3 -m
fleetlab.init ...` inside the host's network namespace. Daemons the deploy starts (`service X start`)
are re-parented here; ending this process (by its pid) ends every process of the host.
Stdlib only; runs from this machine's Python, outside the chroot, so the base needs no Python.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def prepare(root: str, lower: str, upper: str, work: str, hostname: str) -> None:
    # The mount namespace is private (unshare's default): all of this vanishes with the host.
    mount("-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", root)
    mount("-t", "proc", "proc", f"{root}/proc")
    mount("-t", "sysfs", "-o", "ro", "sysfs", f"{root}/sys")
    mount("-t", "tmpfs", "-o", "mode=755,size=16m", "tmpfs", f"{root}/dev")
    for name, (major, minor) in DEVICES.items():
        os.mknod(f"{root}/dev/{name}", 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod(f"{root}/dev/{name}", 0o666)
    for directory in ("pts", "shm"):
        os.mkdir(f"{root}/dev/{directory}")
    mount("-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620", "devpts", f"{root}/dev/pts")
    os.symlink("pts/ptmx", f"{root}/dev/ptmx")
    mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", f"{root}/dev/shm")  # PostgreSQL's shared memory
    for link, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{root}/dev/{link}")
    mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", f"{root}/run")
    os.makedirs(f"{root}/run/sshd", mode=0o755)
    os.makedirs(f"{root}/run/lock", mode=0o1777)
    socket.sethostname(hostname)


def start_sshd(root: str) -> int:
    pid = os.fork()
    if pid == 0:
        os.chroot(root)
        os.chdir("/")
        os.setsid()
        os.execve(
            "/usr/sbin/sshd",
            ["/usr/sbin/sshd", "-D", "-e"],
            {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        )
    return pid


def main(argv: list[str]) -> None:
    root, lower, upper, work, hostname = argv
    prepare(root, lower, upper, work, hostname)

    def stop(signum, frame):
        os.kill(-1, signal.SIGKILL)  # every other process of this PID namespace
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the pause below for new orphans
    start_sshd(root)
    print(f"init: {hostname} up", file=sys.stderr, flush=True)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            signal.pause()  # sshd stopped and nothing else runs: the host stays up, unreachable


if __name__ == "__main__":
    main(sys.argv[1:])
