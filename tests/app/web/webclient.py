"""A course-style HTTP client for the web-layer tests (cookies, last CSRF token, JSON/XML parsing)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import xmltodict
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Response


def _not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    return Response("outside the mount point", status=404)(environ, start_response)


class WebClient:
    """A course-style client: ``call(action, *params)`` builds ``mount + prefix + /action[/params][/token]``.

    ``response_type`` decides how bodies are parsed (``json`` or ``xml``); ``last`` is the last response.
    """

    def __init__(self, app: Flask, mount: str = "", prefix: str = "/do", csrf: bool = False) -> None:
        self.app = app
        self.mount = mount
        self.prefix = prefix
        self.csrf = csrf
        self.token: str | None = None
        wsgi = DispatcherMiddleware(_not_found, {mount: app.wsgi_app}) if mount else app.wsgi_app
        self.http = Client(wsgi)
        self.response_type = "json"
        self.last: TestResponse | None = None

    def url(self, action: str, *params: Any, token: bool = True) -> str:
        path = f"{self.mount}{self.prefix}/{action}" + "".join(f"/{param}" for param in params)
        if self.csrf and token and self.token:
            path += f"/{self.token}"
        return path

    def parse(self, response: TestResponse) -> dict[str, Any]:
        text = response.get_data(as_text=True)
        if response.mimetype == "application/xml":
            return xmltodict.parse(text)["root"]
        return json.loads(text)

    def _remember(self, response: TestResponse) -> TestResponse:
        self.last = response
        if self.csrf and response.mimetype in ("application/json", "application/xml"):
            self.token = self.parse(response).get("csrf_token", self.token)
        return response

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self._remember(self.http.get(path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self._remember(self.http.post(path, **kwargs))

    def init_session(self, response_type: str) -> TestResponse:
        """init-session; with CSRF on, through init-session-without-csrftoken, following its redirect."""
        self.response_type = response_type
        if self.csrf:
            first = self.http.get(self.url("init-session-without-csrftoken", response_type, token=False))
            assert first.status_code == 302, first.get_data(as_text=True)
            return self.get(first.headers["Location"])
        return self.get(self.url("init-session", response_type))

    def login(self, user: str = "admin", password: str = "admin") -> TestResponse:
        return self.post(self.url("authentifier-utilisateur"), data={"user": user, "password": password})

    def start(self, response_type: str = "json") -> None:
        """init-session then authenticate as admin, both must succeed."""
        assert self.init_session(response_type).status_code == 200, self.last.get_data(as_text=True)
        assert self.login().status_code == 200, self.last.get_data(as_text=True)

    def body(self) -> dict[str, Any]:
        return self.parse(self.last)


def links_and_actions(html: str) -> list[str]:
    """Every ``href``, ``src`` and form ``action`` of a page."""
    return re.findall(r'(?:href|src|action)="([^"]*)"', html)


class _PageParser(HTMLParser):
    """Collects the anchors (href, text), form actions and image/stylesheet URLs of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[str, str]] = []
        self.forms: list[str] = []
        self.resources: list[str] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a":
            self._href, self._text = values.get("href") or "", []
        elif tag == "form":
            self.forms.append(values.get("action") or "")
        elif tag in ("img", "link", "script"):
            self.resources.append(values.get("src") or values.get("href") or "")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.anchors.append((self._href, "".join(self._text).strip()))
            self._href = None


class Browser:
    """Follows redirects like a browser and remembers every URL it was sent to or shown.

    ``locations``: every Location header received; ``page_urls``: every href/src/action of every page.
    """

    def __init__(self, app: Flask, mount: str = "") -> None:
        wsgi = DispatcherMiddleware(_not_found, {mount: app.wsgi_app}) if mount else app.wsgi_app
        self.http = Client(wsgi)
        self.locations: list[str] = []
        self.page_urls: list[str] = []
        self.history: list[TestResponse] = []
        self.page = ""
        self.parsed = _PageParser()

    def open(self, url: str, method: str = "GET", data: dict[str, str] | None = None) -> TestResponse:
        response = self.http.open(url, method=method, data=data)
        self.history = [response]
        while response.status_code == 302:
            location = response.headers["Location"]
            self.locations.append(location)
            response = self.http.get(location)
            self.history.append(response)
        self.page = response.get_data(as_text=True)
        self.parsed = _PageParser()
        if response.mimetype == "text/html":
            self.parsed.feed(self.page)
            self.page_urls += (
                [href for href, _ in self.parsed.anchors] + self.parsed.forms + self.parsed.resources
            )
        return response

    def link(self, text: str) -> str:
        matches = [href for href, label in self.parsed.anchors if label == text]
        assert matches, f"no link {text!r} on the page: {self.parsed.anchors}"
        return matches[0]

    def submit(self, data: dict[str, str]) -> TestResponse:
        assert len(self.parsed.forms) == 1, self.parsed.forms
        return self.open(self.parsed.forms[0], "POST", data)

    def click(self, text: str) -> TestResponse:
        return self.open(self.link(text))

    @property
    def final_url(self) -> str:
        """The URL of the page shown (the last Location followed)."""
        return self.locations[-1] if len(self.history) > 1 else ""


def free_port() -> int:
    """A TCP port nobody listens on right now (127.0.0.1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
