"""A re-implementation of the course's HTTP client DAO (spec §11.1) over real HTTP with ``requests``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import xmltodict
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server


class ClientError(Exception):
    """The course's client errors: 73 = no json/xml session, 35 = the server answered non-200."""

    def __init__(self, code: int, message: Any) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@contextmanager
def live_server(app: Any, mount: str = "") -> Iterator[str]:
    """Serve ``app`` (under ``mount``) with Werkzeug's threaded server on 127.0.0.1; yields the base URL."""
    wsgi = DispatcherMiddleware(lambda env, start: [], {mount: app}) if mount else app
    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def _as_list(value: Any) -> list[Any]:
    """XML turns a one-element list into the element and an empty list into an empty string."""
    if value in (None, ""):
        return []
    return value if isinstance(value, list) else [value]


def _numbers(item: dict[str, Any]) -> dict[str, Any]:
    converted = {}
    for key, value in item.items():
        if key == "marié" or not isinstance(value, str):
            converted[key] = value
        else:
            converted[key] = float(value) if "." in value else int(value)
    return converted


class ImpotsDaoWithHttpSession:
    """``url_server`` = scheme://host[:port] + mount + prefix (e.g. ``http://127.0.0.1:5000/impots/do``)."""

    def __init__(self, url_server: str, with_csrftoken: bool) -> None:
        self.url_server = url_server
        self.with_csrftoken = with_csrftoken
        self.http = requests.Session()
        self.type_response: str | None = None
        self.csrf_token: str | None = None

    def _request(self, method: str, action: str, *params: Any, **kwargs: Any) -> Any:
        if self.type_response not in ("json", "xml"):
            raise ClientError(73, "il n'y a pas de session valide en cours")
        url = "/".join([self.url_server + action, *map(str, params)])
        if self.with_csrftoken and self.csrf_token:
            url += f"/{self.csrf_token}"
        response = self.http.request(method, url, timeout=30, **kwargs)
        if self.type_response == "json" or response.headers["Content-Type"].startswith("application/json"):
            body = response.json()
        else:
            body = xmltodict.parse(response.text[39:])["root"]  # skip the 39-character declaration line
        self.csrf_token = body.get("csrf_token", self.csrf_token)
        if response.status_code != 200:
            raise ClientError(35, body["réponse"])
        return body["réponse"]

    def init_session(self, type_response: str) -> Any:
        if type_response not in ("json", "xml"):
            raise ClientError(73, "il n'y a pas de session valide en cours")
        self.type_response = type_response
        if self.with_csrftoken:
            return self._request("GET", "/init-session-without-csrftoken", type_response)
        return self._request("GET", "/init-session", type_response)

    def authenticate_user(self, user: str, password: str) -> Any:
        return self._request("POST", "/authentifier-utilisateur", data={"user": user, "password": password})

    def calculate_tax(self, marie: str, enfants: int, salaire: int) -> dict[str, Any]:
        data = {"marié": marie, "enfants": enfants, "salaire": salaire}
        return _numbers(self._request("POST", "/calculer-impot", data=data))

    def calculate_tax_in_bulk_mode(self, taxpayers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            _numbers(item) for item in _as_list(self._request("POST", "/calculer-impots", json=taxpayers))
        ]

    def get_simulations(self) -> list[dict[str, Any]]:
        return [_numbers(item) for item in _as_list(self._request("GET", "/lister-simulations"))]

    def delete_simulation(self, numero: int) -> list[dict[str, Any]]:
        return [_numbers(item) for item in _as_list(self._request("GET", "/supprimer-simulation", numero))]

    def get_admindata(self) -> dict[str, Any]:
        data = self._request("GET", "/get-admindata")
        return {
            key: [float(v) for v in value] if isinstance(value, list) else float(value)
            for key, value in data.items()
        }

    def end_session(self) -> Any:
        return self._request("GET", "/fin-session")
