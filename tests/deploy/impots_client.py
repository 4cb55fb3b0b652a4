"""A JSON/XML client of the deployed impôts service (spec §11.1), over verified HTTPS.

Each call returns `(http_status, body)` where `body` is the response dictionary
`{"action", "état", "réponse"}`; XML bodies are parsed back into the same shape (values stay text).
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import requests
import xmltodict
from requests.adapters import HTTPAdapter


class ImpotsClient:
    def __init__(self, session: requests.Session, base_url: str, response_type: str = "json") -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.response_type = response_type

    def _parse(self, response: requests.Response) -> dict[str, Any]:
        content_type = response.headers.get("Content-Type", "")
        if self.response_type == "xml":
            assert content_type.startswith("application/xml"), (
                f"{response.url}: Content-Type {content_type!r}, expected XML; body {response.text[:300]!r}"
            )
            return xmltodict.parse(response.text)["root"]
        assert content_type.startswith("application/json"), (
            f"{response.url}: Content-Type {content_type!r}, expected JSON; body {response.text[:300]!r}"
        )
        return response.json()

    def _call(self, method: str, action: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        response = self.session.request(method, f"{self.base_url}/{action}", timeout=30, **kwargs)
        return response.status_code, self._parse(response)

    def init_session(self) -> tuple[int, dict[str, Any]]:
        return self._call("GET", f"init-session/{self.response_type}")

    def authenticate(self, user: str, password: str) -> tuple[int, dict[str, Any]]:
        return self._call("POST", "authentifier-utilisateur", data={"user": user, "password": password})

    def calculate_many(self, taxpayers: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        body = json.dumps(taxpayers, ensure_ascii=False).encode()
        return self._call(
            "POST", "calculer-impots", data=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )

    def list_simulations(self) -> tuple[int, dict[str, Any]]:
        return self._call("GET", "lister-simulations")

    def delete_simulation(self, number: int) -> tuple[int, dict[str, Any]]:
        return self._call("GET", f"supprimer-simulation/{number}")

    def end_session(self) -> tuple[int, dict[str, Any]]:
        return self._call("GET", "fin-session")


def as_list(value: Any) -> list[Any]:
    """xmltodict gives a single element for a one-item list and nothing for an empty one."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _ContextAdapter(HTTPAdapter):
    """Hands urllib3 an SSL context made here. urllib3 otherwise builds its own from the `ssl.SSLContext`
    it imported first, which recurses forever once gevent has monkey-patched `ssl` (pyinfra_cli does
    on import, and a full `pytest tests/` run imports it through pyinfra_testing)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def https_session(cafile: Path | str | None) -> requests.Session:
    """A requests session trusting only `cafile` (or the system store when None), nothing from env."""
    session = requests.Session()
    # Without this, REQUESTS_CA_BUNDLE from the environment silently replaces `verify`.
    session.trust_env = False
    session.verify = str(cafile) if cafile else True
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    session.mount("https://", _ContextAdapter(context))
    return session
