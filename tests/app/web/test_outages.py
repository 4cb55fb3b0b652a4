"""Outages and alerts: database or Redis down → 503 in the session's format, one mail per outage (to a
real SMTP server), recovery when the service is back; HTTP 500 → mail; per-request log lines (spec §8)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import impots.web.controllers
import pytest
import xmltodict
from flask import session
from webclient import Browser, WebClient, free_port

UNAVAILABLE = "le service de calcul de l'impôt est momentanément indisponible : "
DB_DOWN = UNAVAILABLE + "la base de données [{}] n'est pas accessible"
REDIS_DOWN = UNAVAILABLE + "le serveur de sessions ne répond pas"


def read_log(instance_dir: Path, dbms: str = "mysql") -> str:
    return (instance_dir / "logs" / f"impots-{dbms}.log").read_text(encoding="utf-8")


def assert_503(response, kind: str, message: str) -> None:
    assert response.status_code == 503
    text = response.get_data(as_text=True)
    if kind == "json":
        assert response.content_type == "application/json; charset=utf-8"
        body = json.loads(text)
        assert body["état"] == 503 and body["réponse"][0].startswith(message)
    elif kind == "xml":
        assert response.content_type == "application/xml; charset=utf-8"
        body = xmltodict.parse(text)["root"]
        assert body["état"] == "503" and body["réponse"].startswith(message)
    else:
        assert response.content_type == "text/html; charset=utf-8"
        assert message.replace("'", "&#39;") in text and "Cerisier en fleurs" in text
        assert "nav-link" not in text  # no menu: nothing works until the service is back


@pytest.mark.parametrize("dbms", ["mysql", "pgres"])
def test_database_down_at_start_up_then_back(
    make_app, tcp_proxy, smtp_server, instance_dir, mysql_db, pgres_db, dbms: str
) -> None:
    db = {"mysql": mysql_db, "pgres": pgres_db}[dbms]
    proxy = tcp_proxy(db["port"])
    proxy.stop()
    app = make_app(dbms, databases={dbms: {"port": proxy.port}}, IMPOTS_DB_RETRY_SECONDS=0)
    assert len(smtp_server.messages) == 1  # the start-up failure was mailed
    mail = smtp_server.messages[0]
    assert mail["Subject"] == "plantage du serveur de calcul d'impôts"
    assert f"la base de données [{dbms}] n'est pas disponible" in mail.get_content()

    message = DB_DOWN.format(dbms)
    for kind in ("json", "xml", "html"):
        client = WebClient(app)
        assert_503(client.get(client.url("init-session", kind)), kind, message)
    browser = Browser(app)
    assert_503(browser.http.get("/do/", headers={"Accept": "text/html"}), "html", message)
    assert len(smtp_server.messages) == 1  # one mail per outage, however many requests failed
    assert read_log(instance_dir, dbms).count("L'erreur suivante s'est produite : ") >= 4

    proxy.start()
    client = WebClient(app)
    client.start("json")
    client.post(client.url("calculer-impot"), data={"marié": "oui", "enfants": "2", "salaire": "55555"})
    assert client.body()["réponse"]["impôt"] == 2814
    assert "[serveur] connexion à la base de données réussie" in read_log(instance_dir, dbms)
    assert len(smtp_server.messages) == 1


def test_admin_data_outlives_a_later_outage(make_app, tcp_proxy, smtp_server, mysql_db) -> None:
    """Loaded once per process: a database outage after the load changes nothing, and mails nothing."""
    proxy = tcp_proxy(mysql_db["port"])
    client = WebClient(make_app("mysql", databases={"mysql": {"port": proxy.port}}))
    proxy.stop()
    client.start("xml")
    client.get(client.url("get-admindata"))
    assert client.last.status_code == 200 and client.body()["état"] == "1000"
    assert smtp_server.messages == []


def test_database_down_answers_in_the_format_of_an_existing_session(
    make_app, tcp_proxy, smtp_server, mysql_db
):
    """A process restarted while the database is down still knows the sessions kept in Redis: XML here."""
    proxy = tcp_proxy(mysql_db["port"])
    overrides = {"databases": {"mysql": {"port": proxy.port}}, "IMPOTS_DB_RETRY_SECONDS": 0}
    before_restart = WebClient(make_app("mysql", **overrides))
    before_restart.start("xml")
    proxy.stop()
    after_restart = WebClient(make_app("mysql", **overrides))
    after_restart.http.set_cookie("session", before_restart.http.get_cookie("session").value)
    after_restart.response_type = "xml"
    assert_503(after_restart.get(after_restart.url("lister-simulations")), "xml", DB_DOWN.format("mysql"))
    proxy.start()
    after_restart.get(after_restart.url("lister-simulations"))
    assert after_restart.last.status_code == 200 and after_restart.body()["état"] == "500"
    assert len(smtp_server.messages) == 1


def test_retries_are_rate_limited(make_app, tcp_proxy, smtp_server, mysql_db) -> None:
    proxy = tcp_proxy(mysql_db["port"])
    proxy.stop()
    app = make_app("mysql", databases={"mysql": {"port": proxy.port}}, IMPOTS_DB_RETRY_SECONDS=3600)
    proxy.start()
    client = WebClient(app)
    # The database is back, but the last attempt is too recent to try again: still 503, no reconnection storm.
    assert_503(client.get(client.url("init-session", "json")), "json", DB_DOWN.format("mysql"))
    assert len(smtp_server.messages) == 1


def test_redis_unreachable(make_app, instance_dir) -> None:
    app = make_app("mysql", redis={"port": free_port()})
    assert "[serveur] Le serveur Redis n'est pas disponible" in read_log(instance_dir)
    for kind in ("json", "xml", "html"):
        client = WebClient(app)
        assert_503(client.get(client.url("init-session", kind)), kind, REDIS_DOWN)
    browser = Browser(app)
    assert_503(
        browser.http.get("/do/", headers={"Accept": "text/html,application/xml;q=0.9"}), "html", REDIS_DOWN
    )
    # Static files do not need a session.
    assert WebClient(app).http.get("/static/images/logo.jpg").status_code == 200


def test_redis_down_then_back_keeps_the_session(make_app, tcp_proxy, redis_server) -> None:
    proxy = tcp_proxy(redis_server.port)
    client = WebClient(make_app("mysql", redis={"port": proxy.port}))
    client.start("json")
    client.post(client.url("calculer-impot"), data={"marié": "non", "enfants": "1", "salaire": "45000"})
    proxy.stop()
    assert_503(client.get(client.url("lister-simulations")), "json", REDIS_DOWN)
    proxy.start()
    client.get(client.url("lister-simulations"))
    assert client.last.status_code == 200 and [item["salaire"] for item in client.body()["réponse"]] == [
        45000
    ]


def test_http_500_of_an_action_is_mailed(make_app, smtp_server, monkeypatch, instance_dir) -> None:
    def broken_rule(*args, **kwargs):
        raise ArithmeticError("règle de calcul en panne")

    client = WebClient(make_app("mysql"))
    client.start("json")
    monkeypatch.setattr(impots.web.controllers, "compute_tax", broken_rule)  # inject a fault in the tax rule
    client.post(client.url("calculer-impots"), json=[{"marié": "oui", "enfants": 1, "salaire": 1}])
    assert client.last.status_code == 500
    assert client.body() == {
        "action": "calculer-impots",
        "état": 1501,
        "réponse": ["règle de calcul en panne"],
    }
    assert len(smtp_server.messages) == 1
    content = smtp_server.messages[0].get_content()
    assert "[MainController] {'action': 'calculer-impots', 'état': 1501" in content
    assert "[SendAdminMail] Message envoyé à [guest@localhost.com]" in read_log(instance_dir)


def test_unhandled_exception_is_a_mailed_500(make_app, smtp_server) -> None:
    app = make_app("mysql")
    app.add_url_rule("/boom", "boom", lambda: 1 // 0)  # a bug outside the controllers
    response = app.test_client().get("/boom")
    assert response.status_code == 500 and response.get_json()["réponse"] == [
        "erreur interne du serveur ; l'administrateur a été prévenu"
    ]
    assert len(smtp_server.messages) == 1
    assert "ZeroDivisionError" in smtp_server.messages[0].get_content()


def test_unwritable_log_file_is_mailed_and_the_app_serves(make_app, smtp_server, tmp_path) -> None:
    app = make_app("mysql", log_file=str(tmp_path / "missing-folder" / "impots.log"))
    assert len(smtp_server.messages) == 1
    assert "MyException[18" in smtp_server.messages[0].get_content()
    client = WebClient(app)
    client.start("json")
    assert client.last.status_code == 200


def test_each_request_is_logged(client: WebClient, instance_dir) -> None:
    client.start("json")
    log = read_log(instance_dir)
    assert "[MainController] requête : <Request 'http://localhost/do/init-session/json' [GET]>" in log
    assert "[MainController] {'action': 'authentifier-utilisateur', 'état': 200" in log
    assert "password" not in log.split("démarrage du serveur", 1)[1].replace("[user, password]", "")
    first = log.splitlines()[0]
    assert first.endswith(" : [serveur] démarrage du serveur") and ", MainThread : " in first


def test_debug_pause_on_about_half_the_requests(make_client, instance_dir) -> None:
    random.seed(12)  # the pause is random by design; a fixed seed makes the count reproducible
    client = make_client(sleep_time=0.001)
    for _ in range(20):
        client.get(client.url("init-session", "json"))
    pauses = read_log(instance_dir).count("[MainController] pause de 0.001 seconde(s)")
    assert 0 < pauses < 20
    quiet = make_client(sleep_time=0)
    quiet.get(quiet.url("init-session", "json"))
    assert read_log(instance_dir).count("pause de") == pauses


def test_redis_lost_while_saving_the_session_turns_the_answer_into_a_503(
    make_app, tcp_proxy, redis_server
) -> None:
    proxy = tcp_proxy(redis_server.port)
    app = make_app("mysql", redis={"port": proxy.port})

    def cut_redis_then_write_session() -> str:  # Redis goes away between reading and saving the session
        proxy.stop()
        session["typeResponse"] = "xml"
        return "this answer must not reach the client"

    app.add_url_rule("/cut", "cut", cut_redis_then_write_session)
    response = app.test_client().get("/cut")
    assert_503(response, "xml", REDIS_DOWN)
