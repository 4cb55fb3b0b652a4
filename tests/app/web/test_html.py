"""HTML mode (spec §4.5, §5.5, §6): Post/Redirect/Get, views, menus, 151, escaping, mount points.

Every flow runs under each mount point ("" and "/impots", through Werkzeug's DispatcherMiddleware as under
a WSGI alias), each prefix_url ("" and "/do") and with CSRF off and on; every Location header and every
href/src/form action seen must start with the mount point (+ prefix for actions).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest
from flask import Flask
from webclient import Browser

LAYOUTS = list(itertools.product(("", "/impots"), ("", "/do"), (False, True)))


def start_html(make_app: Callable[..., Flask], mount: str, prefix: str, csrf: bool) -> Browser:
    browser = Browser(make_app("mysql", prefix_url=prefix, with_csrftoken=csrf), mount=mount)
    response = browser.open(f"{mount}{prefix}/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    return browser


@pytest.mark.parametrize(("mount", "prefix", "csrf"), LAYOUTS)
def test_whole_html_flow_under_any_mount_point(make_app, mount: str, prefix: str, csrf: bool) -> None:
    base = f"{mount}{prefix}/"
    browser = start_html(make_app, mount, prefix, csrf)
    assert browser.locations[0].startswith(f"{base}init-session/html")
    assert browser.final_url.startswith(f"{base}afficher-vue-authentification")
    assert "Veuillez vous authentifier" in browser.page

    browser.submit({"user": "admin", "password": "admin"})
    assert browser.final_url.startswith(f"{base}afficher-vue-calcul-impot")
    assert "Remplissez le formulaire ci-dessous puis validez-le" in browser.page

    browser.submit({"marié": "oui", "enfants": "2", "salaire": "55555"})
    assert "Montant de l'impôt : 2814 euros" in browser.page

    browser.click("Liste des simulations")
    assert browser.final_url.startswith(f"{base}afficher-vue-liste-simulations")
    assert "Liste de vos simulations" in browser.page
    browser.click("Supprimer")
    assert "Votre liste de simulations est vide" in browser.page

    browser.click("Calcul de l'impôt")
    assert browser.final_url.startswith(f"{base}afficher-vue-calcul-impot")
    browser.click("Fin de session")
    assert [location.removeprefix(base).split("/")[0] for location in browser.locations[-2:]] == [
        "init-session",
        "afficher-vue-authentification",
    ]
    assert "Veuillez vous authentifier" in browser.page

    static = f"{mount}/static/"
    assert browser.locations and browser.page_urls
    for url in browser.locations + browser.page_urls:
        assert url.startswith(static if "/static/" in url else base), url
        if csrf and not url.startswith(static):
            assert re.search(r"/[\w.-]{40,}$", url), f"no CSRF segment in {url}"


def test_views_content(make_app) -> None:
    browser = start_html(make_app, "", "/do", False)
    page = browser.page
    assert '<html lang="fr">' in page and '<meta charset="utf-8">' in page
    assert "<title>Application impôts</title>" in page
    assert 'alt="Cerisier en fleurs"' in page and "Calculez votre impôt" in page
    assert 'href="/static/css/bootstrap.min.css"' in page
    assert "cdn" not in page.lower()
    assert 'name="user"' in page and 'name="password"' in page and "Valider" in page
    assert browser.parsed.anchors == []  # no menu on the authentication view

    browser.submit({"user": "admin", "password": "admin"})
    assert [label for _, label in browser.parsed.anchors] == ["Liste des simulations", "Fin de session"]
    assert 'value="non" checked="checked"' in browser.page  # "Non" preselected on an empty form
    assert 'min="0" step="1"' in browser.page and "Arrondissez à l'euro inférieur" in browser.page

    browser.submit({"marié": "oui", "enfants": "3", "salaire": "100000"})
    for line in (
        "Montant de l'impôt : 9200 euros",
        "Décôte : 0 euros",
        "Réduction : 0 euros",
        "Surcôte : 2180 euros",
        "Taux d'imposition : 30 %",
    ):
        assert line in browser.page.replace("&#39;", "'")
    assert 'value="oui" checked="checked"' in browser.page and 'value="100000"' in browser.page

    browser.click("Liste des simulations")
    assert [label for _, label in browser.parsed.anchors] == [
        "Calcul de l'impôt",
        "Fin de session",
        "Supprimer",
    ]
    headers = re.findall(r"<th>([^<]*)</th>", browser.page)
    assert headers == [
        "#", "Marié", "Nombre d'enfants", "Salaire annuel", "Montant impôt",
        "Surcôte", "Décôte", "Réduction", "Taux", "",
    ]  # fmt: skip


def test_static_assets_are_served(make_app) -> None:
    http = make_app("mysql").test_client()
    css = http.get("/static/css/bootstrap.min.css")
    assert css.status_code == 200 and css.get_data().startswith(b"/*!\n * Bootstrap v4.4.1")
    logo = http.get("/static/images/logo.jpg")
    assert logo.status_code == 200 and logo.get_data()[:3] == b"\xff\xd8\xff"  # a real JPEG


def test_failed_authentication_returns_to_the_form_with_the_login(make_app) -> None:
    browser = start_html(make_app, "", "/do", False)
    browser.submit({"user": "bob", "password": "nope"})
    assert browser.final_url == "/do/afficher-vue-authentification"
    assert "Les erreurs suivantes se sont produites :" in browser.page
    assert "Echec de l&#39;authentification" in browser.page and 'value="bob"' in browser.page


def test_refresh_of_a_view_changes_nothing(make_app) -> None:
    browser = start_html(make_app, "", "/do", False)
    browser.submit({"user": "admin", "password": "admin"})
    browser.submit({"marié": "non", "enfants": "0", "salaire": "40000"})
    url, first = browser.final_url, browser.page
    browser.open(url)
    browser.open(url)
    assert browser.page == first
    browser.click("Liste des simulations")
    assert browser.page.count("Supprimer</a>") == 1  # F5 did not compute again


def test_151_action_not_offered_by_the_view(make_app) -> None:
    browser = start_html(make_app, "", "/do", False)
    browser.submit({"user": "admin", "password": "admin"})
    browser.click("Liste des simulations")  # empty list: deleting is not offered
    browser.open("/do/supprimer-simulation/1")
    assert browser.final_url == "/do/afficher-vue-liste-erreurs"
    assert "Les erreurs inattendues suivantes se sont produites :" in browser.page
    assert "action [supprimer-simulation] incorrecte dans l&#39;environnement actuel" in browser.page
    assert [label for _, label in browser.parsed.anchors] == [
        "Calcul de l'impôt",
        "Liste des simulations",
        "Fin de session",
    ]
    browser.click("Calcul de l'impôt")  # 800: back to an empty form
    assert browser.final_url == "/do/afficher-vue-calcul-impot" and 'value=""' in browser.page


def test_101_in_html_goes_to_the_error_view(make_app) -> None:
    browser = start_html(make_app, "", "/do", False)
    browser.open("/do/lister-simulations")
    assert browser.final_url == "/do/afficher-vue-liste-erreurs"
    assert "action [lister-simulations] demandée par utilisateur non authentifié" in browser.page


def test_301_keeps_the_form_and_lists_the_errors(make_app) -> None:
    browser = start_html(make_app, "", "/do", False)
    browser.submit({"user": "admin", "password": "admin"})
    browser.submit({"marié": "oui", "enfants": "-1", "salaire": "1.5"})
    assert browser.final_url == "/do/afficher-vue-calcul-impot"
    assert "valeur [-1] invalide pour le paramètre [enfants (entier&gt;=0)]" in browser.page
    assert "valeur [1.5] invalide pour le paramètre [salaire (entier&gt;=0)]" in browser.page
    assert 'value="-1"' in browser.page and 'value="1.5"' in browser.page


@pytest.mark.parametrize("field", ["marié", "enfants", "salaire"])
def test_script_in_a_field_comes_back_escaped(make_app, field: str) -> None:
    attack = '<script>alert("x")</script>'
    browser = start_html(make_app, "", "/do", False)
    browser.submit({"user": "admin", "password": "admin"})
    browser.submit({"marié": "oui", "enfants": "1", "salaire": "1", field: attack})
    assert "<script>" not in browser.page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in browser.page


def test_script_in_the_login_comes_back_escaped(make_app) -> None:
    browser = start_html(make_app, "", "/do", False)
    browser.submit({"user": '"><script>alert(1)</script>', "password": "x"})
    assert "<script>" not in browser.page and "&#34;&gt;&lt;script&gt;" in browser.page


def test_html_fin_session_answers_in_html(make_app) -> None:
    browser = start_html(make_app, "", "/do", False)
    browser.submit({"user": "admin", "password": "admin"})
    response = browser.http.get("/do/fin-session")
    assert response.status_code == 302 and response.headers["Location"] == "/do/init-session/html"


def test_switching_from_html_to_json_drops_the_html_model(make_app) -> None:
    """Course bug §12.6: a stale HTML model made later JSON actions fail with 151."""
    browser = start_html(make_app, "", "/do", False)
    browser.submit({"user": "admin", "password": "admin"})  # model of the tax form view
    assert browser.http.get("/do/init-session/json").get_json()["état"] == 700
    for action in ("get-admindata", "lister-simulations", "afficher-vue-liste-simulations"):
        body = browser.http.get(f"/do/{action}").get_json()
        assert body["état"] in (1000, 500, 1200), body


def test_error_etats_601_701_121_show_the_error_view(make_app) -> None:
    browser = Browser(make_app("mysql", with_csrftoken=True))
    browser.open("/do/")
    browser.submit({"user": "admin", "password": "admin"})
    browser.submit({"marié": "non", "enfants": "0", "salaire": "30000"})
    browser.click("Liste des simulations")
    delete_url = browser.link("Supprimer")  # /do/supprimer-simulation/1/<token>
    token = delete_url.rsplit("/", 1)[1]
    steps = [
        (
            delete_url.replace("/supprimer-simulation/1/", "/supprimer-simulation/7/"),
            "la simulation n° [7] n&#39;existe pas",
        ),
        (f"/do/init-session/pdf/{token}", "paramètre [type=pdf] invalide"),
        ("/do/lister-simulations/forged-token", "The CSRF token is invalid."),  # offered by the error view
    ]
    for url, message in steps:
        browser.open(url)
        assert browser.final_url.startswith("/do/afficher-vue-liste-erreurs/"), url
        assert message in browser.page


def test_131_shows_the_error_view(make_app) -> None:
    http = make_app("mysql").test_client()
    http.get("/do/init-session/html")
    http.post("/do/authentifier-utilisateur", data={"user": "admin", "password": "admin"})
    with http.session_transaction() as session:
        session["id_simulation"] = "corrupted"
    response = http.post("/do/calculer-impot", data={"marié": "oui", "enfants": "1", "salaire": "1"})
    assert response.headers["Location"] == "/do/afficher-vue-liste-erreurs"
    page = http.get("/do/afficher-vue-liste-erreurs").get_data(as_text=True)
    assert "Les erreurs inattendues suivantes se sont produites :" in page and "<li>" in page
