"""A local CA and server certificate made on the controller, for Windows hosts without one of their own.

Laragon ships its own certificate (``etc/ssl/laragon.crt``); an Apache Lounge host with the default
``impots_tls = {"source": "local-ca"}`` gets one made here with the controller's ``openssl``, kept in
``.artifacts/<host>/windows-tls/`` and re-used by every run (so uploads are idempotent). The CA's key
never leaves the controller; clients trust ``.artifacts/<host>/impots-ca.pem``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioning.artifact import ARTIFACTS_DIR

CA_DAYS = 3650
# Browsers refuse server certificates valid for more than 398 days.
SERVER_DAYS = 397


class CertificateError(RuntimeError):
    """openssl failed on the controller (message: its stderr)."""


@dataclass(frozen=True)
class ControllerCertificate:
    cert: str
    key: str
    ca: str


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CertificateError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _sans(cert: Path) -> list[str]:
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-in", str(cert), "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=False,
    )
    return sorted(re.findall(r"DNS:([^,\s]+)", result.stdout))


def controller_certificate(
    host_name: str, names: list[str], artifacts: Path | None = None
) -> ControllerCertificate:
    """The CA and a server certificate for exactly ``names`` (made once, re-made when names change)."""
    safe_host = re.sub(r"[^A-Za-z0-9._@-]", "_", host_name)
    folder = (artifacts or ARTIFACTS_DIR) / safe_host / "windows-tls"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca_key, ca_pem = folder / "ca.key", folder / "ca.pem"
    key, cert = folder / "server.key", folder / "server.pem"
    wanted = sorted(set(names))
    if not (ca_key.exists() and ca_pem.exists()):
        _openssl(
            "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-nodes", "-days", str(CA_DAYS),
            "-subj", f"/O=impots-provisioning/CN=impots local CA for {safe_host}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", "ca.key", "-out", "ca.pem",
            cwd=folder,
        )  # fmt: skip
        cert.unlink(missing_ok=True)
    if not (key.exists() and cert.exists()) or _sans(cert) != wanted:
        extensions = folder / "server.ext"
        extensions.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=" + ",".join(f"DNS:{n}" for n in wanted) + "\n"
        )
        _openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={wanted[0]}",
            "-keyout", "server.key", "-out", "server.csr",
            cwd=folder,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", str(SERVER_DAYS), "-sha256", "-extfile", "server.ext", "-out", "server.pem",
            cwd=folder,
        )  # fmt: skip
    for private in (ca_key, key):
        os.chmod(private, 0o600)
    shutil.copyfile(ca_pem, folder.parent / "impots-ca.pem")
    return ControllerCertificate(cert=str(cert), key=str(key), ca=str(ca_pem))
