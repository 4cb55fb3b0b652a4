"""One TLS recipe for every platform: a local CA and a server certificate made on the controller.

With the default ``impots_tls = {"source": "local-ca"}`` each host gets its own CA, made once with the
controller's ``openssl`` and kept in ``.artifacts/<host>/tls/`` (mode 0700), and a server certificate
naming exactly the host's sites. The certificate is re-issued when the site names change or when it
expires within 30 days, so a deploy renews it in time; its lifetime stays under 366 days (Mozilla
"intermediate"). The CA's key never leaves the controller; clients trust
``.artifacts/<host>/impots-ca.pem``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE_SECONDS = 30 * 24 * 3600


class CertificateError(RuntimeError):
    """openssl failed on the controller (message: its stderr)."""


@dataclass(frozen=True)
class LocalCaFiles:
    cert: str  # controller paths
    key: str
    ca: str
    client_ca: str  # the copy users point their clients at


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0 and args[0] != "x509":
        raise CertificateError(f"openssl {args[0]} failed: {result.stderr.strip()}")
    return result


def _sans(cert: Path) -> list[str]:
    result = _openssl("x509", "-noout", "-in", str(cert), "-ext", "subjectAltName", cwd=cert.parent)
    return sorted(re.findall(r"DNS:([^,\s]+)", result.stdout))


def _valid_for_a_while(cert: Path) -> bool:
    result = _openssl(
        "x509", "-noout", "-in", str(cert), "-checkend", str(RENEW_BEFORE_SECONDS), cwd=cert.parent
    )
    return result.returncode == 0


def _make_ca(folder: Path, label: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-nodes", "-days", str(CA_DAYS),
        "-subj", f"/O=impots-provisioning/CN=impots local CA for {label}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", "ca.key", "-out", "ca.pem",
        cwd=folder,
    )  # fmt: skip


def _issue_server_certificate(folder: Path, names: list[str]) -> None:
    (folder / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n"
    )
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
        "-keyout", "server.key", "-out", "server.csr",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", str(SERVER_DAYS), "-sha256", "-extfile", "server.ext", "-out", "server.pem",
        cwd=folder,
    )  # fmt: skip


def local_ca_files(host_name: str, names: list[str], artifacts: Path) -> LocalCaFiles:
    """The host's CA and a server certificate for exactly ``names`` (made once; re-issued when the
    names change or the certificate nears its end)."""
    safe_host = re.sub(r"[^A-Za-z0-9._@-]", "_", host_name)
    folder = artifacts / safe_host / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca_key, ca_pem = folder / "ca.key", folder / "ca.pem"
    key, cert = folder / "server.key", folder / "server.pem"
    wanted = sorted(set(names))
    if not (ca_key.exists() and ca_pem.exists() and _valid_for_a_while(ca_pem)):
        _make_ca(folder, safe_host)
        cert.unlink(missing_ok=True)
    if not (key.exists() and cert.exists()) or _sans(cert) != wanted or not _valid_for_a_while(cert):
        _issue_server_certificate(folder, wanted)
    for private in (ca_key, key):
        os.chmod(private, 0o600)
    client_ca = folder.parent / "impots-ca.pem"
    if not client_ca.exists() or client_ca.read_bytes() != ca_pem.read_bytes():
        shutil.copyfile(ca_pem, client_ca)
    return LocalCaFiles(cert=str(cert), key=str(key), ca=str(ca_pem), client_ca=str(client_ca))
