"""Every action and état of spec §4.4/§4.6 through JSON and XML sessions (real Redis, real MariaDB)."""

from __future__ import annotations

from typing import Any

import pytest
from course_data import expected_simulations, taxpayers
from webclient import WebClient

TYPES = ("json", "xml")


def etat(body: dict[str, Any]) -> int:
    return int(body["état"])


def messages(body: dict[str, Any]) -> list[str]:
    """The réponse as a list (XML turns a one-element list into a single value)."""
    reponse = body["réponse"]
    return reponse if isinstance(reponse, list) else [reponse]


def check(client: WebClient, status: int, expected_etat: int, action: str) -> dict[str, Any]:
    response = client.last
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == f"application/{client.response_type}; charset=utf-8"
    body = client.body()
    assert body["action"] == action
    assert etat(body) == expected_etat
    return body


@pytest.mark.parametrize("kind", TYPES)
def test_init_session_700_and_701(client: WebClient, kind: str) -> None:
    client.init_session(kind)
    body = check(client, 200, 700, "init-session")
    assert messages(body) == [f"session démarrée avec le type de réponse {kind}"]
    client.get(client.url("init-session", "xxx"))
    body = check(client, 400, 701, "init-session")  # answered in the session's type, still `kind`
    assert messages(body) == ["paramètre [type=xxx] invalide"]


def test_701_without_any_session_is_json(client: WebClient) -> None:
    response = client.get(client.url("init-session", "pdf"))
    assert response.status_code == 400 and response.mimetype == "application/json"
    assert client.body() == {
        "action": "init-session",
        "état": 701,
        "réponse": ["paramètre [type=pdf] invalide"],
    }


def test_101_without_session(client: WebClient) -> None:
    client.post(client.url("authentifier-utilisateur"), data={"user": "admin", "password": "admin"})
    body = check(client, 400, 101, "authentifier-utilisateur")
    assert messages(body) == ["pas de session en cours. Commencer par action [init-session]"]
    client.get(client.url("lister-simulations"))
    body = check(client, 400, 101, "lister-simulations")
    assert messages(body) == ["action [lister-simulations] demandée par utilisateur non authentifié"]


@pytest.mark.parametrize("kind", TYPES)
def test_101_not_authenticated(client: WebClient, kind: str) -> None:
    client.init_session(kind)
    for action in ("lister-simulations", "get-admindata", "fin-session", "afficher-calcul-impot"):
        client.get(client.url(action))
        body = check(client, 400, 101, action)
        assert messages(body) == [f"action [{action}] demandée par utilisateur non authentifié"]


@pytest.mark.parametrize("kind", TYPES)
def test_authentication_200_201(client: WebClient, kind: str) -> None:
    client.init_session(kind)
    client.login("x", "y")
    assert messages(check(client, 401, 201, "authentifier-utilisateur")) == ["Echec de l'authentification"]
    client.login("admin", "wrong")
    assert messages(check(client, 401, 201, "authentifier-utilisateur")) == ["Echec de l'authentification"]
    client.post(client.url("authentifier-utilisateur"), data={"user": "admin"})
    assert messages(check(client, 400, 201, "authentifier-utilisateur")) == [
        "méthode POST requise, paramètre [action] dans l'URL, paramètres postés [user, password]"
    ]
    client.post(client.url("authentifier-utilisateur"), data={"user": "admin", "pass": "admin"})
    assert messages(check(client, 400, 201, "authentifier-utilisateur")) == ["paramètre [password] manquant"]
    client.login()
    assert messages(check(client, 200, 200, "authentifier-utilisateur")) == ["Authentification réussie"]
    # A failed re-authentication does not log the user out.
    client.login("admin", "nope")
    check(client, 401, 201, "authentifier-utilisateur")
    client.get(client.url("lister-simulations"))
    check(client, 200, 500, "lister-simulations")


def test_calculer_impot_300_json_shape(client: WebClient) -> None:
    client.start("json")
    client.post(client.url("calculer-impot"), data={"marié": "Oui", "enfants": "2", "salaire": "55555"})
    body = check(client, 200, 300, "calculer-impot")
    assert body["réponse"] == {**expected_simulations()[0], "marié": "oui"}
    assert list(body["réponse"]) == [
        "marié",
        "enfants",
        "salaire",
        "impôt",
        "surcôte",
        "taux",
        "décôte",
        "réduction",
        "id",
    ]


def test_calculer_impot_300_xml(client: WebClient) -> None:
    client.start("xml")
    client.post(client.url("calculer-impot"), data={"marié": "oui", "enfants": "3", "salaire": "100000"})
    body = check(client, 200, 300, "calculer-impot")
    assert body["réponse"] == {
        "marié": "oui", "enfants": "3", "salaire": "100000", "impôt": "9200", "surcôte": "2180",
        "taux": "0.3", "décôte": "0", "réduction": "0", "id": "1",
    }  # fmt: skip


