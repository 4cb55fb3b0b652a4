"""Login throttling in Redis (issue 8): per login and per client address, a growing wait after repeated
failures, état 429 / HTTP 429 in the session's format, a success clears the login; fail open without Redis."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from impots.web.throttle import LoginThrottle, ThrottleSettings
from redis.backoff import NoBackoff
from redis.retry import Retry
from webclient import WebClient, free_port

TOO_MANY = "trop de tentatives de connexion échouées : réessayez dans {} seconde(s)"
FAILED = ["Echec de l'authentification"]


def throttle_settings(**changes: Any) -> dict[str, Any]:
    settings = {
        "enabled": True,
        "max_failures_per_login": 5,
        "max_failures_per_address": 20,
        "window_seconds": 900,
        "first_delay_seconds": 60,
        "max_delay_seconds": 300,
    }
    return {**settings, **changes}


def login_as(client: WebClient, user: str, password: str, address: str = "127.0.0.1", **headers: str):
    return client.post(
        client.url("authentifier-utilisateur"),
        data={"user": user, "password": password},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def read_log(instance_dir: Path) -> str:
    return (instance_dir / "logs" / "impots-mysql.log").read_text(encoding="utf-8")


# ---- through the application --------------------------------------------------------------------------


def test_five_failures_make_the_next_attempt_wait_then_a_success_clears_the_login(make_client) -> None:
    client = make_client(login_throttle=throttle_settings(first_delay_seconds=0.5))
    client.init_session("json")
    for _ in range(5):
        assert login_as(client, "admin", "wrong").status_code == 401
        assert client.body()["réponse"] == FAILED
    response = login_as(client, "admin", "admin")  # even the right password waits
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert client.body() == {
        "action": "authentifier-utilisateur",
        "état": 429,
        "réponse": [TOO_MANY.format(1)],
    }
    client.get(client.url("lister-simulations"))
    assert client.body()["état"] == 101  # not logged in

    threading.Event().wait(0.6)
    assert login_as(client, "admin", "admin").status_code == 200
    # The success cleared the login's counter: five new failures are allowed before a wait.
    for _ in range(5):
        assert login_as(client, "admin", "wrong").status_code == 401
    assert login_as(client, "admin", "admin").status_code == 429


@pytest.mark.parametrize("kind", ["xml", "html"])
def test_429_in_the_session_format(make_client, kind: str) -> None:
    client = make_client(login_throttle=throttle_settings(max_failures_per_login=1))
    client.init_session(kind)
    login_as(client, "admin", "wrong")
    response = login_as(client, "admin", "admin")
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    if kind == "xml":
        assert client.body()["état"] == "429" and client.body()["réponse"] == TOO_MANY.format(60)
    else:  # the login form again, with the message: no redirect, which would lose the 429
        page = response.get_data(as_text=True)
        assert response.mimetype == "text/html" and TOO_MANY.format(60) in page
        assert 'name="password"' in page and 'value="admin"' in page


def test_per_address_whatever_the_login_and_x_forwarded_for(make_client) -> None:
    client = make_client(login_throttle=throttle_settings(max_failures_per_address=3))
    client.init_session("json")
    for number in range(3):
        assert login_as(client, f"guess{number}", "x").status_code == 401
    assert login_as(client, "guess3", "x").status_code == 429
    # A forged X-Forwarded-For does not make another client of the same connection address.
    assert login_as(client, "guess4", "x", **{"X-Forwarded-For": "198.18.0.9"}).status_code == 429
    # Another address is not slowed down by this one (nor is the login "admin", never tried here).
    assert login_as(client, "guess5", "x", address="127.0.0.2").status_code == 401
    assert login_as(client, "admin", "admin", address="127.0.0.3").status_code == 200


def run_in_parallel(clients: list[WebClient], user: str, password: str) -> list[int]:
    """Every client tries to log in at the same moment; returns the HTTP statuses."""
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def login(client: WebClient) -> None:
        start.wait()
        statuses.append(login_as(client, user, password).status_code)

    threads = [threading.Thread(target=login, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_concurrent_logins_are_not_throttled_but_a_burst_of_guesses_is(make_client) -> None:
    """The course's clients log in from many threads at once (spec §11.2 main): never refused for that."""
    app_client = make_client(login_throttle=throttle_settings())
    clients = [WebClient(app_client.app) for _ in range(20)]
    for client in clients:
        client.init_session("json")
    assert run_in_parallel(clients, "admin", "admin") == [200] * 20
    statuses = run_in_parallel(clients, "admin", "wrong")
    assert set(statuses) <= {401, 429} and statuses.count(401) >= 5
    assert login_as(clients[0], "admin", "admin").status_code == 429


