"""TLS material: a local certificate authority and one server certificate for every site."""

from __future__ import annotations

import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.api import operation

from provisioning.linux.facts import TlsState, cached_fact

CA_DAYS = 3650
# Browsers refuse server certificates valid for more than 398 days.
SERVER_DAYS = 397


@operation()
def local_ca_certificate(directory: str, names: list[str]):
    """
    Keep a local CA (``ca.key`` 0600, ``ca.pem``) and a server certificate signed by it
    (``server.key`` 0600, ``server.pem``) whose SANs are exactly ``names``. The server certificate
    is made again only when the SAN set changes, it nears expiry (30 days) or the CA is new.

    + directory: root-only folder of the TLS files
    + names: DNS names the certificate covers (every site)

    **Example:**

    .. code:: python

        local_ca_certificate(name="TLS", directory="/opt/impots/tls", names=["flask-impots-withmysql"])
    """
    wanted = sorted(set(names))
    state = cached_fact(TlsState, directory=directory)
    new_ca = not state["ca"]
    if not new_ca and state["server_ok"] and state["server_sans"] == wanted:
        host.noop(f"certificate for {', '.join(wanted)} is already valid")
        return
    d = shlex.quote(directory)
    if new_ca:
        yield (
            f"cd {d} && umask 077 && openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days {CA_DAYS} "
            '-subj "/O=impots-provisioning/CN=impots local CA $(hostname)" '
            "-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' "
            "-keyout ca.key -out ca.pem 2>/dev/null && chmod 644 ca.pem"
        )
    extensions = [
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid,issuer",
        "subjectAltName=" + ",".join(f"DNS:{n}" for n in wanted),
    ]
    extension_lines = " ".join(shlex.quote(e) for e in extensions)
    yield (
        f"cd {d} && umask 077 && printf '%s\\n' {extension_lines} > server.ext && "
        f"openssl req -new -newkey rsa:2048 -nodes -subj /CN={wanted[0]} -keyout server.key.new "
        "-out server.csr 2>/dev/null && "
        f"openssl x509 -req -sha256 -days {SERVER_DAYS} -in server.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -extfile server.ext -out server.pem.new 2>/dev/null && "
        "chmod 644 server.pem.new && mv server.key.new server.key && mv server.pem.new server.pem && "
        "rm -f server.csr server.ext"
    )


@operation()
def ca_fetched(directory: str, dest: str):
    """
    Copy the (public) CA certificate of ``local_ca_certificate`` to the controller, so clients verify
    the sites. Only the controller's copy is written: the target never changes, so this reports no
    change.

    + directory: the target's TLS folder (``ca.pem``)
    + dest: controller path of the copy (e.g. ``.artifacts/<host>/impots-ca.pem``)
    """
    lines = cached_fact(TlsState, directory=directory)["ca_pem"]
    if not lines:
        host.noop(f"{directory}/ca.pem does not exist yet: nothing to fetch")
        return
    text = "\n".join(lines) + "\n"
    local = Path(dest)
    if not local.exists() or local.read_text() != text:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text)
    host.noop(f"{dest} holds the CA certificate of {directory}")
    yield from ()
