"""User-supplied TLS files (``impots_tls = {"source": "files", ...}``), checked with the controller's
openssl before anything runs."""

from __future__ import annotations

import re
import subprocess


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def check_certificate_files(cert: str, key: str, ca: str | None, site_names: list[str]) -> str | None:
    """Return what is wrong with user-supplied TLS files, or None (uses the controller's openssl)."""
    result = _openssl("x509", "-noout", "-in", cert, "-ext", "subjectAltName")
    if result.returncode != 0:
        return f"cert {cert} is not a PEM certificate: {result.stderr.strip().splitlines()[-1:]}"
    sans = set(re.findall(r"DNS:([^,\s]+)", result.stdout))
    uncovered = [name for name in site_names if not _covered(name, sans)]
    if uncovered:
        return f"cert {cert} has no subjectAltName for {', '.join(uncovered)}"
    cert_key = _openssl("x509", "-noout", "-pubkey", "-in", cert)
    # The key path is on the command line, never the key itself.
    private_key = _openssl("pkey", "-pubout", "-in", key, "-passin", "pass:")
    if private_key.returncode != 0:
        return f"key {key} is not an unencrypted PEM private key"
    if cert_key.stdout.strip() != private_key.stdout.strip():
        return f"key {key} does not match cert {cert}"
    if ca is not None:
        verify = _openssl("verify", "-CAfile", ca, cert)
        if verify.returncode != 0:
            return f"cert {cert} is not signed by ca {ca}"
    return None


def _covered(name: str, sans: set[str]) -> bool:
    if name in sans:
        return True
    head, _, parent = name.partition(".")
    return bool(parent) and f"*.{parent}" in sans
