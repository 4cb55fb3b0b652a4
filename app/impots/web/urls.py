"""URLs of actions, always built with ``url_for`` so they carry the WSGI mount point and ``prefix_url``."""

from __future__ import annotations

from typing import Any

from flask import url_for

from impots.web import actions as a
from impots.web.runtime import current_runtime


def action_url(action: str, **params: Any) -> str:
    """The URL of an action (``/`` included), with this request's CSRF token as last segment when enabled."""
    if current_runtime().with_csrftoken and action not in (a.ROOT, a.INIT_SESSION_WITHOUT_CSRFTOKEN):
        params["csrf_token"] = current_runtime().csrf_token()
    return url_for(f"{a.BLUEPRINT_NAME}.{a.endpoint_name(action)}", **params)
