"""The smoke check: GET a site over HTTPS as a client would (certificate verified, redirects and cookies
followed) and find its expected text; on failure, the site's error log tells why."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

from .errors import SmokeCheckFailed

ATTEMPTS = 3  # after curl's own retries: a graceful reload may still be handing over
LOG_LINES = 20


def check(name: str, url: str, address: str, expect: str, error_log: str, cacert: str | None = None) -> str:
    """Pass when ``url`` answers 200 with ``expect`` in the page, ``name`` resolved to ``address``;
    ``cacert``: the CA (or certificate) to trust instead of the system's."""
    status, effective, error = "000", url, ""
    with tempfile.TemporaryDirectory(prefix="impots-smoke-") as work:
        body, jar = os.path.join(work, "body"), os.path.join(work, "cookies")
        command = ["curl", "-sS", "-L", "--max-redirs", "10", "--resolve", f"{name}:443:{address}",
                   "-c", jar, "-b", jar, "-o", body, "-w", "%{http_code} %{url_effective}",
                   "--retry", "5", "--retry-connrefused", "--retry-delay", "1",
                   "--max-time", "30"]  # fmt: skip
        if cacert:
            command += ["--cacert", cacert]
        for _ in range(ATTEMPTS):
            try:
                result = subprocess.run([*command, "--", url], capture_output=True, text=True, check=False)
            except OSError as run_error:
                raise SmokeCheckFailed(f"smoke check {url}: cannot run curl: {run_error}") from run_error
            status, _, effective = (result.stdout.strip() or "000 ").partition(" ")
            error = result.stderr.strip()
            if status == "200" and expect in _read(body):
                return f"smoke check {url}: 200, found {expect!r}"
            time.sleep(1)
    problem = f"HTTP {status} at {effective}" if status != "000" else f"no answer ({error})"
    if status == "200":
        problem = f"200 at {effective} but the page lacks {expect!r}"
    raise SmokeCheckFailed(f"smoke check {url} failed: {problem}", _log_tail(error_log))


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _log_tail(error_log: str) -> str:
    try:
        with open(error_log, encoding="utf-8", errors="replace") as log:
            tail = log.readlines()[-LOG_LINES:]
    except OSError as error:
        return f"(no error log: {error})"
    return f"--- last lines of {error_log} ---\n" + "".join(tail)
