"""CSRF token as last URL segment (spec §5.3, with_csrftoken): JSON and XML clients, bootstrap route."""

from __future__ import annotations

import pytest
from webclient import Browser, WebClient


@pytest.mark.parametrize("kind", ["json", "xml"])
def test_session_with_tokens(make_client, kind: str) -> None:
    client: WebClient = make_client(csrf=True)
    first = client.http.get(client.url("init-session-without-csrftoken", kind, token=False))
    assert first.status_code == 302
    location = first.headers["Location"]
    assert location.startswith(f"/do/init-session/{kind}/")
    client.get(location)
    body = client.body()
    assert int(body["état"]) == 700 and body["csrf_token"]
    first_token = client.token
    assert client.login().status_code == 200
    client.post(client.url("calculer-impot"), data={"marié": "non", "enfants": "0", "salaire": "30000"})
    assert int(client.body()["état"]) == 300
    assert client.body()["csrf_token"]  # every response hands out a token for the next request
    # Any token of this session stays valid (spec §5.3), including the first one.
    response = client.get(f"/do/lister-simulations/{first_token}")
    assert response.status_code == 200 and int(client.body()["état"]) == 500


def test_routes_need_the_segment(make_client) -> None:
    client = make_client(csrf=True)
    assert client.http.get("/do/init-session/json").status_code == 404
    client.init_session("json")
    client.login()
    assert client.http.get("/do/lister-simulations").status_code == 404


def test_no_segment_and_no_bootstrap_route_without_csrf(make_client) -> None:
    client = make_client(csrf=False)
    assert client.http.get("/do/init-session-without-csrftoken/json").status_code == 404
    client.start("json")
    assert client.http.get("/do/lister-simulations/abc").status_code == 404
    assert "csrf_token" not in client.body()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not-a-token", "The CSRF token is invalid."),
        ("IjBhYmMi.Zz9xyA.bad-signature-000000000000", "The CSRF token is invalid."),
    ],
)
def test_121_invalid_token(make_client, token: str, message: str) -> None:
    client = make_client(csrf=True)
    client.init_session("json")
    client.login()
    client.get(f"/do/lister-simulations/{token}")
    assert client.last.status_code == 400
    body = client.body()
    assert body["état"] == 121 and body["réponse"] == [message] and body["csrf_token"]


def test_121_token_of_another_session(make_client) -> None:
    alice = make_client(csrf=True)
    alice.start("json")
    mallory = WebClient(alice.app, csrf=True)
    mallory.start("json")
    mallory.get(f"/do/lister-simulations/{alice.token}")
    assert mallory.last.status_code == 400
    assert mallory.body()["état"] == 121 and mallory.body()["réponse"] == ["The CSRF tokens do not match."]


def test_new_token_after_fin_session(make_client) -> None:
    client = make_client(csrf=True)
    client.start("xml")
    client.get(client.url("fin-session"))
    assert client.last.status_code == 200 and client.body()["état"] == "400"
    # The token handed out by fin-session belongs to the new (empty) session.
    client.get(client.url("init-session", "json"))
    assert client.last.status_code == 200 and client.body()["état"] == 700


def test_token_is_checked_after_the_other_checks(make_app) -> None:
    """§4.3 step 3: 101 (no session, not authenticated), then 151 (not offered by the view), then 121."""
    app = make_app("mysql", with_csrftoken=True)
    http = app.test_client()
    body = http.get("/do/lister-simulations/forged-token").get_json()
    assert (body["état"], body["réponse"]) == (
        101,
        ["action [lister-simulations] demandée par utilisateur non authentifié"],
    )
    body = http.get("/do/afficher-vue-authentification/forged-token").get_json()
    assert (body["état"], body["réponse"]) == (
        101,
        ["pas de session en cours. Commencer par action [init-session]"],
    )

    browser = Browser(app)
    browser.open("/do/")
    browser.submit({"user": "admin", "password": "admin"})  # the tax form view: deleting is not offered
    browser.open("/do/supprimer-simulation/1/forged-token")
    assert browser.final_url.startswith("/do/afficher-vue-liste-erreurs/")
    assert "action [supprimer-simulation] incorrecte dans l&#39;environnement actuel" in browser.page
    browser.open("/do/lister-simulations/forged-token")  # offered by the error view: now the token counts
    assert "The CSRF token is invalid." in browser.page
