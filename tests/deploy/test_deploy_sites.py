"""Every site answers over HTTPS, with its certificate verified against the deploy's CA."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
import requests
from deploy_harness import DATE_TIME_SITE, IMPOTS_ALIAS, IMPOTS_SITES, PREFIX_URL, https_session

pytestmark = pytest.mark.deploy


@pytest.mark.parametrize("site", IMPOTS_SITES)
def test_impots_site_answers_over_verified_https(https: requests.Session, site: str) -> None:
    url = f"https://{site}{IMPOTS_ALIAS}{PREFIX_URL}/init-session/json"
    response = https.get(url, timeout=30)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]!r}"
    assert response.json() == {
        "action": "init-session",
        "état": 700,
        "réponse": ["session démarrée avec le type de réponse json"],
    }


@pytest.mark.parametrize("site", IMPOTS_SITES)
def test_impots_root_redirects_under_the_mount_point(https: requests.Session, site: str) -> None:
    url = f"https://{site}{IMPOTS_ALIAS}{PREFIX_URL}/"
    response = https.get(url, timeout=30, allow_redirects=False)
    assert response.status_code == 302, f"{url}: {response.status_code} {response.text[:300]!r}"
    location = urlparse(response.headers["Location"]).path
    assert location == f"{IMPOTS_ALIAS}{PREFIX_URL}/init-session/html"


def test_date_time_site_answers_over_verified_https(https: requests.Session) -> None:
    url = f"https://{DATE_TIME_SITE}/"
    response = https.get(url, timeout=30)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]!r}"
    assert "Date et heure du moment" in response.text


@pytest.mark.parametrize("site", [*IMPOTS_SITES, DATE_TIME_SITE])
def test_certificate_is_not_trusted_without_the_deploy_ca(deployed, site: str) -> None:
    # The system's CA store must not know the local CA: the verified answers above come from it alone.
    with https_session(None) as system_store, pytest.raises(requests.exceptions.SSLError):
        system_store.get(f"https://{site}/", timeout=30)


@pytest.mark.parametrize("site", [*IMPOTS_SITES, DATE_TIME_SITE])
def test_site_names_resolve_through_the_hosts_block(deployed, site: str) -> None:
    import socket

    assert socket.gethostbyname(site) == "127.0.0.1"


@pytest.mark.parametrize("site", [*IMPOTS_SITES, DATE_TIME_SITE])
def test_plain_http_sends_to_https(deployed, site: str) -> None:
    with https_session(None) as session:
        response = session.get(f"http://{site}/impots/do/", timeout=30, allow_redirects=False)
    assert response.status_code in (301, 302, 307, 308), f"http://{site}/: {response.status_code}"
    assert response.headers["Location"].startswith(f"https://{site}/"), response.headers["Location"]
