"""Harness for the end-to-end deploy tests and the deploy benchmark.

Runs the real deploy through pyinfra's command line and reads its outcome from pyinfra itself
(`--json`: per-operation success / no-change / error lists), starts a private sshd on 127.0.0.1 for
the SSH path, and gives the HTTPS, hashing and process-sampling helpers the tests share.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impots_client import https_session  # noqa: F401 (the tests import it from here)

REPO = Path(__file__).resolve().parents[2]
PYINFRA = REPO / ".venv" / "bin" / "pyinfra"
DEFAULT_INVENTORY = REPO / "inventory.py"
LOCAL_HOST = "@local"

# Sites of Contract 3 (default data), with the URL of the JSON entry point of each.
IMPOTS_SITES = ("flask-impots-withmysql", "flask-impots-withpgres")
DATE_TIME_SITE = "date-time-server"
IMPOTS_ALIAS = "/impots"
PREFIX_URL = "/do"

# Environment variables that would hand secrets to the deploy; the tests let the deploy generate them.
SECRET_ENV = ("IMPOTS_MYSQL_PASSWORD", "IMPOTS_PGRES_PASSWORD", "IMPOTS_SECRET_KEY", "IMPOTS_SMTP_PASSWORD")


def ca_file(host_name: str = LOCAL_HOST) -> Path:
    """The local CA the deploy copies back to the controller (README: `.artifacts/<host>/impots-ca.pem`)."""
    return REPO / ".artifacts" / host_name / "impots-ca.pem"


@dataclass
class PyinfraRun:
    """One pyinfra command line run: exit code, output, and the `--json` report when one was printed."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    report: dict[str, Any] | None = None

    @property
    def results(self) -> dict[str, Any]:
        if not self.report or not self.report.get("results"):
            raise AssertionError(f"pyinfra printed no results (exit {self.returncode}):\n{self.tail()}")
        return self.report["results"]

    def changed_operations(self) -> list[str]:
        """Names of the operations that changed something on at least one host."""
        return [op["name"] for op in self.results["operations"] if op["success"]]

    def failed_operations(self) -> list[str]:
        return [op["name"] for op in self.results["operations"] if op["error"]]

    def planned_changes(self) -> list[str]:
        """Operations a `--dry` run says would change something (for sure or conditionally)."""
        if not self.report:
            raise AssertionError(f"pyinfra printed no plan (exit {self.returncode}):\n{self.tail()}")
        return [
            op["name"]
            for op in self.report["plan"]
            if op["hosts_with_change"] or op["hosts_with_conditional_change"]
        ]

    def tail(self, lines: int = 60) -> str:
        """The end of pyinfra's log, for assertion messages."""
        return "\n".join(self.stderr.splitlines()[-lines:])

    def check_no_change(self, what: str) -> PyinfraRun:
        """Fail naming the operations that changed something, when any did."""
        changed = self.changed_operations()
        if changed:
            raise AssertionError(f"{what}: {len(changed)} operations changed: {changed}\n{self.tail()}")
        return self

    def check_ok(self) -> PyinfraRun:
        if self.returncode != 0:
            raise AssertionError(f"pyinfra {' '.join(self.args)} exited {self.returncode}:\n{self.tail()}")
        return self


def _kept_as_string_by_pyinfra(value: str) -> bool:
    """Mirror of `pyinfra_cli.util.parse_cli_arg` (not imported: pyinfra_cli monkey-patches ssl with
    gevent at import, which breaks `requests` in the test process)."""
    if value.lower() in ("true", "false"):
        return False
    for parse in (int, json.loads):
        try:
            parse(value)
        except ValueError:
            continue
        return False
    return True


def cli_data_value(value: Any) -> str:
    """Format a `--data key=value` value so that pyinfra's `parse_cli_arg` gives back `value`."""
    if isinstance(value, str) and _kept_as_string_by_pyinfra(value):
        return value
    return json.dumps(value)


def deploy_env() -> dict[str, str]:
    """The environment of a deploy run: ours without secret variables, and no colours in the log."""
    env = {key: value for key, value in os.environ.items() if key not in SECRET_ENV}
    env["PYINFRA_PROGRESS"] = "off"
    env["NO_COLOR"] = "1"
    return env


