"""The Apache configuration as a transaction: snapshot before the first change, restore the snapshot
when the new configuration is refused, (re)load and wait until Apache says it serves it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tarfile
import time
from typing import Callable

from .errors import ApacheError

# Lines of Apache's error log: it serves the new configuration / it died on it.
READY_MARKERS = ("AH00489", "resuming normal operations")
FATAL_MARKERS = ("no listening sockets available", "AH00015", "AH00019", "AH00016", "Unable to open logs")


def snapshot(config_root: str, snapshot: str) -> None:
    """Keep the configuration as it was before this run's first change (the last one that worked):
    an existing snapshot is kept, so later changes of the same run never overwrite it."""
    if os.path.exists(snapshot):
        return
    try:
        os.makedirs(os.path.dirname(snapshot), mode=0o700, exist_ok=True)
        partial = snapshot + ".part"
        with tarfile.open(partial, "w") as tar:
            tar.add(config_root, arcname=os.path.basename(config_root))
        os.replace(partial, snapshot)
    except OSError as error:
        raise ApacheError(f"cannot snapshot {config_root} into {snapshot}: {error}") from error


def restore(config_root: str, snapshot: str) -> str:
    """Put back the snapshot; the rejected configuration is kept next to it for diagnosis."""
    if not os.path.exists(snapshot):
        raise ApacheError(f"no snapshot {snapshot} to restore")
    rejected = os.path.join(os.path.dirname(snapshot), "apache-config-rejected")
    shutil.rmtree(rejected, ignore_errors=True)
    shutil.move(config_root, rejected)
    with tarfile.open(snapshot) as tar:
        # Our own tar of the configuration: links and modes must come back as they were.
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(os.path.dirname(config_root), filter="tar")
        else:  # Python < 3.9.17 has no extraction filters
            tar.extractall(os.path.dirname(config_root))
    os.unlink(snapshot)
    return f"restored {config_root}; the rejected configuration is in {rejected}"


def reload(
    config_root: str,
    snapshot: str,
    command: list[str],
    start: list[str],
    status: list[str],
    error_log: str,
    timeout: float = 20,
) -> str:
    """Run ``command`` (start or graceful reload) and wait until the error log says Apache serves the
    new configuration. A configuration can pass configtest and still kill Apache on reload (a Listen
    address it cannot bind): then the snapshot is restored, Apache is started again on it with
    ``start`` (once ``status`` says the dying one is gone) and ``ApacheError`` is raised."""
    shown = shlex.join(command)
    log_start = _size(error_log)
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise ApacheError(f"cannot run `{shown}`: {error}") from error
    news = ""
    deadline = time.monotonic() + timeout
    while result.returncode == 0 and time.monotonic() < deadline:
        news = read_from(error_log, log_start)
        if any(marker in news for marker in READY_MARKERS):
            return f"{shown}: Apache serves the new configuration"
        if any(marker in news for marker in FATAL_MARKERS):
            break
        time.sleep(0.1)
    details = [result.stdout + result.stderr + news[-3000:]]
    restored = os.path.exists(snapshot)
    if restored:
        details.append(restore(config_root, snapshot))
    # The dying parent must be gone first, or the init script sees it and does not start a new one.
    wait_until(lambda: not _succeeds(status), timeout)
    log_start = _size(error_log)
    subprocess.run(start, capture_output=True, text=True, check=False)
    back = wait_until(lambda: "AH00489" in read_from(error_log, log_start), timeout)
    configuration = "the previous configuration was restored and " if restored else ""
    outcome = "started again" if back else "could NOT be started"
    raise ApacheError(
        f"Apache did not come back after `{shown}`: {configuration}Apache {outcome}", "\n".join(details)
    )


def _succeeds(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def _size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def read_from(path: str, offset: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            return log.read()
    except OSError:
        return ""
