"""The course's client programs (spec §2.3, §11.2) against the app served over real HTTP (threaded Werkzeug
server on 127.0.0.1), with both databases, JSON and XML, CSRF on and off, any prefix and mount point."""

from __future__ import annotations

import random
import threading

import pytest
from course_client import ClientError, ImpotsDaoWithHttpSession, live_server
from course_data import VECTORS, expected_simulations, taxpayers
from impots.tax.admin_data import AdminData
from impots.tax.rules import compute_tax

CONFIGURATIONS = [
    # dbms, response type, csrf, mount, prefix
    ("mysql", "json", False, "", "/do"),
    ("mysql", "xml", True, "/impots", "/do"),
    ("pgres", "json", True, "", ""),
    ("pgres", "xml", False, "/impots", ""),
]


@pytest.mark.parametrize(("dbms", "kind", "csrf", "mount", "prefix"), CONFIGURATIONS)
def test_main3_bulk_list_delete_every_other(make_app, dbms, kind, csrf, mount, prefix) -> None:
    app = make_app(dbms, prefix_url=prefix, with_csrftoken=csrf)
    with live_server(app, mount) as url:
        dao = ImpotsDaoWithHttpSession(f"{url}{mount}{prefix}", csrf)
        dao.init_session(kind)
        dao.authenticate_user("admin", "admin")
        assert dao.calculate_tax_in_bulk_mode(taxpayers()) == expected_simulations()
        simulations = dao.get_simulations()
        assert [item["id"] for item in simulations] == list(range(1, 12))
        for simulation in simulations[0::2]:
            remaining = dao.delete_simulation(simulation["id"])
            assert simulation["id"] not in [item["id"] for item in remaining]
        assert [item["id"] for item in dao.get_simulations()] == [2, 4, 6, 8, 10]
        with pytest.raises(ClientError) as error:
            dao.delete_simulation(100)
        assert error.value.code == 35
        assert error.value.message in (
            ["la simulation n° [100] n'existe pas"],
            "la simulation n° [100] n'existe pas",
        )
        assert dao.end_session() == "session réinitialisée"


@pytest.mark.parametrize("csrf", [False, True])
@pytest.mark.parametrize("kind", ["json", "xml"])
def test_test2_http_client_dao_with_session(make_app, kind: str, csrf: bool) -> None:
    """The 7 cases of Test2HttpClientDaoWithSession."""
    app = make_app("mysql", with_csrftoken=csrf)
    with live_server(app) as url:
        server = f"{url}/do"
        # 1, 2: init json / xml
        for response_type in ("json", "xml"):
            assert ImpotsDaoWithHttpSession(server, csrf).init_session(response_type) == (
                [f"session démarrée avec le type de réponse {response_type}"]
                if response_type == "json"
                else f"session démarrée avec le type de réponse {response_type}"
            )
        # 3: init xxx fails (client side, code 73)
        with pytest.raises(ClientError) as error:
            ImpotsDaoWithHttpSession(server, csrf).init_session("xxx")
        assert error.value.code == 73
        # 4: admin/admin
        dao = ImpotsDaoWithHttpSession(server, csrf)
        dao.init_session(kind)
        assert dao.authenticate_user("admin", "admin") == "Authentification réussie"
        # 5: x/y fails
        other = ImpotsDaoWithHttpSession(server, csrf)
        other.init_session(kind)
        with pytest.raises(ClientError) as error:
            other.authenticate_user("x", "y")
        assert error.value.message in (["Echec de l'authentification"], "Echec de l'authentification")
        # 6: one calculation then exactly one simulation
        dao.calculate_tax("oui", 2, 55555)
        (simulation,) = dao.get_simulations()
        assert abs(simulation["impôt"] - 2815) <= 1
        assert (simulation["décôte"], simulation["réduction"], simulation["surcôte"]) == (0, 0, 0)
        assert simulation["taux"] == pytest.approx(0.14, abs=0.01)
        # 7: calculate, delete, empty list; deleting 100 fails
        dao.delete_simulation(simulation["id"])
        assert dao.get_simulations() == []
        with pytest.raises(ClientError):
            dao.delete_simulation(100)


@pytest.mark.parametrize("dbms", ["mysql", "pgres"])
def test_main_threads_with_random_chunks(make_app, dbms: str) -> None:
    """main: chunks of 1-4 taxpayers, one thread (and one session) each: init, auth, bulk, end."""
    app = make_app(dbms)
    chunks, rest, rng = [], list(enumerate(taxpayers())), random.Random(17)
    while rest:
        size = rng.randint(1, 4)
        chunks.append(rest[:size])
        rest = rest[size:]
    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def work(chunk, kind: str, url: str) -> None:
        try:
            dao = ImpotsDaoWithHttpSession(f"{url}/do", False)
            dao.init_session(kind)
            dao.authenticate_user("admin", "admin")
            answers = dao.calculate_tax_in_bulk_mode([taxpayer for _, taxpayer in chunk])
            assert [answer["id"] for answer in answers] == list(range(1, len(chunk) + 1))  # ids per session
            for (rank, _), answer in zip(chunk, answers, strict=True):
                results[rank] = answer
            dao.end_session()
        except BaseException as error:  # noqa: BLE001 (reported by the main thread)
            errors.append(error)

    with live_server(app) as url:
        threads = [
            threading.Thread(target=work, args=(chunk, ("json", "xml")[index % 2], url))
            for index, chunk in enumerate(chunks)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    expected = expected_simulations()
    assert [{**results[rank], "id": rank + 1} for rank in range(len(VECTORS))] == expected


def test_main2_admindata_then_local_computation(make_app) -> None:
    app = make_app("pgres", with_csrftoken=True)
    with live_server(app, "/impots") as url:
        dao = ImpotsDaoWithHttpSession(f"{url}/impots/do", True)
        dao.init_session("xml")
        dao.authenticate_user("admin", "admin")
        admin = AdminData.from_mapping(dao.get_admindata())
        dao.end_session()
    for marie, enfants, salaire, impot, surcote, decote, reduction, taux in VECTORS:
        result = compute_tax(admin, marie == "oui", enfants, salaire).to_dict()
        assert (result["impôt"], result["surcôte"], result["décôte"], result["réduction"]) == (
            impot,
            surcote,
            decote,
            reduction,
        )
        assert result["taux"] == taux
