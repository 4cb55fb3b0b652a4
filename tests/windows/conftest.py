"""Fixtures of the Windows tests: a real sshd on 127.0.0.1 whose ``powershell`` is fake_powershell.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FakeWindowsSshd:
    workdir: Path
    port: int
    process: subprocess.Popen

    @property
    def key(self) -> str:
        return str(self.workdir / "id_ed25519")

    @property
    def known_hosts(self) -> str:
        return str(self.workdir / "known_hosts")

    def answer(
        self, script: str, stdout: str = "", stderr: str = "", status: int = 0, encoding: str = "utf-8"
    ) -> None:
        """What the fake powershell prints for ``script`` (the full wrapped script it receives);
        ``encoding`` is the one stdout is written in."""
        path = self.workdir / "answers.json"
        answers = json.loads(path.read_text())
        answers[hashlib.sha256(script.encode("utf-8")).hexdigest()] = {
            "stdout": stdout,
            "stderr": stderr,
            "status": status,
            "encoding": encoding,
        }
        path.write_text(json.dumps(answers))

    def received(self) -> list[dict]:
        path = self.workdir / "received.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def host_data(self) -> dict:
        return {
            "ssh_port": self.port,
            "ssh_user": "root",
            "ssh_key": self.key,
            "ssh_known_hosts_file": self.known_hosts,
            "ssh_strict_host_key_checking": "yes",
        }


@pytest.fixture(scope="module")
def windows_sshd(tmp_path_factory) -> Iterator[FakeWindowsSshd]:
    """An sshd of our own (own config and keys in a temp dir), stopped by pid at the end."""
    if not Path("/usr/sbin/sshd").exists():
        pytest.fail("openssh-server is not installed (/usr/sbin/sshd): scripts/setup installs it")
    workdir = tmp_path_factory.mktemp("winsshd")
    workdir.chmod(0o700)
    host_key = workdir / "ssh_host_ed25519_key"
    for key in (host_key, workdir / "id_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    shutil.copyfile(workdir / "id_ed25519.pub", workdir / "authorized_keys")
    port = free_port()
    host_public = (workdir / "ssh_host_ed25519_key.pub").read_text().split()
    (workdir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n")
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    powershell = bin_dir / "powershell"
    powershell.write_text(f'#!/bin/sh\nexec {sys.executable} {HERE / "fake_powershell.py"} "$@"\n')
    powershell.chmod(0o755)
    (workdir / "answers.json").write_text("{}")
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"PidFile {workdir / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "MaxSessions 50\n"
        "Subsystem sftp internal-sftp\n"
        # The fake powershell first on PATH, and where it keeps its answers and log.
        f"SetEnv PATH={bin_dir}:/usr/bin:/bin FAKE_PS_DIR={workdir}\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = open(workdir / "sshd.log", "wb")  # noqa: SIM115 - open for the server's life
    process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"sshd exited: {(workdir / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("sshd did not listen within 10 s")
                time.sleep(0.05)
        yield FakeWindowsSshd(workdir, port, process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def drive_c() -> Iterator[Path]:
    """A folder reachable as ``C:/impots-winssh-test-<pid>`` through SFTP: Windows OpenSSH's ``/C:/...``
    is the folder ``/C:`` here. Removed afterwards (and ``/C:`` too when this fixture made it)."""
    root = Path("/C:")
    made_root = not root.exists()
    root.mkdir(exist_ok=True)
    folder = root / f"impots-winssh-test-{os.getpid()}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if made_root:
            try:
                root.rmdir()
            except OSError:  # another test run is using it: it removes it when done
                pass
