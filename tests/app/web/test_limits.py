"""Limits (issue 8): a request body over ``max_request_bytes`` gets a 413 in the session's format; client
values are echoed, logged and kept in the session cut to 100 characters; nothing big reaches Redis."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import redis
from webclient import WebClient

EIGHT_MB = 8 * 2**20
CUT = "x" * 100 + "…"


def too_large(limit: int = 65536) -> str:
    return f"le corps de la requête dépasse la taille maximale autorisée [{limit} octets]"


def log_size(instance_dir: Path) -> int:
    return (instance_dir / "logs" / "impots-mysql.log").stat().st_size


def redis_usage(redis_url: str) -> dict[str, int]:
    """Bytes used by each key of the test database, as Redis itself counts them."""
    client = redis.Redis.from_url(redis_url)
    try:
        return {key.decode(): client.memory_usage(key) for key in client.keys("*")}
    finally:
        client.close()


# ---- 413 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "xml"])
def test_body_over_the_default_limit_is_413_in_the_session_format(make_client, kind: str) -> None:
    client = make_client()
    client.start(kind)
    response = client.post(
        client.url("calculer-impot"), data={"marié": "oui", "enfants": "1", "salaire": "9" * 70_000}
    )
    assert response.status_code == 413
    assert response.mimetype == f"application/{kind}"
    body = client.body()
    assert body["action"] == "calculer-impot" and str(body["état"]) == "413"
    assert body["réponse"] in ([too_large()], too_large())  # XML: a one-element list is a single element


def test_body_over_the_limit_is_a_413_page_in_html(make_client) -> None:
    client = make_client()
    client.init_session("html")
    response = client.post(
        client.url("authentifier-utilisateur"), data={"user": "u" * 70_000, "password": "p"}
    )
    assert response.status_code == 413 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert too_large() in page and "u" * 100 not in page


def test_the_limit_is_configurable_and_bodies_within_it_work(make_client, instance_dir: Path) -> None:
    client = make_client(max_request_bytes=2048)
    client.start("json")
    taxpayers = [{"marié": "oui", "enfants": 2, "salaire": 55555}] * 30
    assert 1024 < len(json.dumps(taxpayers)) < 2048 < len(json.dumps(taxpayers * 2))
    client.post(client.url("calculer-impots"), json=taxpayers)
    assert client.last.status_code == 200 and client.body()["état"] == 1500
    client.post(client.url("calculer-impots"), json=taxpayers * 2)
    assert client.last.status_code == 413 and client.body()["réponse"] == [too_large(2048)]
    log = (instance_dir / "logs" / "impots-mysql.log").read_text(encoding="utf-8")
    assert "[MainController] {'action': 'calculer-impots', 'état': 413" in log


def test_a_chunked_body_without_length_is_cut_at_the_limit(make_client) -> None:
    """mod_wsgi passes chunked bodies with no Content-Length and ``wsgi.input_terminated``."""
    client = make_client(max_request_bytes=4096)
    client.start("json")

    def post_chunked(count: int):
        body = json.dumps([{"marié": "oui", "enfants": 2, "salaire": 55555}] * count).encode()
        return client.http.post(
            client.url("calculer-impots"),
            input_stream=io.BytesIO(body),
            content_type="application/json",
            environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
        )

    response = post_chunked(200)
    assert response.request.content_length is None
    assert response.status_code == 413 and response.get_json()["état"] == 413
    response = post_chunked(2)
    assert response.status_code == 200 and response.get_json()["état"] == 1500


def test_a_client_without_session_gets_its_413_in_json_or_as_asked(make_client) -> None:
    client = make_client()
    big = {"user": "u" * 70_000, "password": "p"}
    response = client.http.post(client.url("authentifier-utilisateur"), data=big)
    assert response.status_code == 413 and response.get_json()["état"] == 413
    response = client.http.post(
        client.url("authentifier-utilisateur"), data=big, headers={"Accept": "text/html"}
    )
    assert response.status_code == 413 and response.mimetype == "text/html"


# ---- echoed values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "xml"])
def test_an_8_mb_value_is_echoed_and_logged_cut(make_client, instance_dir: Path, kind: str) -> None:
    client = make_client(max_request_bytes=32 * 2**20)
    client.start(kind)
    before = log_size(instance_dir)
    response = client.post(
        client.url("calculer-impot"),
        data={"marié": "x" * EIGHT_MB, "enfants": "x" * EIGHT_MB, "salaire": "1"},
    )
    assert response.status_code == 400 and len(response.get_data()) < 1000
    messages = client.body()["réponse"]
    assert messages == [
        f"valeur [{CUT}] invalide pour le paramètre [marié (oui/non)]",
        f"valeur [{CUT}] invalide pour le paramètre [enfants (entier>=0)]",
    ]
    assert log_size(instance_dir) - before < 2000


def test_bulk_invalid_objects_are_echoed_cut(make_client, instance_dir: Path) -> None:
    client = make_client(max_request_bytes=32 * 2**20)
    client.start("json")
    before = log_size(instance_dir)
    item = {"marié": "x" * EIGHT_MB, "enfants": [1] * 100_000, "salaire": 10**200, "k" * 1000: None}
    client.post(client.url("calculer-impots"), json=[item])
    assert client.last.status_code == 400 and len(client.last.get_data()) < 2000
    [echoed] = client.body()["réponse"]
    assert echoed["marié"] == CUT
    assert len(echoed["enfants"]) == 101 and len(str(echoed["salaire"])) == 101
    assert echoed["k" * 100 + "…"] is None
    assert echoed["erreur"].startswith(f"clés non autorisées : [{'k' * 100}…]")
    assert log_size(instance_dir) - before < 3000


def test_a_long_url_value_is_echoed_and_logged_cut(make_client, instance_dir: Path) -> None:
    client = make_client()
    before = log_size(instance_dir)
    client.get(client.url("init-session", "t" * 6000))
    assert client.last.status_code == 400
    assert client.body()["réponse"] == [f"paramètre [type={'t' * 100}…] invalide"]
    assert log_size(instance_dir) - before < 1000


def test_the_html_form_is_refilled_with_cut_values(make_client) -> None:
    client = make_client(max_request_bytes=32 * 2**20)
    client.init_session("html")
    client.post(client.url("authentifier-utilisateur"), data={"user": "admin", "password": "admin"})
    client.post(
        client.url("calculer-impot"), data={"marié": "oui", "enfants": "x" * EIGHT_MB, "salaire": "1"}
    )
    assert client.last.status_code == 302
    page = client.get(client.last.headers["Location"]).get_data(as_text=True)
    assert len(page) < 20_000 and f'value="{CUT}"' in page


# ---- nothing big kept before login --------------------------------------------------------------------


def test_a_failed_html_login_with_an_8_mb_name_stores_nothing_big(
    make_client, redis_url: str, instance_dir: Path
) -> None:
    client = make_client(max_request_bytes=32 * 2**20)
    client.init_session("html")
    before = log_size(instance_dir)
    client.post(client.url("authentifier-utilisateur"), data={"user": "u" * EIGHT_MB, "password": "x"})
    assert client.last.status_code == 302
    page = client.get(client.last.headers["Location"]).get_data(as_text=True)
    assert "Echec de l&#39;authentification" in page and 'value="' + "u" * 100 + '…"' in page
    usage = redis_usage(redis_url)
    # The session, and the throttle's counters for the login (hashed in the key name) and the address.
    assert len(usage) == 3 and sum(usage.values()) < 4096, usage
    assert log_size(instance_dir) - before < 2000


def test_an_anonymous_request_stores_nothing(make_client, redis_url: str) -> None:
    client = make_client(max_request_bytes=32 * 2**20)
    client.post(client.url("authentifier-utilisateur"), data={"user": "u" * EIGHT_MB, "password": "x"})
    assert client.last.status_code == 400 and client.body()["état"] == 101
    client.http.set_cookie("session", "an-unknown-session-id")
    client.get(client.url("lister-simulations"))
    assert client.body()["état"] == 101
    assert redis_usage(redis_url) == {}
    assert client.http.get_cookie("session").value == "an-unknown-session-id"  # no new cookie was set


def test_a_failed_json_login_keeps_only_small_keys(make_client, redis_url: str) -> None:
    client: WebClient = make_client(max_request_bytes=32 * 2**20)
    client.init_session("json")
    client.login("u" * EIGHT_MB, "x")
    assert client.last.status_code == 401
    usage = redis_usage(redis_url)
    assert len(usage) == 3 and max(usage.values()) < 1024, usage


def test_anonymous_requests_with_csrf_store_no_session(make_client, redis_url: str) -> None:
    client = make_client(csrf=True)
    for action in ("lister-simulations", "fin-session", "get-admindata"):
        client.get(f"/do/{action}/forged-token")
        assert client.body()["état"] == 101 and "csrf_token" not in client.body()
    assert redis_usage(redis_url) == {}
    client.start("json")  # the way in: init-session-without-csrftoken hands out the first token
    assert len(redis_usage(redis_url)) == 1
