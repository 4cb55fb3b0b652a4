"""The HTML application in a real browser (Debian's Chromium driven by Playwright) under the /impots mount
point with CSRF on: forms, radio buttons, menus and the Post/Redirect/Get address bar."""

from __future__ import annotations

import tempfile

from course_client import live_server
from playwright import sync_api as playwright_api

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_html_session_in_chromium(make_app) -> None:
    app = make_app("pgres", with_csrftoken=True)
    with (
        live_server(app, "/impots") as url,
        playwright_api.sync_playwright() as playwright,
        tempfile.TemporaryDirectory() as profile,
    ):
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(f"{url}/impots/do")
            assert "/impots/do/afficher-vue-authentification/" in page.url
            assert page.title() == "Application impôts"
            assert page.evaluate("document.querySelector('img').naturalWidth") > 0  # the logo loaded
            assert page.evaluate("getComputedStyle(document.querySelector('.jumbotron')).paddingTop") != "0px"

            page.fill("#user", "admin")
            page.fill("#password", "admin")
            page.click("button[type=submit]")
            assert "/impots/do/afficher-vue-calcul-impot/" in page.url

            page.check("#marie-oui")
            page.fill("#enfants", "2")
            page.fill("#salaire", "50000")
            page.click("button[type=submit]")
            assert "Montant de l'impôt : 1384 euros" in page.inner_text(".alert-success")
            assert "Taux d'imposition : 14 %" in page.inner_text(".alert-success")

            page.click("text=Liste des simulations")
            assert "/impots/do/afficher-vue-liste-simulations/" in page.url
            assert page.inner_text("tbody tr th") == "1"
            page.click("text=Supprimer")
            assert "Votre liste de simulations est vide" in page.content()

            page.click("text=Fin de session")
            assert "/impots/do/afficher-vue-authentification/" in page.url
            cookies = browser.cookies()
            assert [(cookie["path"], cookie["httpOnly"], cookie["sameSite"]) for cookie in cookies] == [
                ("/impots", True, "Lax")
            ]
        finally:
            browser.close()
