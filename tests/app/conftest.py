"""Shared fixtures of the application tests, against the real servers running on this machine.

The ``app/`` folder is self-contained (pushed as one artifact, not installed), so it is put first on
``sys.path`` here: tests import ``impots`` and ``date_time_server`` as the WSGI files do.

Fixtures (see each docstring):

- ``mysql_db`` / ``pgres_db`` (session): a throw-away seeded database on MariaDB / PostgreSQL;
  ``database_factory`` (session) makes more (e.g. an unseeded one to test the seed);
- ``redis_server`` (session): a redis-server of the tests' own on 127.0.0.1 and a free port (no password,
  no persistence), so the tests never depend on, nor touch, the machine's Redis (which a deploy protects
  with a password); ``redis_url``: its database 15, flushed;
- ``smtp_server``: a real SMTP server (aiosmtpd) on 127.0.0.1 collecting messages;
  ``smtp_server_factory`` makes others (STARTTLS, AUTH);
- ``instance_dir``: an instance folder (impots.json + secrets.json) for both databases, the tests' Redis and
  the SMTP server, with ``IMPOTS_INSTANCE_PATH`` set;
- ``tcp_proxy``: a factory of stoppable TCP proxies, to take a database "down and back";
- ``free_tcp_port``: a port nothing listens on.

Test modules must not ``import conftest`` (several conftest.py files exist in the tree): use fixtures.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_process import redis_process

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "app"
sys.path.insert(0, str(APP_DIR))

MYSQL_SOCKET = "/run/mysqld/mysqld.sock"
MYSQL_PORT = 3306
PGRES_PORT = 5432
REDIS_HOST, REDIS_TEST_DB = "127.0.0.1", 15


# ---- databases ---------------------------------------------------------------------------------------


def _mysql_root() -> Any:
    import pymysql

    try:
        return pymysql.connect(unix_socket=MYSQL_SOCKET, user="root", autocommit=True, connect_timeout=3)
    except pymysql.MySQLError as error:
        pytest.fail(
            f"MariaDB is not reachable as root on {MYSQL_SOCKET} ({error}); "
            "start it with: service mariadb start",
            pytrace=False,
        )


def _psql_as_postgres(sql: str) -> None:
    """Run SQL as the postgres superuser (peer authentication); SQL on stdin keeps secrets off argv."""
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
        input=sql,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=60,
    )
    if result.returncode != 0:
        pytest.fail(
            f"PostgreSQL: psql as postgres failed ({result.stderr.strip()}); "
            "if the server is down, start it with: service postgresql start",
            pytrace=False,
        )


class DatabaseFactory:
    """Creates throw-away databases (hyphenated names) and their owner users; drops them all at the end."""

    def __init__(self) -> None:
        self._created: list[tuple[str, str, str]] = []

    def create(self, dbms: str, seed: bool = True) -> dict[str, Any]:
        """A new database on ``dbms`` ("mysql" or "pgres"): returns the ``db`` mapping of Contract 4."""
        suffix = secrets.token_hex(4)
        name, user, password = f"dbimpots-test-{suffix}", f"impots_test_{suffix}", secrets.token_urlsafe(18)
        if dbms == "mysql":
            connection = _mysql_root()
            with connection, connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
                for host in ("localhost", "127.0.0.1"):
                    cursor.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY %s", (password,))
                    cursor.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'{host}'")
            port = MYSQL_PORT
        else:
            _psql_as_postgres(
                f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}';\n"
                f'CREATE DATABASE "{name}" OWNER "{user}";\n'
            )
            port = PGRES_PORT
        self._created.append((dbms, name, user))
        db = {"host": "127.0.0.1", "port": port, "database": name, "user": user, "password": password}
        if seed:
            from impots.db.seed import ensure_schema

            ensure_schema(dbms, db)
        return db

    def drop_all(self) -> None:
        for dbms, name, user in reversed(self._created):
            if dbms == "mysql":
                connection = _mysql_root()
                with connection, connection.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
                    for host in ("localhost", "127.0.0.1"):
                        cursor.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
            else:
                _psql_as_postgres(
                    f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\nDROP ROLE IF EXISTS "{user}";\n'
                )
        self._created.clear()


@pytest.fixture(scope="session")
def database_factory() -> Iterator[DatabaseFactory]:
    """Factory of throw-away databases: ``database_factory.create("mysql"|"pgres", seed=True)`` returns a
    ``db`` mapping ``{"host", "port", "database", "user", "password"}``. Everything is dropped at the end."""
    factory = DatabaseFactory()
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def mysql_db(database_factory: DatabaseFactory) -> dict[str, Any]:
    """A seeded MariaDB database ``dbimpots-test-<hex>`` with its own user and random password, shared by
    the session: the ``db`` mapping of Contract 4. Do not change its rows (use ``database_factory``)."""
    return database_factory.create("mysql")


@pytest.fixture(scope="session")
def pgres_db(database_factory: DatabaseFactory) -> dict[str, Any]:
    """The same as ``mysql_db`` on PostgreSQL (the user owns the database)."""
    return database_factory.create("pgres")


# ---- Redis ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisServer:
    """A running redis-server of the tests: ``host``, ``port``, ``pid``."""

    host: str
    port: int
    pid: int


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server started for this test session on 127.0.0.1 and a free port: no password, no RDB or
    AOF file. Stopped by its pid at the end of the session, also when tests fail."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server not found: apt-get install redis-server", pytrace=False)
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    with closing(redis.Redis(host=REDIS_HOST, port=port, socket_connect_timeout=1)) as client:
        with redis_process(folder, port, "", client.ping) as pid:
            yield RedisServer(REDIS_HOST, port, pid)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/15``: the tests' own Redis, database 15 flushed before the test."""
    import redis

    client = redis.Redis(host=redis_server.host, port=redis_server.port, db=REDIS_TEST_DB)
    try:
        client.flushdb()
    finally:
        client.close()
    return f"redis://{redis_server.host}:{redis_server.port}/{REDIS_TEST_DB}"


