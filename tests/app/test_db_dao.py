"""The admin-data DAO on both real servers: exact values, same results, clear failures."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from impots.db.dao import DatabaseUnavailable, load_admin_data
from impots.tax import COURSE_ADMIN_DATA, compute_tax

DBMS = ("mysql", "pgres")


@pytest.fixture(params=DBMS)
def dbms_db(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """(dbms, db) for each real server."""
    return request.param, request.getfixturevalue(f"{request.param}_db")


def test_load_admin_data_equals_course_data(dbms_db: tuple[str, dict[str, Any]]) -> None:
    dbms, db = dbms_db
    admin = load_admin_data(dbms, db)
    assert admin == COURSE_ADMIN_DATA
    # Exact decimals, not the float32 13913.7 of the course's MySQL FLOAT columns.
    assert admin.to_dict() == COURSE_ADMIN_DATA.to_dict()
    assert admin.to_dict()["coeffn"][3] == 13913.69


def test_both_databases_give_identical_results(mysql_db: dict[str, Any], pgres_db: dict[str, Any]) -> None:
    from_mysql = load_admin_data("mysql", mysql_db)
    from_pgres = load_admin_data("pgres", pgres_db)
    for marie in (False, True):
        for enfants in range(0, 7):
            for salaire in range(0, 400_001, 997):
                assert compute_tax(from_mysql, marie, enfants, salaire) == compute_tax(
                    from_pgres, marie, enfants, salaire
                )


@pytest.mark.parametrize("dbms", DBMS)
def test_wrong_password_is_unavailable(dbms: str, request: pytest.FixtureRequest) -> None:
    db = {**request.getfixturevalue(f"{dbms}_db"), "password": "not-the-password"}
    with pytest.raises(DatabaseUnavailable) as raised:
        load_admin_data(dbms, db)
    message = str(raised.value)
    assert "\n" not in message
    assert db["user"] in message  # the driver names the user it refused
    assert "not-the-password" not in message


@pytest.mark.parametrize("dbms", DBMS)
def test_closed_port_is_unavailable_quickly(dbms: str, request: pytest.FixtureRequest, tcp_proxy) -> None:
    db = request.getfixturevalue(f"{dbms}_db")
    proxy = tcp_proxy(db["port"])
    proxied = {**db, "port": proxy.port}
    assert load_admin_data(dbms, proxied) == COURSE_ADMIN_DATA

    proxy.stop()
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as raised:
        load_admin_data(dbms, proxied)
    print(f"{dbms}: down detected in {time.monotonic() - started:.3f} s: {raised.value}")
    assert str(raised.value)

    proxy.start()
    assert load_admin_data(dbms, proxied) == COURSE_ADMIN_DATA


def test_unknown_dbms_is_refused(mysql_db: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="oracle"):
        load_admin_data("oracle", mysql_db)


@pytest.mark.parametrize("dbms", DBMS)
def test_silent_server_fails_after_the_connect_timeout(dbms: str, request: pytest.FixtureRequest) -> None:
    # A listener that never answers: the TCP handshake succeeds, the database greeting never comes.
    db = request.getfixturevalue(f"{dbms}_db")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as raised:
            load_admin_data(dbms, {**db, "port": silent.getsockname()[1]})
        print(f"{dbms}: silent server given up after {time.monotonic() - started:.2f} s: {raised.value}")
    assert "timed out" in str(raised.value).lower() or "timeout" in str(raised.value).lower()
