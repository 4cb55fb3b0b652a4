"""What the web layer needs at run time, built once by ``create_app`` and kept in ``app.extensions``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import current_app, g, has_request_context
from flask_wtf.csrf import generate_csrf

from impots.errors import ImpotsError
from impots.logger import Logger
from impots.mail import send_admin_mail
from impots.web.admin_data_source import AdminDataSource
from impots.web.throttle import LoginThrottle

EXTENSION_KEY = "impots"


class LogSink(Protocol):
    def write(self, message: str) -> None: ...

    def close(self) -> None: ...


class FallbackLog:
    """Used when the log file cannot be opened: lines go to the server's error log instead of being lost."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def write(self, message: str) -> None:
        self._logger.warning(message.rstrip("\n"))

    def close(self) -> None:
        pass


@dataclass
class Runtime:
    """The configuration of one site (one dbms) and its long-lived helpers."""

    dbms: str
    config: Mapping[str, Any]
    admin_data: AdminDataSource
    app_logger: logging.Logger
    throttle: LoginThrottle
    # The last log-file error reported, so that a broken log file is reported once, not on every request.
    _log_error: str | None = field(default=None, repr=False)

    @property
    def with_csrftoken(self) -> bool:
        return bool(self.config["with_csrftoken"])

    def password_hash(self, login: str) -> str | None:
        """The stored pbkdf2-sha256 hash of ``login``, None for an unknown login."""
        for user in self.config["users"]:
            if user["login"] == login:
                return user["password"]
        return None

    def open_log(self) -> LogSink:
        """A logger on the configured log file, or the server's error log if the file cannot be opened."""
        try:
            log = Logger(self.config["log_file"])
        except ImpotsError as error:
            if str(error) != self._log_error:
                self._log_error = str(error)
                self.app_logger.error("%s (log lines go to this log until it is fixed)", error)
            return FallbackLog(self.app_logger)
        self._log_error = None
        return log

    @contextmanager
    def event_log(self) -> Iterator[LogSink]:
        """The request's logger inside a request; outside (start-up), a logger opened for the occasion."""
        if has_request_context():
            yield request_log()
            return
        log = self.open_log()
        try:
            yield log
        finally:
            log.close()

    def log_event(self, message: str) -> None:
        """Log one line: in the request's log inside a request, else in a logger opened for it."""
        with self.event_log() as log:
            log.write(message + "\n")

    def mail_admin(self, message: str, log: LogSink | None = None) -> bool:
        """Mail the administrator (spec §8.2), logging the outcome; never raises."""
        if log is None:
            with self.event_log() as event_log:
                return self.mail_admin(message, event_log)
        return send_admin_mail(
            self.config["admin_mail"], message, logger=log, password=self.config.get("smtp_password")
        )

    def csrf_token(self) -> str:
        """This request's CSRF token (one per request, valid for the whole session)."""
        return generate_csrf()


def current_runtime() -> Runtime:
    """The runtime of the application handling this request."""
    return current_app.extensions[EXTENSION_KEY]


def request_log() -> LogSink:
    """The per-request logger (spec §8.1), opened on first use and closed at the end of the request."""
    if "impots_log" not in g:
        g.impots_log = current_runtime().open_log()
    return g.impots_log


def close_request_log(_error: BaseException | None = None) -> None:
    """Teardown: close the per-request logger if the request opened one."""
    log = g.pop("impots_log", None)
    if log is not None:
        log.close()