def pyinfra_deploy_command(
    inventory: Path | str = DEFAULT_INVENTORY,
    data: Mapping[str, Any] | None = None,
    dry: bool = False,
    diff: bool = False,
) -> list[str]:
    # `-y` also skips change detection: a dry run needs the detection (it never prompts anyway).
    args = [str(PYINFRA), "--dry", "--json"] if dry else [str(PYINFRA), "-y", "--json"]
    if diff:
        args.append("--diff")
    for key, value in (data or {}).items():
        args += ["--data", f"{key}={cli_data_value(value)}"]
    args += [str(inventory), "deploy.py"]
    return args


def run_deploy(
    inventory: Path | str = DEFAULT_INVENTORY,
    data: Mapping[str, Any] | None = None,
    dry: bool = False,
    diff: bool = False,
    timeout: float = 600,
    launcher: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> PyinfraRun:
    """Run `pyinfra -y --json INVENTORY deploy.py` (or `--dry`) from the repository and parse its report.

    `launcher` replaces the `pyinfra` executable (the benchmark counts commands through a wrapper);
    `cwd` runs another copy of the project (its deploy.py, app and .artifacts).
    """
    command = pyinfra_deploy_command(inventory, data, dry=dry, diff=diff)
    args = [*launcher, *command[1:]] if launcher else command
    started = time.monotonic()
    proc = subprocess.run(
        args,
        cwd=cwd or REPO,
        env={**deploy_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - started
    report = None
    # stdout holds only the JSON document in --json mode; anything else means pyinfra stopped before it.
    if proc.stdout.strip():
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            report = None
    return PyinfraRun(command[1:], proc.returncode, proc.stdout, proc.stderr, seconds, report)


# --- HTTPS clients --------------------------------------------------------------------------------------


# --- one deploy run on this machine at a time ------------------------------------------------------

# Everything that deploys to this machine (these tests, the benchmark, other suites that adopt it)
# holds this lock for its whole run: two concurrent deploys would see each other's half-done state.
DEPLOY_LOCK = Path("/run/lock/impots-deploy.lock")


@contextmanager
def deploy_lock(timeout: float = 900) -> Iterator[None]:
    """Hold the machine-wide deploy lock (flock), waiting up to `timeout` seconds for it."""
    DEPLOY_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with DEPLOY_LOCK.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{DEPLOY_LOCK} still held by another deploy after {timeout} s"
                    ) from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- the target's state -------------------------------------------------------------------------------


def tree_digest(paths: Iterable[Path | str], skip_dirs: Iterable[str] = ("logs",)) -> dict[str, str]:
    """sha256 of every regular file (and the target of every link) under `paths`, keyed by path.

    Folders named in `skip_dirs` are left out: the app writes its logs there on every request."""
    digests: dict[str, str] = {}
    for root in map(Path, paths):
        candidates = [root] if not root.is_dir() or root.is_symlink() else sorted(root.rglob("*"))
        for path in candidates:
            if set(path.relative_to(root).parts[:-1]) & set(skip_dirs):
                continue
            if path.is_symlink():
                digests[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def diff_digests(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    return sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))


APACHE_MAIN_LOG = Path("/var/log/apache2/error.log")


def apache_log_mark() -> int:
    """Where Apache's main error log ends now (see `apache_restarts_since`)."""
    return APACHE_MAIN_LOG.stat().st_size if APACHE_MAIN_LOG.exists() else 0


def apache_restarts_since(mark: int) -> list[str]:
    """Lines Apache logged on a start, restart or graceful reload (AH00489) after `mark`."""
    if not APACHE_MAIN_LOG.exists():
        return []
    with APACHE_MAIN_LOG.open("rb") as log:
        if APACHE_MAIN_LOG.stat().st_size >= mark:
            log.seek(mark)
        text = log.read().decode(errors="replace")
    return [line for line in text.splitlines() if "AH00489" in line]


# --- command lines seen during a run ------------------------------------------------------------------


# Runs in its own process: pytest's process may have gevent's monkey-patching (pyinfra_cli does
# `patch_all()` on import), where a sampling thread would be a greenlet starving everything else.
_SAMPLER = r"""
import json, os, sys, threading, time
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
seen, samples = set(), 0
while True:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                raw = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:  # the process ended meanwhile
                continue
            if raw:
                seen.add(raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace"))
    samples += 1
    if samples == 1:
        print("ready", flush=True)
    if stop.is_set():
        break
    time.sleep(0.001)
json.dump({"samples": samples, "seen": sorted(seen)}, sys.stdout)
"""


@dataclass
class CommandLineSampler:
    """Samples every process's command line (what `ps -eo args` shows, read from /proc directly:
    ~1 ms a sweep, so even short-lived commands are likely caught) while a deploy runs."""

    seen: set[str] = field(default_factory=set)
    samples: int = 0
    _process: subprocess.Popen | None = None

    def __enter__(self) -> CommandLineSampler:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SAMPLER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout and self._process.stdout.readline() == "ready\n", "sampler did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process:
            out, _ = self._process.communicate(input="", timeout=60)
            result = json.loads(out)
            self.samples, self.seen = result["samples"], set(result["seen"])

    def lines_containing(self, secret: str) -> list[str]:
        return sorted(line for line in self.seen if secret in line)


# --- a private sshd on 127.0.0.1 ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SshServer:
    """An sshd of our own: own config, host key and authorised key in `workdir`, run with `-D`."""

    workdir: Path
    port: int
    process: subprocess.Popen | None = None
    extra_config: str = ""  # more sshd_config lines (the Windows tests' fake powershell: SetEnv)

    @property
    def client_key(self) -> Path:
        return self.workdir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.workdir / "known_hosts"

    def start(self) -> SshServer:
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        host_key = self.workdir / "ssh_host_ed25519_key"
        for key in (host_key, self.client_key):
            if not key.exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                    check=True,
                    capture_output=True,
                )
        shutil.copyfile(f"{self.client_key}.pub", self.workdir / "authorized_keys")
        host_public = Path(f"{host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_public[0]} {host_public[1]}\n")
        config = self.workdir / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {host_key}\n"
            f"PidFile {self.workdir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            # The temp dir is not in a root-owned chain of folders sshd would accept.
            "StrictModes no\n"
            "MaxSessions 50\n"
            "Subsystem sftp internal-sftp\n" + self.extra_config
        )
        # sshd refuses to start without its privilege-separation folder (normally made by the init script).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        # sshd writes to its own copy of the descriptor: ours can be closed at once.
        with open(self.workdir / "sshd.log", "wb") as log:
            self.process = subprocess.Popen(
                ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_listening()
        return self

    def _wait_listening(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                log = (self.workdir / "sshd.log").read_text(errors="replace")
                raise RuntimeError(f"sshd exited {self.process.returncode}: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def host_data(self) -> dict[str, Any]:
        return {
            "ssh_port": self.port,
            "ssh_user": "root",
            "ssh_key": str(self.client_key),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
        }

    def write_inventory(self, path: Path) -> Path:
        """An inventory for `127.0.0.1` over this sshd; group data still comes from the repo's group_data/."""
        path.write_text(f"linux = [({'127.0.0.1'!r}, {self.host_data()!r})]\n")
        return path


# --- what the default data deploys --------------------------------------------------------------------


def default_settings(host_name: str = LOCAL_HOST):
    """The `Settings` the deploy validates for a host with the repository's group data only."""
    import runpy

    from provisioning.settings import parse_settings

    group_data = REPO / "group_data" / "all.py"
    data = runpy.run_path(str(group_data)) if group_data.exists() else {}
    impots_data = {key: value for key, value in data.items() if key.startswith("impots_")}
    return parse_settings(host_name, impots_data, environ={})


def default_paths():
    from provisioning.settings import app_paths

    return app_paths(default_settings())


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain(text: str) -> str:
    """pyinfra's log without colour codes."""
    return ANSI_ESCAPE.sub("", text)


def vhost_files() -> list[Path]:
    """The Apache configuration files that define a mod_wsgi daemon (the deploy's vhosts), on Debian."""
    candidates = sorted(Path("/etc/apache2").rglob("*.conf"))
    return [path for path in candidates if not path.is_symlink() and "WSGIDaemonProcess" in path.read_text()]


def target_state_paths() -> list[Path]:
    """What a deploy changes on this machine, for before/after digests."""
    return [Path("/etc/apache2"), Path("/etc/hosts"), Path(default_paths().install_root)]
