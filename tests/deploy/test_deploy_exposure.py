"""No source, configuration or secret file is reachable by URL, whatever the path trick."""

from __future__ import annotations

import http.client
import ssl

import pytest
from deploy_harness import DATE_TIME_SITE, IMPOTS_ALIAS, IMPOTS_SITES

pytestmark = pytest.mark.deploy

# Requested byte for byte (no client-side normalisation of `..`), on every impots site.
IMPOTS_PROBES = [
    "/",
    "/impots/../",
    "/impots/%2e%2e/",
    "/impots/..%2f",
    "/main_withmysql.wsgi",
    "/main_withpgres.wsgi",
    "/impots/main_withmysql.wsgi",
    "/impots/../main_withmysql.wsgi",
    "/impots/do/../main_withmysql.wsgi",
    "/impots/impots/__init__.py",
    "/impots/main.py",
    "/main.py",
    "/impots/instance/impots.json",
    "/impots/instance/secrets.json",
    "/instance/impots.json",
    "/instance/secrets.json",
    "/impots.json",
    "/secrets.json",
    "/impots/static/../__init__.py",
    "/impots/static/../../main_withmysql.wsgi",
    "/impots/static/..%2f__init__.py",
    "/impots/static/%2e%2e/%2e%2e/main_withmysql.wsgi",
    "/impots/static/../../instance/impots.json",
    "/static/../main_withmysql.wsgi",
    "/app/main_withmysql.wsgi",
    "/requirements.txt",
    "/impots/requirements.txt",
    "/venv/pyvenv.cfg",
    "/www/",
]
DATE_TIME_PROBES = [
    "/date_time_server.wsgi",
    "/date_time_server/__init__.py",
    "/../date_time_server.wsgi",
    "/static/../date_time_server.wsgi",
    "/%2e%2e/main_withmysql.wsgi",
    "/instance/impots.json",
    "/instance/secrets.json",
    "/main_withmysql.wsgi",
]

# Text that only a source, config or secret file (or a directory listing) would contain.
LEAK_MARKERS = (
    "Index of /",
    "create_app",
    "import ",
    "application =",
    "secret_key",
    "_password",
    "pbkdf2",
    "prefix_url",
    "home =",
    "WSGI",
)


def fetch_raw(site: str, path: str, ca: str) -> tuple[int, str]:
    """GET `path` exactly as written (http.client does not normalise `..`), verified against the CA."""
    context = ssl.create_default_context(cafile=ca)
    connection = http.client.HTTPSConnection(site, 443, context=context, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()


def assert_not_exposed(site: str, path: str, ca: str) -> None:
    status, body = fetch_raw(site, path, ca)
    leaks = [marker for marker in LEAK_MARKERS if marker in body]
    assert not leaks, f"https://{site}{path} -> {status} shows {leaks}:\n{body[:500]}"
    # The DocumentRoot may redirect or answer an empty page, but must never serve a file: 2xx only for "/".
    if path != "/":
        assert status in (301, 302, 400, 403, 404), f"https://{site}{path} -> {status}:\n{body[:500]}"


@pytest.mark.parametrize("path", IMPOTS_PROBES)
@pytest.mark.parametrize("site", IMPOTS_SITES)
def test_nothing_exposed_on_impots_sites(deployed, site: str, path: str) -> None:
    assert_not_exposed(site, path, str(deployed.ca))


@pytest.mark.parametrize("path", DATE_TIME_PROBES)
def test_nothing_exposed_on_date_time_site(deployed, path: str) -> None:
    assert_not_exposed(DATE_TIME_SITE, path, str(deployed.ca))


def test_static_files_are_still_served(deployed) -> None:
    # The probes above would pass trivially if nothing at all were served.
    status, _ = fetch_raw(IMPOTS_SITES[0], f"{IMPOTS_ALIAS}/static/images/logo.jpg", str(deployed.ca))
    assert status == 200