@pytest.mark.parametrize(
    "overrides",
    [{"with_redissession": False}, {"login_throttle": {"enabled": False}}],
    ids=["cookie-sessions", "disabled"],
)
def test_without_redis_or_disabled_logins_are_not_throttled(
    make_client, instance_dir: Path, overrides: dict[str, Any]
) -> None:
    client = make_client(**overrides)
    client.init_session("json")
    for _ in range(12):
        assert login_as(client, "admin", "wrong").status_code == 401
    assert login_as(client, "admin", "admin").status_code == 200
    assert "[serveur] limitation des tentatives de connexion désactivée" in read_log(instance_dir)


# ---- the throttle itself, on the real Redis, with a clock the test moves ------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_throttle(redis_url: str, clock: Clock, lines: list[str], **changes: Any) -> LoginThrottle:
    settings = ThrottleSettings.from_config(
        throttle_settings(first_delay_seconds=1, max_delay_seconds=5, **changes)
    )
    client = redis.Redis.from_url(redis_url)
    return LoginThrottle(client, settings, key_prefix="test:throttle:", log=lines.append, clock=clock)


def test_the_wait_doubles_and_is_capped(redis_url: str) -> None:
    clock, lines = Clock(), []
    throttle = make_throttle(redis_url, clock, lines)
    for _ in range(5):
        assert throttle.wait("admin", "127.0.0.1") == 0
        throttle.failed("admin", "127.0.0.1")
    waits = []
    for _ in range(6):
        wait = throttle.wait("admin", "127.0.0.1")
        waits.append(wait)
        clock.now += wait
        assert throttle.wait("admin", "127.0.0.1") == 0  # after the wait: tried (and failed) again
        throttle.failed("admin", "127.0.0.1")
    assert waits == [1, 2, 4, 5, 5, 5]
    assert lines == []


def test_a_right_password_checked_while_failures_locked_the_login_is_refused(redis_url: str) -> None:
    """A burst of parallel guesses: all passed ``wait``; the right one finishes after five wrong ones."""
    clock, lines = Clock(), []
    throttle = make_throttle(redis_url, clock, lines)
    assert [throttle.wait("admin", "127.0.0.1") for _ in range(6)] == [0] * 6
    for _ in range(5):
        throttle.failed("admin", "127.0.0.1")
    assert throttle.succeeded("admin", "127.0.0.1") == 1
    clock.now += 1
    assert throttle.succeeded("admin", "127.0.0.1") == 0  # after the wait the right password gets in


def test_a_success_clears_the_login_not_the_address(redis_url: str) -> None:
    clock, lines = Clock(), []
    throttle = make_throttle(redis_url, clock, lines)
    for _ in range(2):
        throttle.failed("admin", "127.0.0.1")
    assert throttle.succeeded("admin", "127.0.0.1") == 0
    client = redis.Redis.from_url(redis_url)
    assert [key.decode() for key in client.keys("test:throttle:*")] == ["test:throttle:address:127.0.0.1"]
    assert client.hget("test:throttle:address:127.0.0.1", "failures") == b"2"


def test_counters_expire_after_the_window_and_name_no_login(redis_url: str) -> None:
    clock, lines = Clock(), []
    throttle = make_throttle(redis_url, clock, lines, window_seconds=600)
    throttle.failed("x" * 100_000, "127.0.0.1")
    client = redis.Redis.from_url(redis_url)
    keys = sorted(key.decode() for key in client.keys("test:throttle:*"))
    assert len(keys) == 2 and all(len(key) < 100 for key in keys), keys
    assert keys[0] == "test:throttle:address:127.0.0.1"
    for key in keys:
        assert 590_000 < client.pttl(key) <= 600_000


def test_redis_down_fails_open_with_a_log_line() -> None:
    clock, lines = Clock(), []
    settings = ThrottleSettings.from_config(throttle_settings())
    dead = redis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 1))  # as the app
    throttle = LoginThrottle(dead, settings, key_prefix="test:throttle:", log=lines.append, clock=clock)
    assert throttle.wait("admin", "127.0.0.1") == 0
    throttle.failed("admin", "127.0.0.1")
    assert throttle.succeeded("admin", "127.0.0.1") == 0
    assert len(lines) == 3
    assert all(
        line.startswith("[serveur] limitation des tentatives de connexion inopérante") for line in lines
    )