@pytest.mark.parametrize("kind", TYPES)
def test_301(client: WebClient, kind: str) -> None:
    client.start(kind)
    client.post(client.url("calculer-impot"), data={"marié": "peut-être", "enfants": "2", "salaire": "12x"})
    body = check(client, 400, 301, "calculer-impot")
    assert messages(body) == [
        "valeur [peut-être] invalide pour le paramètre [marié (oui/non)]",
        "valeur [12x] invalide pour le paramètre [salaire (entier>=0)]",
    ]
    client.get(client.url("lister-simulations"))
    assert client.body()["réponse"] in ([], "", None)  # nothing was stored


@pytest.mark.parametrize("kind", TYPES)
def test_bulk_1500_then_list_500(client: WebClient, kind: str) -> None:
    client.start(kind)
    client.post(client.url("calculer-impots"), json=taxpayers())
    body = check(client, 200, 1500, "calculer-impots")
    expected = expected_simulations()
    if kind == "json":
        assert body["réponse"] == expected
    else:
        assert [{key: str(value) for key, value in item.items()} for item in expected] == body["réponse"]
    client.get(client.url("lister-simulations"))
    body = check(client, 200, 500, "lister-simulations")
    assert [int(item["id"]) for item in body["réponse"]] == list(range(1, 12))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "le corps du POST n'est pas une chaîne jSON valide : "),
        ("[]", "le corps du POST n'est pas une liste ou alors cette liste est vide"),
        ('{"marié": "oui"}', "le corps du POST n'est pas une liste ou alors cette liste est vide"),
        (
            '[{"marié": "oui", "enfants": 1, "salaire": 1}, 3]',
            "le corps du POST doit être une liste de dictionnaires",
        ),
        pytest.param(
            "[" * 30_000 + "]" * 30_000,  # far deeper than the parser goes, within max_request_bytes
            "le corps du POST n'est pas une chaîne jSON valide : ",
            id="nested-too-deep",  # was état 131 (RecursionError), not a client error
        ),
    ],
)
def test_bulk_1501_bad_bodies(client: WebClient, payload: str, message: str) -> None:
    client.start("json")
    client.post(client.url("calculer-impots"), data=payload, content_type="application/json")
    body = check(client, 400, 1501, "calculer-impots")
    assert len(body["réponse"]) == 1 and body["réponse"][0].startswith(message)


def test_bulk_1501_invalid_objects_are_returned_with_erreur(client: WebClient) -> None:
    client.start("json")
    good = {"marié": "oui", "enfants": 1, "salaire": 30000}
    bad = [
        {"marié": "oui", "enfants": 2},
        {"marié": "oui", "enfants": -1, "salaire": 1},
        {"marié": "oui", "enfants": 1.5, "salaire": 1},
        {"marié": "x", "enfants": 1, "salaire": 1},
        {"marié": "oui", "enfants": 1, "salaire": 1, "id": 4},
        {"marié": "oui", "enfants": True, "salaire": 1},
    ]
    client.post(client.url("calculer-impots"), json=[good, *bad])
    body = check(client, 400, 1501, "calculer-impots")
    returned = body["réponse"]
    assert [{k: v for k, v in item.items() if k != "erreur"} for item in returned] == bad
    assert returned[0]["erreur"] == "le dictionnaire doit inclure les clés [marié, enfants, salaire]"
    assert returned[1]["erreur"] == "valeur [-1] invalide pour le paramètre [enfants (entier>=0)]"
    assert returned[2]["erreur"] == "valeur [1.5] invalide pour le paramètre [enfants (entier>=0)]"
    assert returned[3]["erreur"] == "valeur [x] invalide pour le paramètre [marié (oui/non)]"
    assert "[id]" in returned[4]["erreur"]
    assert returned[5]["erreur"] == "valeur [True] invalide pour le paramètre [enfants (entier>=0)]"
    client.get(client.url("lister-simulations"))
    assert client.body()["réponse"] == []  # all or nothing: the valid one was not stored either


@pytest.mark.parametrize("kind", TYPES)
def test_supprimer_600_601_and_fin_session_400(client: WebClient, kind: str) -> None:
    client.start(kind)
    for salaire in ("50000", "60000"):
        client.post(client.url("calculer-impot"), data={"marié": "non", "enfants": "0", "salaire": salaire})
    client.get(client.url("supprimer-simulation", 1))
    body = check(client, 200, 600, "supprimer-simulation")
    remaining = body["réponse"] if kind == "json" else [body["réponse"]]
    assert [int(item["id"]) for item in remaining] == [2]
    client.get(client.url("supprimer-simulation", 1))
    assert messages(check(client, 400, 601, "supprimer-simulation")) == ["la simulation n° [1] n'existe pas"]
    client.get(client.url("fin-session"))
    assert messages(check(client, 200, 400, "fin-session")) == ["session réinitialisée"]
    # The session is gone: back to JSON and 101.
    response = client.get(client.url("lister-simulations"))
    assert response.mimetype == "application/json" and client.body()["état"] == 101


def test_supprimer_simulation_needs_an_integer(client: WebClient) -> None:
    client.start("json")
    assert client.get(client.url("supprimer-simulation", "abc")).status_code == 404
    assert client.get(client.url("supprimer-simulation", "-1")).status_code == 404


