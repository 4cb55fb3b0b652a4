"""The course's date/time example (spec §10): one page showing the server's local date and time."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, render_template


def create_app() -> Flask:
    """A Flask app whose ``GET /`` renders ``date_time_server.html`` with the local date and time.

    The page has no link, so it works unchanged under any mount point (``WSGIScriptAlias``).
    """
    app = Flask(__name__)

    @app.get("/")
    def date_time() -> str:
        page = {"date_heure": datetime.now().strftime("%d/%m/%y %H:%M:%S")}
        return render_template("date_time_server.html", page=page)

    return app
