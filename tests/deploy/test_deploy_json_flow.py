"""The console clients' session flows of spec §11.2 (main3) against the deployed sites, over HTTPS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from deploy_harness import IMPOTS_ALIAS, IMPOTS_SITES, PREFIX_URL
from impots_client import ImpotsClient, as_list

pytestmark = pytest.mark.deploy

VECTORS = json.loads(Path("/work/shared/spec/course-vectors.json").read_text(encoding="utf-8"))
INPUT_KEYS = ("marié", "enfants", "salaire")
RESULT_KEYS = ("marié", "enfants", "salaire", "impôt", "surcôte", "décôte", "réduction", "taux")
ODD_IDS = [1, 3, 5, 7, 9, 11]
EVEN_IDS = [2, 4, 6, 8, 10]


def typed(simulation: dict) -> dict:
    """A simulation with numbers as numbers (XML gives text), keyed like the course vectors."""
    out = {"id": int(simulation["id"]), "marié": simulation["marié"]}
    for key in ("enfants", "salaire", "impôt", "surcôte", "décôte", "réduction"):
        out[key] = int(simulation[key])
    out["taux"] = round(float(simulation["taux"]), 6)
    return out


def expected_simulations(ids: list[int]) -> list[dict]:
    return [{**vector, "taux": float(vector["taux"])} for vector in VECTORS if vector["id"] in ids]


def run_main3_flow(client: ImpotsClient) -> None:
    """init-session → authenticate → calculer-impots (11) → lister → delete every other → fin-session."""
    status, body = client.init_session()
    assert (status, int(body["état"])) == (200, 700), body

    status, body = client.authenticate("admin", "admin")
    assert (status, int(body["état"])) == (200, 200), body
    assert body["réponse"] == "Authentification réussie"

    status, body = client.calculate_many([{key: v[key] for key in INPUT_KEYS} for v in VECTORS])
    assert (status, int(body["état"])) == (200, 1500), body
    results = [typed(item) for item in as_list(body["réponse"])]
    assert results == expected_simulations(list(range(1, 12)))

    status, body = client.list_simulations()
    assert (status, int(body["état"])) == (200, 500), body
    assert [typed(item) for item in as_list(body["réponse"])] == results

    remaining = list(range(1, 12))
    for number in ODD_IDS:
        status, body = client.delete_simulation(number)
        assert (status, int(body["état"])) == (200, 600), body
        remaining.remove(number)
        assert [typed(item) for item in as_list(body["réponse"])] == expected_simulations(remaining)
    assert remaining == EVEN_IDS

    status, body = client.delete_simulation(100)
    assert (status, int(body["état"])) == (400, 601), body
    assert as_list(body["réponse"]) == ["la simulation n° [100] n'existe pas"]

    status, body = client.list_simulations()
    assert [typed(item) for item in as_list(body["réponse"])] == expected_simulations(EVEN_IDS)

    status, body = client.end_session()
    assert (status, int(body["état"])) == (200, 400), body
    assert body["réponse"] == "session réinitialisée"

    # The session is really gone: the next action is refused, in JSON since no session type is left.
    response = client.session.get(f"{client.base_url}/lister-simulations", timeout=30)
    assert (response.status_code, response.json()["état"]) == (400, 101), response.text


@pytest.mark.parametrize("site", IMPOTS_SITES)
def test_json_flow_on_each_database_site(https: requests.Session, site: str) -> None:
    run_main3_flow(ImpotsClient(https, f"https://{site}{IMPOTS_ALIAS}{PREFIX_URL}", "json"))


def test_xml_flow(https: requests.Session) -> None:
    run_main3_flow(ImpotsClient(https, f"https://{IMPOTS_SITES[0]}{IMPOTS_ALIAS}{PREFIX_URL}", "xml"))


def test_wrong_credentials_are_refused(https: requests.Session) -> None:
    client = ImpotsClient(https, f"https://{IMPOTS_SITES[1]}{IMPOTS_ALIAS}{PREFIX_URL}", "json")
    client.init_session()
    status, body = client.authenticate("x", "y")
    assert (status, body["état"], body["réponse"]) == (401, 201, ["Echec de l'authentification"])
