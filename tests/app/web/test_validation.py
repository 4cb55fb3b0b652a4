"""Strict validation of calculer-impot (course bug §12.3): every bad input is a 301 with the exact messages,
never a 131 later on."""

from __future__ import annotations

import pytest
from webclient import WebClient
from werkzeug.datastructures import MultiDict

VALID = {"marié": "oui", "enfants": "2", "salaire": "55555"}
FORM_MESSAGE = "méthode POST requise avec les paramètres postés [marié, enfants, salaire]"


def enfants(value: str) -> str:
    return f"valeur [{value}] invalide pour le paramètre [enfants (entier>=0)]"


def salaire(value: str) -> str:
    return f"valeur [{value}] invalide pour le paramètre [salaire (entier>=0)]"


def marie(value: str) -> str:
    return f"valeur [{value}] invalide pour le paramètre [marié (oui/non)]"


CASES = [
    ({"salaire": "12x"}, [salaire("12x")]),
    ({"salaire": "-1"}, [salaire("-1")]),
    ({"salaire": "1.5"}, [salaire("1.5")]),
    ({"salaire": ""}, [salaire("")]),
    ({"salaire": "1e5"}, [salaire("1e5")]),
    ({"salaire": "٣"}, [salaire("٣")]),  # a non-ASCII digit
    ({"salaire": "99999999999999999999"}, [salaire("99999999999999999999")]),  # beyond 2**53
    # Longer than Python's int() accepts; echoed cut to 100 characters.
    ({"salaire": "9" * 5000}, [salaire("9" * 100 + "…")]),
    ({"enfants": "12x"}, [enfants("12x")]),
    ({"enfants": "-1"}, [enfants("-1")]),
    ({"enfants": "1.5"}, [enfants("1.5")]),
    ({"enfants": ""}, [enfants("")]),
    ({"marié": "peut-être"}, [marie("peut-être")]),
    ({"marié": ""}, [marie("")]),
    ({"marié": "ouii"}, [marie("ouii")]),
    ({"marié": "x", "enfants": "y", "salaire": "z"}, [marie("x"), enfants("y"), salaire("z")]),
]


@pytest.mark.parametrize(("changes", "expected"), CASES)
def test_bad_values_are_301(client: WebClient, changes: dict[str, str], expected: list[str]) -> None:
    client.start("json")
    client.post(client.url("calculer-impot"), data={**VALID, **changes})
    assert client.last.status_code == 400
    assert client.body() == {"action": "calculer-impot", "état": 301, "réponse": expected}


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"enfants": "2", "salaire": "55555"}, [FORM_MESSAGE]),  # marié missing
        ({**VALID, "id": "3"}, [FORM_MESSAGE]),  # an extra field
        ({}, [FORM_MESSAGE]),
        ({"mari": "oui", "enfants": "2", "salaire": "55555"}, ["paramètre [marié] manquant"]),
        ({"marié": "oui", "enfant": "2", "salaire": "-3"}, ["paramètre [enfants] manquant", salaire("-3")]),
    ],
)
def test_missing_or_extra_fields_are_301(
    client: WebClient, form: dict[str, str], expected: list[str]
) -> None:
    client.start("json")
    client.post(client.url("calculer-impot"), data=form)
    assert client.last.status_code == 400
    assert client.body() == {"action": "calculer-impot", "état": 301, "réponse": expected}


def test_a_field_posted_twice_is_301(client: WebClient) -> None:
    client.start("json")
    form = MultiDict([("marié", "oui"), ("marié", "non"), ("enfants", "1"), ("salaire", "1")])
    client.post(client.url("calculer-impot"), data=form)
    assert client.body()["état"] == 301 and client.body()["réponse"] == [FORM_MESSAGE]


@pytest.mark.parametrize(
    ("form", "normalized"),
    [
        ({"marié": " NON ", "enfants": "0", "salaire": "100000"}, ("non", 0, 100000)),
        ({"marié": "Oui", "enfants": " 3", "salaire": "0100000 "}, ("oui", 3, 100000)),
    ],
)
def test_accepted_spellings(client: WebClient, form: dict[str, str], normalized: tuple) -> None:
    client.start("json")
    client.post(client.url("calculer-impot"), data=form)
    reponse = client.body()["réponse"]
    assert client.body()["état"] == 300
    assert (reponse["marié"], reponse["enfants"], reponse["salaire"]) == normalized


def test_nothing_is_stored_on_301_and_ids_keep_counting(client: WebClient) -> None:
    client.start("json")
    client.post(client.url("calculer-impot"), data=VALID)
    client.post(client.url("calculer-impot"), data={**VALID, "salaire": "x"})
    client.post(client.url("calculer-impot"), data=VALID)
    client.get(client.url("lister-simulations"))
    assert [item["id"] for item in client.body()["réponse"]] == [1, 2]
