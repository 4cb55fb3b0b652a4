"""What Windows needs of a certificate beyond the one TLS recipe (``provisioning/tls.py``): its thumbprint.

``Cert:\\LocalMachine\\Root`` names certificates by the SHA-1 thumbprint of their DER bytes; the trust
operation compares it to decide whether the controller's CA is already trusted.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path


class CertificateError(RuntimeError):
    """A file that should hold a PEM certificate does not."""


def certificate_thumbprint(pem_path: str) -> str:
    """The SHA-1 thumbprint Windows shows for a PEM certificate (upper-case hex of the DER's SHA-1)."""
    text = Path(pem_path).read_text()
    match = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", text, re.DOTALL)
    if not match:
        raise CertificateError(f"{pem_path} holds no PEM certificate")
    return hashlib.sha1(base64.b64decode("".join(match.group(1).split()))).hexdigest().upper()
