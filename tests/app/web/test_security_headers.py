"""Security headers set by the app on every answer (issue 8), as defence in depth behind Apache's."""

from __future__ import annotations

import pytest
from webclient import Browser, WebClient

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
}


def assert_headers(response) -> None:
    assert {name: response.headers.get(name) for name in EXPECTED} == EXPECTED, response.status
    assert "Strict-Transport-Security" not in response.headers  # Apache's job, with the users' max-age


def test_on_actions_pages_redirects_and_static_files(client: WebClient, make_app) -> None:
    assert_headers(client.init_session("json"))
    assert_headers(client.login("admin", "wrong"))
    browser = Browser(make_app("mysql"))
    browser.open("/do/")
    assert len(browser.history) == 3 and browser.history[-1].mimetype == "text/html"
    for response in browser.history:  # 302, 302, the page
        assert_headers(response)
    assert_headers(client.http.get("/static/images/logo.jpg"))


@pytest.mark.parametrize("path", ["/nowhere", "/do/calculer-impot"])
def test_on_framework_errors(client: WebClient, path: str) -> None:
    response = client.http.get(path)  # 404, and 405 (GET on a POST route)
    assert response.status_code in (404, 405)
    assert_headers(response)


def test_on_413(make_client) -> None:
    client = make_client(max_request_bytes=1024)
    assert_headers(
        client.http.post("/do/authentifier-utilisateur", data={"user": "u" * 2000, "password": "p"})
    )