# ---- SMTP -------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def free_tcp_port() -> int:
    """A TCP port on which nothing listens on 127.0.0.1 (e.g. a database that is down)."""
    return free_port()


@dataclass
class SmtpServer:
    """A running aiosmtpd server: ``host``, ``port``, and ``messages`` (parsed ``EmailMessage``s)."""

    host: str
    port: int
    messages: list[email.message.EmailMessage] = field(default_factory=list)


class _CollectingHandler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.server.messages.append(message)
        return "250 OK"


def start_smtp_server(**controller_options: Any) -> tuple[SmtpServer, Any]:
    """Start an aiosmtpd Controller on 127.0.0.1 (extra options: tls_context, authenticator, ...)."""
    from aiosmtpd.controller import Controller

    server = SmtpServer(host="127.0.0.1", port=free_port())
    controller = Controller(
        _CollectingHandler(server), hostname=server.host, port=server.port, **controller_options
    )
    controller.start()
    return server, controller


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., SmtpServer]]:
    """Factory of real SMTP servers: ``smtp_server_factory(**options)`` passes ``options`` to aiosmtpd's
    ``Controller`` (``tls_context=``, ``require_starttls=``, ``authenticator=`` ...). Stopped at the end."""
    controllers: list[Any] = []

    def make(**controller_options: Any) -> SmtpServer:
        server, controller = start_smtp_server(**controller_options)
        controllers.append(controller)
        return server

    yield make
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., SmtpServer]) -> SmtpServer:
    """A real SMTP server on 127.0.0.1 and a free port (no TLS, no auth); ``.messages`` collects what it
    receives, as ``email.message.EmailMessage`` objects (``msg["Subject"]``, ``msg.get_content()``)."""
    return smtp_server_factory()


# ---- instance folder --------------------------------------------------------------------------------


@pytest.fixture
def instance_dir(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mysql_db: dict[str, Any],
    pgres_db: dict[str, Any],
    redis_server: RedisServer,
    redis_url: str,
    smtp_server: SmtpServer,
) -> Path:
    """An instance folder (Contract 1) with ``IMPOTS_INSTANCE_PATH`` pointing at it; returns its Path.

    ``impots.json``: both ``databases`` entries point at ``mysql_db`` / ``pgres_db``, Redis at
    ``redis_server`` db 15, the mail goes to ``smtp_server`` (port in ``admin_mail.smtp_port``), log file
    ``logs/impots-{dbms}.log`` (the ``logs`` folder exists). ``secrets.json`` (mode 0640): a random
    ``secret_key`` and both passwords.
    Edit ``impots.json`` in the test to vary a setting, or pass overrides to ``load_config``/``create_app``.
    """
    folder = tmp_path / "instance"
    (folder / "logs").mkdir(parents=True)
    settings = {
        "redis": {"host": redis_server.host, "port": redis_server.port, "db": REDIS_TEST_DB},
        "databases": {
            dbms: {key: db[key] for key in ("host", "port", "database", "user")}
            for dbms, db in (("mysql", mysql_db), ("pgres", pgres_db))
        },
        "log_file": "logs/impots-{dbms}.log",
        "admin_mail": {"smtp_server": smtp_server.host, "smtp_port": smtp_server.port},
    }
    (folder / "impots.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    secrets_file = folder / "secrets.json"
    secrets_file.touch(mode=0o600)
    secrets_file.write_text(
        json.dumps(
            {
                "secret_key": secrets.token_hex(16),
                "mysql_password": mysql_db["password"],
                "pgres_password": pgres_db["password"],
            }
        ),
        encoding="utf-8",
    )
    os.chmod(secrets_file, 0o640)
    monkeypatch.setenv("IMPOTS_INSTANCE_PATH", str(folder))
    return folder


# ---- a database that goes down and comes back -------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target_port`` until ``stop()``; ``start()`` listens again
    on the same port. Stopping also cuts the open connections: the server looks really down."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for connection in self._sockets:
                _close(connection)
            self._sockets.clear()

    def _accept_loop(self, listener: socket.socket) -> None:
        with selectors.DefaultSelector() as selector, listener:
            selector.register(listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if not selector.select(timeout=0.05):
                    continue
                client, _ = listener.accept()
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=3)
                except OSError:
                    _close(client)
                    continue
                upstream.settimeout(None)
                with self._lock:
                    self._sockets.update((client, upstream))
                for source, target in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for connection in (source, target):
                _close(connection)
            with self._lock:
                self._sockets.difference_update((source, target))


def _close(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[int], TcpProxy]]:
    """Factory: ``proxy = tcp_proxy(db["port"])`` starts a proxy on a free 127.0.0.1 port (``proxy.port``);
    point the configuration at it (e.g. ``{**mysql_db, "port": proxy.port}``), then ``proxy.stop()`` takes
    the database down (refused connections, open ones cut) and ``proxy.start()`` brings it back."""
    proxies: list[TcpProxy] = []

    def make(target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_port)
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()
