"""The date/time example (spec §10): the page, under "/" and under an alias, and through its .wsgi file."""

from __future__ import annotations

import re
import runpy
from datetime import datetime, timedelta
from pathlib import Path

from date_time_server import create_app
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

WSGI_FILE = Path(__file__).resolve().parents[2] / "app" / "date_time_server.wsgi"
STAMP = re.compile(r"<b>Date et heure du moment : </b>(\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})")


def _shown_time(html: str) -> datetime:
    match = STAMP.search(html)
    assert match, html
    return datetime.strptime(match[1], "%d/%m/%y %H:%M:%S")


def test_page_shows_the_local_date_and_time() -> None:
    before = datetime.now().replace(microsecond=0)
    response = create_app().test_client().get("/")
    after = datetime.now()
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    html = response.get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "<title>Date et heure du moment</title>" in html
    assert before <= _shown_time(html) <= after


def test_works_under_an_alias() -> None:
    mounted = DispatcherMiddleware(lambda environ, start: [], {"/show-date-time": create_app()})
    response = Client(mounted).get("/show-date-time/")
    assert response.status_code == 200
    shown = _shown_time(response.get_data(as_text=True))
    assert abs(datetime.now() - shown) < timedelta(minutes=1)
    assert Client(mounted).get("/show-date-time/other").status_code == 404


def test_wsgi_file_exposes_application() -> None:
    namespace = runpy.run_path(str(WSGI_FILE))
    response = Client(namespace["application"]).get("/")
    assert response.status_code == 200
    assert STAMP.search(response.get_data(as_text=True))
