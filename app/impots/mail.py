"""The course's SendAdminMail (spec §8.2), with the configured SMTP port (the course ignored it, §12.7)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from impots.logger import Logger

# A mail server that does not answer must not hold a request (or a start-up) for long.
SMTP_TIMEOUT = 10


def send_admin_mail(
    mail: Mapping[str, Any], message: str, logger: Logger | None = None, password: str | None = None
) -> bool:
    """Mail ``message`` to the administrator; return True when the server accepted it. Never raises.

    + mail: the ``admin_mail`` configuration: ``smtp_server``, ``smtp_port``, ``from``, ``to``, ``subject``,
      ``tls`` (STARTTLS, verifying the certificate, then login as ``user`` with ``password``), ``user``
    + message: the plain-text body
    + logger: where to log the outcome (optional)
    + password: the SMTP password (the ``smtp_password`` secret), used when ``tls`` is true
    """
    recipient = mail.get("to")
    try:
        mime = EmailMessage()
        mime["From"] = mail["from"]
        mime["To"] = recipient
        mime["Date"] = formatdate(localtime=True)
        mime["Subject"] = mail["subject"]
        mime.set_content(message)
        with smtplib.SMTP(mail["smtp_server"], int(mail["smtp_port"]), timeout=SMTP_TIMEOUT) as smtp:
            if mail.get("tls"):
                smtp.starttls(context=ssl.create_default_context())
                if mail.get("user"):
                    smtp.login(mail["user"], password or "")
            smtp.send_message(mime)
    except Exception as error:  # noqa: BLE001 (the alert mail must never take the server down)
        _log(
            logger,
            f"[SendAdminMail] Erreur [{error}] lors de l'envoi à [{recipient}] du message [{message}]\n",
        )
        return False
    _log(logger, f"[SendAdminMail] Message envoyé à [{recipient}] : [{message}]\n")
    return True


def _log(logger: Logger | None, line: str) -> None:
    if logger is None:
        return
    try:
        logger.write(line)
    except Exception:  # noqa: BLE001 (a closed or broken logger must not make the mail raise)
        pass
