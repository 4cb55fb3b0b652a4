"""A local CA and server certificate made on the controller, for Windows hosts (both layouts).

With the default ``impots_tls = {"source": "local-ca"}`` a Windows host gets a certificate naming its
sites, made here with the controller's ``openssl``, kept in ``.artifacts/<host>/windows-tls/`` and re-used
by every run (so uploads are idempotent). Laragon's own ``etc/ssl/laragon.crt`` is not used: it names
Laragon's sites, not ours. The CA's key never leaves the controller; the CA itself is trusted on the
Windows host (LocalMachine Root, unless ``impots_windows_trust_ca`` is off) and on the controller through
``.artifacts/<host>/impots-ca.pem``.
"""

from __future__ import annotations

import base64
import hashlib
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


def _folder(host_name: str, artifacts: Path | None) -> tuple[str, Path]:
    safe_host = re.sub(r"[^A-Za-z0-9._@-]", "_", host_name)
    return safe_host, (artifacts or ARTIFACTS_DIR) / safe_host / "windows-tls"


def local_ca_file(host_name: str, artifacts: Path | None = None) -> str:
    """The controller file of the CA ``controller_certificate`` made for this host."""
    return str(_folder(host_name, artifacts)[1] / "ca.pem")


def certificate_thumbprint(pem_path: str) -> str:
    """The SHA-1 thumbprint Windows shows for a PEM certificate (upper-case hex of the DER's SHA-1)."""
    text = Path(pem_path).read_text()
    match = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", text, re.DOTALL)
    if not match:
        raise CertificateError(f"{pem_path} holds no PEM certificate")
    return hashlib.sha1(base64.b64decode("".join(match.group(1).split()))).hexdigest().upper()


def controller_certificate(
    host_name: str, names: list[str], artifacts: Path | None = None
) -> ControllerCertificate:
    """The CA and a server certificate for exactly ``names`` (made once, re-made when names change)."""
    safe_host, folder = _folder(host_name, artifacts)
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
