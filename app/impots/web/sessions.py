"""Session storage: Redis through Flask-Session (default) or Flask's signed cookie.

Both interfaces scope the cookie to the mount point of the request (``request.script_root``; Flask's own
default follows ``APPLICATION_ROOT``, which knows nothing of a WSGI alias) and mark it Secure when the request
came over HTTPS. The Redis interface never lets a Redis outage escape as an exception: the session is then
flagged ``store_error`` and the web layer answers 503.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import redis
from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface
from flask_session.redis import RedisSession, RedisSessionInterface

# How long an idle Redis session lives (Redis TTL); the cookie itself lasts until the browser closes.
SESSION_LIFETIME = timedelta(hours=12)


class _MountPointCookie:
    """Cookie path = the WSGI mount point of this request; Secure on HTTPS."""

    def get_cookie_path(self, app: Flask) -> str:
        return request.script_root or "/"

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


class CookieSessionInterface(_MountPointCookie, SecureCookieSessionInterface):
    """Signed-cookie session (``with_redissession`` false)."""


class ImpotsRedisSession(RedisSession):
    """A Redis-backed session; ``store_error`` holds the Redis error text when Redis could not be reached."""

    store_error: str | None = None


class ImpotsRedisSessionInterface(_MountPointCookie, RedisSessionInterface):
    """Flask-Session's Redis interface, with a key prefix per site and Redis outages turned into 503s.

    + client: the Redis connection pool
    + key_prefix: e.g. ``impots:mysql:session:`` so two sites never share a session
    + on_save_error: rewrites the response when the session could not be saved (Redis went down mid-request)
    """

    session_class = ImpotsRedisSession

    def __init__(
        self,
        app: Flask,
        client: redis.Redis,
        key_prefix: str,
        on_save_error: Callable[[Response, str], None],
    ) -> None:
        super().__init__(app, client=client, key_prefix=key_prefix, permanent=False)
        self._on_save_error = on_save_error

    def open_session(self, app: Flask, request: Request) -> ImpotsRedisSession:
        try:
            if not request.cookies.get(app.config["SESSION_COOKIE_NAME"]):
                # A new visitor costs Redis nothing yet; ping so that an outage shows before any action runs.
                self.client.ping()
            return super().open_session(app, request)
        except redis.RedisError as error:
            session = self.session_class(sid=self._generate_sid(self.sid_length), permanent=False)
            session.store_error = str(error) or error.__class__.__name__
            return session

    def save_session(self, app: Flask, session: ImpotsRedisSession, response: Response) -> None:
        if session.store_error is not None:
            return
        try:
            super().save_session(app, session, response)
        except redis.RedisError as error:
            self._on_save_error(response, str(error) or error.__class__.__name__)


def session_store_error(session: object) -> str | None:
    """The Redis error of this request's session, or None when the session store works."""
    return getattr(session, "store_error", None)
