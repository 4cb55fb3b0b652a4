"""Fixtures of the web-layer tests: the real app on the real Redis, MariaDB/PostgreSQL and SMTP server.

``make_app(dbms, **overrides)`` builds an app on the shared ``instance_dir``; ``WebClient`` drives it through
Werkzeug's test client (optionally mounted under a WSGI prefix with ``DispatcherMiddleware``), keeping the
cookies and the last CSRF token like the course's HTTP clients do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from webclient import WebClient


@pytest.fixture
def make_app(instance_dir: Path) -> Callable[..., Flask]:
    """``make_app("mysql"|"pgres", **overrides)``: a new app on the test instance folder."""
    from impots import create_app

    def make(dbms: str = "mysql", **overrides: Any) -> Flask:
        return create_app(dbms, overrides)

    return make


@pytest.fixture
def make_client(make_app: Callable[..., Flask]) -> Callable[..., WebClient]:
    """``make_client(dbms="mysql", mount="", prefix="/do", csrf=False, **overrides)``."""

    def make(dbms: str = "mysql", mount: str = "", prefix: str = "/do", csrf: bool = False, **overrides: Any):
        app = make_app(dbms, prefix_url=prefix, with_csrftoken=csrf, **overrides)
        return WebClient(app, mount=mount, prefix=prefix, csrf=csrf)

    return make


@pytest.fixture
def client(make_client: Callable[..., WebClient]) -> WebClient:
    """A JSON-ready client of the MariaDB site, prefix ``/do``, no mount point, no CSRF."""
    return make_client()
