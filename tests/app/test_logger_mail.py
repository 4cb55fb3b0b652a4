"""Logger (spec §8.1) and the admin mail (spec §8.2) against real SMTP servers, plain and STARTTLS."""

from __future__ import annotations

import re
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from impots.errors import ImpotsError
from impots.logger import Logger
from impots.mail import send_admin_mail

LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}, (?P<thread>[^,]+) : (?P<message>.*)$")


def test_logger_line_format(tmp_path: Path) -> None:
    path = tmp_path / "impots.log"
    logger = Logger(str(path))
    logger.write("[serveur] démarrage du serveur\n")
    logger.close()
    Logger(str(path)).write("seconde ligne\n")  # append mode: the first line stays
    lines = path.read_text(encoding="utf-8").splitlines()
    first = LINE.match(lines[0])
    assert first and first["thread"] == "MainThread" and first["message"] == "[serveur] démarrage du serveur"
    assert LINE.match(lines[1])["message"] == "seconde ligne"
    assert len(lines) == 2


def test_logger_lines_from_threads_never_interleave(tmp_path: Path) -> None:
    path = str(tmp_path / "impots.log")
    barrier = threading.Barrier(8)

    def worker(number: int) -> None:
        logger = Logger(path)  # one logger per request, as the web layer does
        barrier.wait()
        for index in range(300):
            logger.write(f"requête {index} " + "x" * 200 + "\n")
        logger.close()

    threads = [
        threading.Thread(target=worker, args=(number,), name=f"worker-{number}") for number in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8 * 300
    matches = [LINE.match(line) for line in lines]
    assert all(matches)
    assert {match["thread"] for match in matches} == {f"worker-{number}" for number in range(8)}


def test_logger_open_failure_is_error_18(tmp_path: Path) -> None:
    with pytest.raises(ImpotsError) as raised:
        Logger(str(tmp_path / "missing-folder" / "impots.log"))
    assert raised.value.code == 18
    assert str(raised.value).startswith("MyException[18, ")
    assert "missing-folder" in str(raised.value)


def _mail(port: int, **changes: Any) -> dict[str, Any]:
    return {
        "smtp_server": "127.0.0.1",
        "smtp_port": port,
        "from": "guest@localhost.com",
        "to": "admin@localhost.com",
        "subject": "plantage du serveur de calcul d'impôts",
        "tls": False,
        "user": None,
        **changes,
    }


def test_mail_uses_the_configured_port(smtp_server: Any, tmp_path: Path) -> None:
    logger = Logger(str(tmp_path / "impots.log"))
    assert send_admin_mail(_mail(smtp_server.port), "état 500 : erreur", logger) is True
    logger.close()
    [message] = smtp_server.messages
    assert message["From"] == "guest@localhost.com"
    assert message["To"] == "admin@localhost.com"
    assert message["Subject"] == "plantage du serveur de calcul d'impôts"
    assert message["Date"]
    assert message.get_content().strip() == "état 500 : erreur"
    log = (tmp_path / "impots.log").read_text(encoding="utf-8")
    assert "[SendAdminMail] Message envoyé à [admin@localhost.com] : [état 500 : erreur]" in log


def test_mail_failure_returns_false_and_logs(free_tcp_port: int, tmp_path: Path) -> None:
    logger = Logger(str(tmp_path / "impots.log"))
    assert send_admin_mail(_mail(free_tcp_port), "message", logger) is False
    assert send_admin_mail(_mail(free_tcp_port), "message") is False  # no logger: still no exception
    logger.close()
    log = (tmp_path / "impots.log").read_text(encoding="utf-8")
    assert re.search(
        r"\[SendAdminMail\] Erreur \[.*refused.*\] lors de l'envoi à \[admin@localhost.com\]"
        r" du message \[message\]",
        log,
    )


def test_mail_never_raises_on_bad_configuration(tmp_path: Path) -> None:
    logger = Logger(str(tmp_path / "impots.log"))
    logger.close()  # even a closed logger does not make it raise
    assert send_admin_mail({"to": "x@y"}, "message", logger) is False
    assert send_admin_mail(_mail(25, smtp_port="not a port"), "message") is False


# ---- STARTTLS + login -------------------------------------------------------------------------------


TLS_USER, TLS_PASSWORD = "alerts", "s3cret"


@pytest.fixture
def tls_smtp_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server_factory: Any) -> Any:
    """An SMTP server requiring STARTTLS, then AUTH as TLS_USER / TLS_PASSWORD; its self-signed certificate
    for 127.0.0.1 is trusted by the client through SSL_CERT_FILE (read by ssl.create_default_context)."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tmp_path / "smtp.pem", tmp_path / "smtp.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        valid = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            TLS_USER.encode(),
            TLS_PASSWORD.encode(),
        )
        return AuthResult(success=valid, handled=False)

    return smtp_server_factory(
        tls_context=context, require_starttls=True, authenticator=authenticate, auth_require_tls=True
    )


def test_mail_with_starttls_and_login(tls_smtp_server: Any, tmp_path: Path) -> None:
    logger = Logger(str(tmp_path / "impots.log"))
    mail = _mail(tls_smtp_server.port, tls=True, user=TLS_USER)
    assert send_admin_mail(mail, "via TLS", logger, password=TLS_PASSWORD) is True
    assert [message.get_content().strip() for message in tls_smtp_server.messages] == ["via TLS"]

    assert send_admin_mail(mail, "wrong password", logger, password="nope") is False
    assert send_admin_mail({**mail, "tls": False}, "in clear", logger) is False  # the server demands STARTTLS
    assert len(tls_smtp_server.messages) == 1
    logger.close()
    log = (tmp_path / "impots.log").read_text(encoding="utf-8")
    assert "Erreur [" in log and "du message [wrong password]" in log
    assert TLS_PASSWORD not in log


def test_mail_refuses_an_untrusted_certificate(tls_smtp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    mail = _mail(tls_smtp_server.port, tls=True, user=TLS_USER)
    assert send_admin_mail(mail, "not sent", password=TLS_PASSWORD) is False
    assert tls_smtp_server.messages == []
