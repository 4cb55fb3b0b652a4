"""The HTML flow in a real headless Chromium under /impots: authenticate, compute, list, delete, end.

The browser trusts the deploy's CA through an NSS database (no certificate error is ignored), and
resolves the site through the hosts block the deploy wrote.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from deploy_harness import IMPOTS_ALIAS, IMPOTS_SITES, PREFIX_URL
from playwright.sync_api import Error as PlaywrightError

pytestmark = pytest.mark.deploy

SITE = IMPOTS_SITES[0]
UNDER = f"{IMPOTS_ALIAS}{PREFIX_URL}/"


def view_path(page) -> str:
    return urlparse(page.url).path


def assert_links_stay_under_the_mount_point(page) -> None:
    """Every link and form of the page points under /impots/do (static files under /impots/static)."""
    targets = page.eval_on_selector_all(
        "a[href], form[action]", "els => els.map(e => e.getAttribute('href') ?? e.getAttribute('action'))"
    )
    assets = page.eval_on_selector_all(
        "img[src], link[href], script[src]",
        "els => els.map(e => e.getAttribute('src') ?? e.getAttribute('href'))",
    )
    wrong = [t for t in targets if not urlparse(t).path.startswith(UNDER)]
    wrong += [a for a in assets if not urlparse(a).path.startswith(f"{IMPOTS_ALIAS}/")]
    assert not wrong, f"{page.url}: URLs outside {IMPOTS_ALIAS}: {wrong}"


def test_browser_refuses_the_site_without_the_deploy_ca(open_browser) -> None:
    # The flow below passes TLS only because the browser trusts the deploy's CA, not by accident.
    page = open_browser(trust_ca=False).new_page()
    with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
        page.goto(f"https://{SITE}{IMPOTS_ALIAS}{PREFIX_URL}")


def test_html_flow_in_a_real_browser(open_browser) -> None:
    page = open_browser().new_page()
    requests_seen: list[tuple[str, str]] = []
    page.on("request", lambda request: requests_seen.append((request.resource_type, request.url)))
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))

    response = page.goto(f"https://{SITE}{IMPOTS_ALIAS}{PREFIX_URL}")
    assert response is not None and response.ok, f"{page.url}: {response and response.status}"
    assert view_path(page) == f"{UNDER}afficher-vue-authentification"
    assert page.title() == "Application impôts"
    assert "Veuillez vous authentifier" in page.content()
    assert page.locator("img[alt='Cerisier en fleurs']").evaluate("img => img.naturalWidth") > 0
    assert_links_stay_under_the_mount_point(page)

    page.fill("#user", "admin")
    page.fill("#password", "admin")
    page.get_by_role("button", name="Valider").click()
    page.wait_for_load_state()
    assert view_path(page) == f"{UNDER}afficher-vue-calcul-impot"
    assert "Remplissez le formulaire ci-dessous puis validez-le" in page.content()
    assert_links_stay_under_the_mount_point(page)

    page.check("input[name='marié'][value='oui']")
    page.fill("input[name='enfants']", "2")
    page.fill("input[name='salaire']", "55555")
    page.get_by_role("button", name="Valider").click()
    page.wait_for_load_state()
    assert view_path(page) == f"{UNDER}afficher-vue-calcul-impot"
    text = page.inner_text("body")
    for line in (
        "Montant de l'impôt : 2814 euros",
        "Décôte : 0 euros",
        "Réduction : 0 euros",
        "Surcôte : 0 euros",
    ):
        assert line in text, f"{line!r} not in the result page:\n{text}"
    assert re.search(r"Taux d'imposition : 14(\.0+)? %", text), text

    page.get_by_role("link", name="Liste des simulations").click()
    page.wait_for_load_state()
    assert view_path(page) == f"{UNDER}afficher-vue-liste-simulations"
    assert "Liste de vos simulations" in page.content()
    rows = page.locator("table tbody tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert "55555" in row and "2814" in row, row
    assert_links_stay_under_the_mount_point(page)

    page.get_by_role("link", name="Supprimer").click()
    page.wait_for_load_state()
    assert view_path(page) == f"{UNDER}afficher-vue-liste-simulations"
    assert "Votre liste de simulations est vide" in page.content()

    page.get_by_role("link", name="Fin de session").click()
    page.wait_for_load_state()
    assert view_path(page) == f"{UNDER}afficher-vue-authentification"
    assert "Veuillez vous authentifier" in page.content()

    assert not failed, f"requests that failed: {failed}"
    documents = [url for kind, url in requests_seen if kind == "document"]
    assert documents, "no page was requested"
    # The address typed first is the mount point itself (/impots/do); every later page is under it.
    outside = [url for url in documents[1:] if not urlparse(url).path.startswith(UNDER)]
    assert not outside, f"pages outside {UNDER}: {outside}"
    # The lab network has no Internet: every asset (Bootstrap, the banner) must come from the site itself.
    foreign = [url for _, url in requests_seen if urlparse(url).hostname != SITE]
    assert not foreign, f"requests to other hosts: {foreign}"
