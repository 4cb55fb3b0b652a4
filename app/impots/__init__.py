"""The impôts tax-calculation application (version 17 of the course, bugs fixed).

``create_app("mysql")`` / ``create_app("pgres")`` builds one site; the ``.wsgi`` files and ``main.py``
call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from impots.config import load_config
from impots.db.dao import check_dbms

__all__ = ["create_app"]


def create_app(dbms: str, config: Mapping[str, Any] | None = None) -> Flask:
    """The Flask application of the site backed by ``dbms`` (``"mysql"`` or ``"pgres"``).

    + dbms: which database holds the admin data
    + config: overrides of ``impots.json`` keys (tests); upper-case keys are Flask settings (``TESTING``)

    Never exits: with the database or Redis down the app starts and answers 503 until they are back. Raises
    ``ValueError`` for an unknown ``dbms`` and ``ConfigError`` (a ``ValueError``) for a bad configuration,
    including a missing ``secret_key`` outside tests.

    Example::

        application = create_app("mysql")
    """
    check_dbms(dbms)
    settings = load_config(dbms, config)
    app = Flask(__name__, instance_path=settings["instance_path"])

    from impots.web.application import init_web  # the web layer imports Flask extensions: load it here

    init_web(app, dbms, settings)
    return app
