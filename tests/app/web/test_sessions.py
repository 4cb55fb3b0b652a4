"""Sessions: Redis (one key prefix per site) or signed cookies, cookie flags and path, configured secret."""

from __future__ import annotations

import pytest
import redis
from impots import create_app
from impots.config import ConfigError
from webclient import WebClient


def set_cookie(client: WebClient) -> str:
    cookies = [value for value in client.last.headers.getlist("Set-Cookie") if value.startswith("session=")]
    assert len(cookies) == 1, client.last.headers
    return cookies[0]


def share_cookie(source: WebClient, target: WebClient) -> None:
    """Give ``target`` the session cookie of ``source``, as a browser would send it to both."""
    cookie = source.http.get_cookie("session")
    assert cookie is not None
    target.http.set_cookie("session", cookie.value)


def redis_keys(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url)
    try:
        return sorted(key.decode() for key in client.keys("*"))
    finally:
        client.close()


@pytest.mark.parametrize(("mount", "path"), [("", "/"), ("/impots", "/impots")])
def test_cookie_flags_and_path(make_client, mount: str, path: str) -> None:
    client = make_client(mount=mount)
    client.init_session("json")
    cookie = set_cookie(client)
    assert f"Path={path}" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_cookie_is_secure_over_https(make_client) -> None:
    client = make_client()
    client.get("/do/init-session/json", base_url="https://flask-impots-withmysql")
    cookie = set_cookie(client)
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_redis_sessions_are_per_site(make_client, redis_url: str) -> None:
    mysql = make_client("mysql")
    mysql.start("json")
    mysql.post(mysql.url("calculer-impot"), data={"marié": "oui", "enfants": "1", "salaire": "40000"})
    keys = redis_keys(redis_url)
    assert len(keys) == 1 and keys[0].startswith("impots:mysql:session:")
    sid = keys[0].rsplit(":", 1)[1]
    assert sid in set_cookie(mysql)  # the cookie only carries the id

    pgres = make_client("pgres")
    share_cookie(mysql, pgres)  # same browser, same cookie: the other site must not see the session
    pgres.get(pgres.url("lister-simulations"))
    assert pgres.body()["réponse"] == ["action [lister-simulations] demandée par utilisateur non authentifié"]


def test_login_changes_the_session_id(make_client, redis_url: str) -> None:
    client = make_client()
    client.init_session("json")
    before = redis_keys(redis_url)
    client.login()
    after = redis_keys(redis_url)
    assert len(before) == len(after) == 1 and before != after


def test_signed_cookie_sessions(make_client, redis_url: str) -> None:
    client = make_client(with_redissession=False)
    client.start("json")
    client.post(client.url("calculer-impots"), json=[{"marié": "non", "enfants": 0, "salaire": 50000}])
    assert client.body()["état"] == 1500
    client.get(client.url("lister-simulations"))
    assert [item["salaire"] for item in client.body()["réponse"]] == [50000]
    assert redis_keys(redis_url) == []
    client.get(client.url("fin-session"))
    client.init_session("json")
    cookie = set_cookie(client)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


@pytest.mark.parametrize("with_redissession", [True, False])
def test_two_processes_share_sessions_through_the_configured_secret(
    make_app, with_redissession: bool
) -> None:
    """Two apps built from the same configuration (two Apache processes) accept each other's sessions."""
    first = WebClient(make_app("mysql", with_redissession=with_redissession, with_csrftoken=True), csrf=True)
    first.start("json")
    second = WebClient(make_app("mysql", with_redissession=with_redissession, with_csrftoken=True), csrf=True)
    share_cookie(first, second)
    second.token = first.token
    second.get(second.url("lister-simulations"))
    assert second.last.status_code == 200 and second.body()["état"] == 500


def test_refuses_to_start_without_a_secret_key(instance_dir) -> None:
    (instance_dir / "secrets.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="secret_key: missing"):
        create_app("mysql")
    assert create_app("mysql", {"TESTING": True}).config["SECRET_KEY"]


def test_unknown_dbms_is_a_value_error(instance_dir) -> None:
    with pytest.raises(ValueError, match="'oracle'"):
        create_app("oracle")
