"""Checks one fleet host's sites from the controller side; run inside the fleet's namespace.

`python site_checks.py ADDRESS CAFILE [--json-flow]` prints {"site or flow": "ok" | "problem"} as JSON and
exits 1 when anything failed. Every site is fetched over HTTPS verified with the host's own CA only; with
--json-flow the JSON session flow (login, calculate, list, delete) runs on both database sites.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from impots_client import ImpotsClient, as_list, https_session  # noqa: E402

SITES = {  # the default sites (provisioning.settings.DEFAULT_SITES) and the text their page shows
    "https://flask-impots-withmysql/impots/do/": "Calculez votre impôt",
    "https://flask-impots-withpgres/impots/do/": "Calculez votre impôt",
    "https://date-time-server/": "Date et heure du moment",
}
DB_SITES = ("https://flask-impots-withmysql/impots/do", "https://flask-impots-withpgres/impots/do")
TAXPAYERS = [
    {"marié": "oui", "enfants": 2, "salaire": 55555},
    {"marié": "non", "enfants": 0, "salaire": 30000},
]


def pin_names_to(address: str) -> None:
    """The sites' names resolve to this host only (what its hosts-file block does on the host itself)."""
    original = socket.getaddrinfo
    names = {url.split("/")[2] for url in SITES}

    def getaddrinfo(host: str, *args: Any, **kwargs: Any):
        return original(address if host in names else host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def json_flow(client: ImpotsClient) -> None:
    def expect(call, state: int) -> dict:
        status, body = call
        assert status == 200 and int(body["état"]) == state, (status, body)
        return body

    expect(client.init_session(), 700)
    expect(client.authenticate("admin", "admin"), 200)
    results = as_list(expect(client.calculate_many(TAXPAYERS), 1500)["réponse"])
    assert [r["salaire"] for r in results] == [55555, 30000], results
    listed = as_list(expect(client.list_simulations(), 500)["réponse"])
    assert len(listed) == 2, listed
    remaining = as_list(expect(client.delete_simulation(int(listed[0]["id"])), 600)["réponse"])
    assert [r["id"] for r in remaining] == [listed[1]["id"]], remaining
    expect(client.end_session(), 400)


def main(argv: list[str]) -> int:
    address, cafile, *options = argv
    pin_names_to(address)
    https = https_session(cafile)
    outcome: dict[str, str] = {}
    for url, text in SITES.items():
        try:
            response = https.get(url, timeout=30)
            ok = response.status_code == 200 and text in response.text
            outcome[url] = "ok" if ok else f"HTTP {response.status_code}, {text!r} not in the page"
        except requests.RequestException as error:
            outcome[url] = f"{type(error).__name__}: {error}"
    if "--json-flow" in options:
        for base in DB_SITES:
            try:
                json_flow(ImpotsClient(https_session(cafile), base, "json"))
                outcome[f"{base} JSON flow"] = "ok"
            except (AssertionError, requests.RequestException, ValueError) as error:
                outcome[f"{base} JSON flow"] = f"{type(error).__name__}: {error}"
    print(json.dumps(outcome, ensure_ascii=False))
    return 0 if all(value == "ok" for value in outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