@pytest.mark.parametrize("kind", TYPES)
def test_get_admindata_1000(client: WebClient, kind: str) -> None:
    client.start(kind)
    client.get(client.url("get-admindata"))
    body = check(client, 200, 1000, "get-admindata")
    data = body["réponse"]
    assert [float(value) for value in data["limites"][:4]] == [9964.0, 27519.0, 73779.0, 156244.0]
    assert [float(value) for value in data["coeffr"]] == [0.0, 0.14, 0.3, 0.41, 0.45]
    assert float(data["coeffn"][3]) == pytest.approx(13913.69, abs=0.01)
    assert float(data["plafond_qf_demi_part"]) == 1551.0
    assert float(data["abattement_dixpourcent_min"]) == 437.0
    assert len(data) == 13


@pytest.mark.parametrize("kind", TYPES)
def test_navigation_and_views_800_1100_1200_1300_1400(client: WebClient, kind: str) -> None:
    client.start(kind)
    for action, expected in (
        ("afficher-calcul-impot", 800),
        ("afficher-vue-authentification", 1100),
        ("afficher-vue-liste-simulations", 1200),
        ("afficher-vue-liste-erreurs", 1300),
        ("afficher-vue-calcul-impot", 1400),
    ):
        client.get(client.url(action))
        body = check(client, 200, expected, action)
        assert body["réponse"] in ("", None)


def test_1001_and_1501_outside_json_xml(make_app) -> None:
    """In an HTML session the views never offer these actions (151 first); without a model they answer
    1001/1501, shown on the error view."""
    http = make_app("mysql").test_client()
    http.get("/do/init-session/html")
    http.post("/do/authentifier-utilisateur", data={"user": "admin", "password": "admin"})
    for action, method, expected in (("get-admindata", http.get, 1001), ("calculer-impots", http.post, 1501)):
        with http.session_transaction() as session:
            session.pop("modèle")
        response = method(f"/do/{action}")
        assert response.status_code == 302
        assert response.headers["Location"] == "/do/afficher-vue-liste-erreurs"
        with http.session_transaction() as session:
            assert session["modèle"]["erreurs"] == [
                "cette action n'est possible que pour les sessions json ou xml"
            ]
        page = http.get("/do/afficher-vue-liste-erreurs").get_data(as_text=True)
        assert "cette action n&#39;est possible que pour les sessions json ou xml" in page, expected


def test_unexpected_exception_is_131(make_app) -> None:
    app = make_app("mysql")
    http = app.test_client()
    http.get("/do/init-session/json")
    http.post("/do/authentifier-utilisateur", data={"user": "admin", "password": "admin"})
    with http.session_transaction() as session:
        session["id_simulation"] = "not a number"  # a corrupted session
    response = http.post("/do/calculer-impot", data={"marié": "oui", "enfants": "1", "salaire": "1"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["état"] == 131 and body["action"] == "calculer-impot" and len(body["réponse"]) == 1
    # The server keeps serving.
    assert http.get("/do/lister-simulations").get_json()["état"] == 500


def test_xml_document_shape(client: WebClient) -> None:
    client.init_session("xml")
    text = client.last.get_data(as_text=True)
    assert text == (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<root><action>init-session</action><état>700</état>"
        "<réponse>session démarrée avec le type de réponse xml</réponse></root>"
    )
    client.login()
    client.get(client.url("lister-simulations"))
    assert "<réponse></réponse>" in client.last.get_data(as_text=True)  # an empty list stays visible


def test_json_keeps_accents(client: WebClient) -> None:
    client.init_session("json")
    raw = client.last.get_data()
    assert "état".encode() in raw and b"\\u00e9" not in raw


@pytest.mark.parametrize("key", ["a b", "", "1x", "<x>", "a:b", "@attribut", "#text"])
def test_bulk_1501_in_xml_with_a_key_that_is_no_element_name(client: WebClient, key: str) -> None:
    """An invalid object comes back in XML too: the document stays well-formed and keeps its shape
    (no attribute, no text node), the key that cannot be an element name is named in ``erreur``."""
    client.start("xml")
    client.post(client.url("calculer-impots"), json=[{"marié": "oui", "enfants": 1, "salaire": 1, key: "v"}])
    returned = check(client, 400, 1501, "calculer-impots")["réponse"]  # check() parses the document
    assert set(returned) == {"marié", "enfants", "salaire", "erreur"}
    assert returned["erreur"].startswith(f"clés non autorisées : [{key}]")


def test_xml_stays_well_formed_with_control_characters(client: WebClient) -> None:
    """Characters XML 1.0 cannot carry (a form field may hold any) come back as U+FFFD."""
    client.start("xml")
    client.post(client.url("calculer-impot"), data={"marié": "o\x01ui", "enfants": "1\x00", "salaire": "2"})
    body = check(client, 400, 301, "calculer-impot")
    assert messages(body) == [
        "valeur [o\ufffdui] invalide pour le paramètre [marié (oui/non)]",
        "valeur [1\ufffd] invalide pour le paramètre [enfants (entier>=0)]",
    ]
