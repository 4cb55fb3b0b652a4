"""Assembles the web layer on a Flask app: secret key, sessions, login throttle, admin data, blueprint,
body limit, security headers, error handling.

The start-up sequence of spec §8.3, except that nothing here ends the process: a log file that cannot be
opened, Redis down or the database down are logged (and mailed where the spec says so) and the app answers
503 until the service is back.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

import redis
from flask import Flask, Response, session
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.exceptions import InternalServerError, RequestEntityTooLarge

from impots.config import ConfigError
from impots.db.dao import load_admin_data
from impots.errors import ImpotsError
from impots.logger import Logger
from impots.web import view_models
from impots.web.actions import VIEW_LISTE_ERREURS
from impots.web.admin_data_source import AdminDataSource, AdminDataUnavailable
from impots.web.controllers import result
from impots.web.front_controller import current_action, on_request_too_large, on_session_save_error
from impots.web.responses import build_response, render_view
from impots.web.routes import make_blueprint
from impots.web.runtime import EXTENSION_KEY, FallbackLog, Runtime, close_request_log, request_log
from impots.web.sessions import SESSION_LIFETIME, CookieSessionInterface, ImpotsRedisSessionInterface
from impots.web.throttle import LoginThrottle, ThrottleSettings
from impots.web.urls import action_url

# Seconds between two attempts to read the admin data while the database is down (app.config key).
DB_RETRY_SECONDS_KEY = "IMPOTS_DB_RETRY_SECONDS"
DEFAULT_DB_RETRY_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 2
MSG_INTERNAL_ERROR = "erreur interne du serveur ; l'administrateur a été prévenu"

# Sent on every answer, static files included (defence in depth: Apache sets them too, and HSTS).
# Referrer-Policy: with CSRF on, URLs carry the token; it must not leak to another site.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
}


def _secret_key(config: Mapping[str, Any]) -> str:
    key = config.get("secret_key")
    if key:
        return key
    if config.get("TESTING"):
        return secrets.token_hex(32)
    # A per-process random key would break sessions across Apache processes and restarts (course bug §12.4).
    raise ConfigError(
        f"{config['secrets_file']}: secret_key: missing; the application refuses to start without it "
        "(it signs sessions and CSRF tokens)"
    )


def _configure_sessions(app: Flask, dbms: str, config: Mapping[str, Any]) -> redis.Redis | None:
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    if not config["with_redissession"]:
        app.session_interface = CookieSessionInterface()
        return None
    client = redis.Redis(
        host=config["redis"]["host"],
        port=config["redis"]["port"],
        db=config["redis"]["db"],
        username=config["redis"]["user"],
        password=config.get("redis_password"),
        # No CLIENT SETINFO on each connection: a site's ACL user may run only what the app needs.
        driver_info=None,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        # One immediate retry covers a pooled connection that Redis closed (restart); redis-py's default
        # (10 retries with backoff) would hold every request for seconds while Redis is down.
        retry=Retry(NoBackoff(), 1),
    )
    app.session_interface = ImpotsRedisSessionInterface(
        app,
        client=client,
        key_prefix=f"{config['redis']['key_prefix']}session:",
        on_save_error=on_session_save_error,
    )
    return client


def _admin_data_source(app: Flask, dbms: str, config: Mapping[str, Any]) -> AdminDataSource:
    def runtime() -> Runtime:
        return app.extensions[EXTENSION_KEY]

    return AdminDataSource(
        load=lambda: load_admin_data(dbms, config["db"]),
        on_failure=lambda error: runtime().log_event(f"L'erreur suivante s'est produite : {error}"),
        on_outage=lambda error: runtime().mail_admin(
            f"[serveur] la base de données [{dbms}] n'est pas disponible : {error}"
        ),
        on_success=lambda: runtime().log_event("[serveur] connexion à la base de données réussie"),
        retry_interval=float(app.config.get(DB_RETRY_SECONDS_KEY, DEFAULT_DB_RETRY_SECONDS)),
    )


def _login_throttle(
    app: Flask, dbms: str, config: Mapping[str, Any], client: redis.Redis | None
) -> LoginThrottle:
    return LoginThrottle(
        client,
        ThrottleSettings.from_config(config["login_throttle"]),
        key_prefix=f"{config['redis']['key_prefix']}throttle:",
        log=lambda line: app.extensions[EXTENSION_KEY].log_event(line),
        clock=time.time,
    )


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _start_up(app: Flask, runtime: Runtime, redis_client: redis.Redis | None) -> None:
    """Spec §8.3, without exits: every failure is logged and the app starts anyway."""
    try:
        startup_log = Logger(runtime.config["log_file"])
    except ImpotsError as error:
        startup_log = FallbackLog(app.logger)
        startup_log.write(f"{error}\n")
        runtime.mail_admin(str(error), startup_log)
    try:
        startup_log.write("[serveur] démarrage du serveur\n")
        if not runtime.throttle.active:
            startup_log.write(
                "[serveur] limitation des tentatives de connexion désactivée "
                "(login_throttle.enabled false, ou sessions sans Redis)\n"
            )
        if redis_client is not None:
            try:
                redis_client.ping()
            except redis.RedisError as error:
                startup_log.write(f"[serveur] Le serveur Redis n'est pas disponible : {error}\n")
    finally:
        startup_log.close()
    try:
        runtime.admin_data.get()
    except AdminDataUnavailable:
        pass  # logged and mailed by the source; requests answer 503 and retry


def init_web(app: Flask, dbms: str, config: dict[str, Any]) -> None:
    """Attach the web layer of site ``dbms`` to ``app`` (``config`` as returned by ``load_config``)."""
    app.config.update({key: value for key, value in config.items() if key.isupper()})
    app.config["SECRET_KEY"] = _secret_key(config)
    # One limit for the whole body and for any form field (Flask's own default for a field is 500 KB).
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_FORM_MEMORY_SIZE"] = config["max_request_bytes"]
    redis_client = _configure_sessions(app, dbms, config)
    throttle = _login_throttle(app, dbms, config, redis_client)
    runtime = Runtime(dbms, config, _admin_data_source(app, dbms, config), app.logger, throttle)
    app.extensions[EXTENSION_KEY] = runtime
    app.after_request(_add_security_headers)

    app.register_blueprint(make_blueprint(config["with_csrftoken"]), url_prefix=config["prefix_url"])
    app.jinja_env.globals["action_url"] = action_url
    app.teardown_request(close_request_log)

    def on_internal_error(error: InternalServerError) -> Response:
        """Any HTTP 500 the controllers did not turn into an état: logged, mailed (spec §8.2 c), answered."""
        original = error.original_exception or error
        line = f"[MainController] erreur interne : {original!r}"
        log = request_log()
        log.write(line + "\n")
        runtime.mail_admin(line, log)
        response_result = result(current_action(), 131, [MSG_INTERNAL_ERROR])
        type_response = session.get("typeResponse") or "json"
        if type_response == "html":
            return render_view(VIEW_LISTE_ERREURS, view_models.unavailable_model(response_result), 500)
        return build_response(type_response, response_result, 500)

    app.register_error_handler(InternalServerError, on_internal_error)
    app.register_error_handler(RequestEntityTooLarge, on_request_too_large)
    _start_up(app, runtime, redis_client)
