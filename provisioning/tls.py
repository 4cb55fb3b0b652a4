"""One TLS recipe for every platform: a local CA and server certificates made on the controller.

With the default ``impots_tls = {"source": "local-ca"}``, the controller makes ONE CA with its own
``openssl``, kept in ``.artifacts/local-ca/`` (mode 0700): a lab admin trusts it once in the room's
browsers, and its key never leaves the controller. Each set of site names gets one server certificate
signed by it (``.artifacts/local-ca/certs/<names digest>/``): lab machines serve the same names from
their own hosts files, so they share it, and a machine reached under two inventory names (``@local``
and ``127.0.0.1``) keeps the same certificate. A certificate is re-issued when it would expire within
30 days, so a deploy renews it in time; its lifetime stays under 366 days (Mozilla "intermediate").
Clients point at ``.artifacts/<host>/impots-ca.pem`` (a copy of the CA per host).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

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


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CertificateError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _certificate(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _names(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return sorted(extension.value.get_values_for_type(x509.DNSName))


def _valid_for_a_while(cert: x509.Certificate) -> bool:
    remaining = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return remaining.total_seconds() > RENEW_BEFORE_SECONDS


def _make_ca(folder: Path, label: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-nodes", "-days", str(CA_DAYS),
        "-subj", f"/O=impots-provisioning/CN=impots local CA for {label}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", "ca.key", "-out", "ca.pem",
        cwd=folder,
    )  # fmt: skip


def _issue_server_certificate(folder: Path, ca_folder: Path, names: list[str]) -> None:
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
        "x509", "-req", "-in", "server.csr",
        "-CA", str(ca_folder / "ca.pem"), "-CAkey", str(ca_folder / "ca.key"),
        "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
        "-days", str(SERVER_DAYS), "-sha256", "-extfile", "server.ext", "-out", "server.pem",
        cwd=folder,
    )  # fmt: skip


def _private_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def local_ca_files(host_name: str, names: list[str], artifacts: Path) -> LocalCaFiles:
    """The controller's CA and a server certificate for exactly ``names`` (made once; re-issued when
    it nears its end), with the CA copied to ``<artifacts>/<host>/impots-ca.pem`` for clients."""
    wanted = sorted(set(names))
    ca_folder = _private_folder(artifacts / "local-ca")
    ca_key, ca_pem = ca_folder / "ca.key", ca_folder / "ca.pem"
    ca = _certificate(ca_pem)
    if not (ca_key.exists() and ca and _valid_for_a_while(ca)):
        shutil.rmtree(ca_folder / "certs", ignore_errors=True)  # signed by the CA being replaced
        _make_ca(ca_folder, "this controller")
    digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:16]
    folder = _private_folder(ca_folder / "certs" / digest)
    key, cert_pem = folder / "server.key", folder / "server.pem"
    cert = _certificate(cert_pem)
    if not (key.exists() and cert and _names(cert) == wanted and _valid_for_a_while(cert)):
        _issue_server_certificate(folder, ca_folder, wanted)
    for private in (ca_key, key):
        os.chmod(private, 0o600)
    safe_host = re.sub(r"[^A-Za-z0-9._@-]", "_", host_name)
    (artifacts / safe_host).mkdir(parents=True, exist_ok=True)
    client_ca = artifacts / safe_host / "impots-ca.pem"
    if not client_ca.exists() or client_ca.read_bytes() != ca_pem.read_bytes():
        shutil.copyfile(ca_pem, client_ca)
    return LocalCaFiles(cert=str(cert_pem), key=str(key), ca=str(ca_pem), client_ca=str(client_ca))
