"""A private redis-server for the app's tests: on 127.0.0.1 and a given port, no RDB or AOF file, its
configuration in a 0600 file (passwords stay off the command line), stopped by its pid at the end, also
when the test fails."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

START_SECONDS = 10


@contextmanager
def redis_process(folder: Path, port: int, settings: str, ping: Callable[[], object]) -> Iterator[int]:
    """Runs redis-server with ``settings`` (more configuration lines) in ``folder``; yields its pid once
    ``ping()`` (a PING as the test's client) answers."""
    config, log = folder / "redis.conf", folder / "redis.log"
    config.touch(mode=0o600)
    config.write_text(
        f'bind 127.0.0.1\nport {port}\ndir {folder}\nsave ""\nappendonly no\ndaemonize no\n'
        f"logfile {log}\n{settings}",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        ["redis-server", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text(errors="replace") if log.exists() else "(no log)"
                    pytest.fail(f"redis-server did not start on port {port}:\n{text}", pytrace=False)
                time.sleep(0.05)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
