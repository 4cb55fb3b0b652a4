"""Benchmark: ``calculer-impot`` over HTTP with live sessions, mod_wsgi-express (daemon mode) vs gunicorn.

Prints figures, asserts nothing. Both servers run the real app (``app/main_withmysql.wsgi``) on 127.0.0.1
with the same processes x threads, Redis sessions, a throw-away seeded MariaDB database and a throw-away
instance folder; each client thread keeps its own session (init-session, authentifier-utilisateur, then
``calculer-impot`` in a loop over the course's 11 taxpayers) on a keep-alive connection.

    .venv/bin/python bench/bench_http.py [--requests 2000] [--clients 8] [--processes 2] [--threads 15]

The mod_wsgi venv (``requirements/bench.txt``: the app's requirements + mod-wsgi compiled against
/usr/bin/apxs) is built once under /tmp from /usr/bin/python3.11, which the Apache user can read.
Run as root on the lab machine (MariaDB root by unix socket, Redis on 127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "app"
sys.path.insert(0, str(APP_DIR))

BENCH_VENV = Path("/tmp/impots-bench-venv")
SYSTEM_PYTHON = "/usr/bin/python3.11"
APXS = "/usr/bin/apxs"
APACHE_USER = "www-data"
REDIS_DB = 13
# The deploy gives this machine's Redis a password (secrets.json of the deployed app): use it if set.
DEPLOYED_SECRETS = Path("/opt/impots/app/instance/secrets.json")


def machine_redis_password() -> str | None:
    try:
        return json.loads(DEPLOYED_SECRETS.read_text()).get("redis_password")
    except (OSError, ValueError):
        return None


MYSQL_SOCKET = "/run/mysqld/mysqld.sock"
TAXPAYERS = [
    ("oui", 2, 55555), ("oui", 2, 50000), ("oui", 3, 50000), ("non", 2, 100000), ("non", 3, 100000),
    ("oui", 3, 100000), ("oui", 5, 100000), ("non", 0, 100000), ("oui", 2, 30000), ("non", 0, 200000),
    ("oui", 3, 200000),
]  # fmt: skip


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ---- set-up ------------------------------------------------------------------------------------------


def ensure_modwsgi_venv() -> Path:
    """The venv with mod_wsgi; rebuilt when requirements/bench.txt changed since it was built."""
    requirements = (REPO / "requirements" / "bench.txt").read_text() + (
        REPO / "requirements" / "app.txt"
    ).read_text()
    stamp = BENCH_VENV / "requirements.stamp"
    express = BENCH_VENV / "bin" / "mod_wsgi-express"
    if express.exists() and stamp.exists() and stamp.read_text() == requirements:
        return express
    log(f"building {BENCH_VENV} (mod_wsgi compiles against {APXS}, ~10 s)")
    shutil.rmtree(BENCH_VENV, ignore_errors=True)
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(BENCH_VENV)], check=True)
    subprocess.run(
        [
            str(BENCH_VENV / "bin" / "pip"),
            "install",
            "-q",
            "--no-cache-dir",
            "-r",
            str(REPO / "requirements" / "bench.txt"),
        ],
        check=True,
        env={**os.environ, "APXS": APXS},
    )
    stamp.write_text(requirements)
    return express


@contextlib.contextmanager
def bench_database() -> Iterator[dict]:
    """A seeded throw-away MariaDB database and user (random password), dropped afterwards."""
    import pymysql
    from impots.db.seed import ensure_schema

    suffix = secrets.token_hex(4)
    name, user, password = f"dbimpots-bench-{suffix}", f"impots_bench_{suffix}", secrets.token_urlsafe(18)
    root = pymysql.connect(unix_socket=MYSQL_SOCKET, user="root", autocommit=True)
    with root.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cursor.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
        cursor.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'127.0.0.1'")
    db = {"host": "127.0.0.1", "port": 3306, "database": name, "user": user, "password": password}
    try:
        ensure_schema("mysql", db)
        yield db
    finally:
        with root.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        root.close()


def write_instance(folder: Path, db: dict) -> Path:
    """Instance folder readable by the Apache user, secrets 0640 root:www-data, and the WSGI module."""
    apache_gid = grp.getgrnam(APACHE_USER).gr_gid
    instance = folder / "instance"
    (instance / "logs").mkdir(parents=True)
    os.chown(instance / "logs", -1, apache_gid)
    os.chmod(instance / "logs", 0o775)
    settings = {
        "redis": {"host": "127.0.0.1", "port": 6379, "db": REDIS_DB},
        "databases": {"mysql": {key: db[key] for key in ("host", "port", "database", "user")}},
        "log_file": "logs/impots-{dbms}.log",
        "admin_mail": {"smtp_server": "127.0.0.1", "smtp_port": 1},  # nothing listens: alerts fail fast
    }
    (instance / "impots.json").write_text(json.dumps(settings))
    secrets_file = instance / "secrets.json"
    secrets_file.touch(mode=0o600)
    secrets_file.write_text(
        json.dumps(
            {
                "secret_key": secrets.token_hex(32),
                "mysql_password": db["password"],
                "redis_password": machine_redis_password(),
            }
        )
    )
    os.chown(secrets_file, 0, apache_gid)
    os.chmod(secrets_file, 0o640)
    module = folder / "bench_app.py"
    module.write_text(
        "import os, runpy\n"
        f"os.environ['IMPOTS_INSTANCE_PATH'] = {str(instance)!r}\n"
        f"application = runpy.run_path({str(APP_DIR / 'main_withmysql.wsgi')!r})['application']\n"
    )
    return module


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(port: int, process: subprocess.Popen, output: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(
                f"server exited with {process.returncode}; see {output}:\n{output.read_text()[-2000:]}"
            )
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/do/init-session/json")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not answer; see {output}")


@contextlib.contextmanager
def running(command: list[str], port: int, output: Path, cwd: Path) -> Iterator[None]:
    with output.open("w") as stream:
        process = subprocess.Popen(
            command, stdout=stream, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
    try:
        wait_until_serving(port, process, output)
        yield
    finally:
        process.terminate()  # Apache and gunicorn stop their children on SIGTERM
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- load ---------------------------------------------------------------------------------------------


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""


class SessionClient:
    """One course client: its own keep-alive connection and session cookie."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""
        self.connections = 0  # TCP connections opened (1 per client when keep-alive holds)

    def call(self, method: str, path: str, form: dict | None = None) -> tuple[int, dict]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.connection.sock is None:
            self.connections += 1
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            # The server closed an idle keep-alive connection: reconnect once, as browsers do.
            self.connection.close()
            self.connections += 1
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        payload = response.read()
        for value in response.headers.get_all("Set-Cookie") or []:
            if value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        try:
            return response.status, json.loads(payload)
        except ValueError:
            return response.status, {"raw": payload[:200].decode(errors="replace")}

    def start(self) -> None:
        status, body = self.call("GET", "/do/init-session/json")
        assert status == 200, body
        status, body = self.call(
            "POST", "/do/authentifier-utilisateur", {"user": "admin", "password": "admin"}
        )
        assert status == 200, body


def run_load(port: int, total: int, clients: int) -> tuple[list[ClientResult], float, int]:
    per_client = [total // clients + (1 if rank < total % clients else 0) for rank in range(clients)]
    results = [ClientResult() for _ in range(clients)]
    sessions = [SessionClient(port) for _ in range(clients)]
    for session in sessions:
        session.start()
    barrier = threading.Barrier(clients + 1)

    def work(rank: int) -> None:
        session, result = sessions[rank], results[rank]
        barrier.wait()
        for index in range(per_client[rank]):
            marie, enfants, salaire = TAXPAYERS[(rank + index) % len(TAXPAYERS)]
            form = {"marié": marie, "enfants": str(enfants), "salaire": str(salaire)}
            started = time.perf_counter()
            try:
                status, body = session.call("POST", "/do/calculer-impot", form)
                ok = status == 200 and body.get("état") == 300
                detail = f"{status} {body}"
            except Exception as error:  # noqa: BLE001 (counted and reported)
                ok, detail = False, repr(error)
            result.latencies.append(time.perf_counter() - started)
            if not ok:
                result.errors += 1
                result.first_error = result.first_error or detail

    threads = [threading.Thread(target=work, args=(rank,)) for rank in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return results, elapsed, sum(session.connections for session in sessions)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(name: str, port: int, args: argparse.Namespace) -> dict:
    run_load(port, max(args.clients * 25, 200), args.clients)  # warm-up: every process loads the app
    results, elapsed, connections = run_load(port, args.requests, args.clients)
    latencies = [value for result in results for value in result.latencies]
    errors = sum(result.errors for result in results)
    figures = {
        "server": name,
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "req_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "connections": connections,
    }
    first_error = next((result.first_error for result in results if result.first_error), "")
    if first_error:
        log(f"{name}: first error: {first_error}")
    return figures


def print_rows(title: str, rows: list[dict]) -> None:
    print(title)
    print(
        f"{'server':<28}{'requests':>9}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'TCP conns':>11}"
    )
    for row in rows:
        print(
            f"{row['server']:<28}{row['requests']:>9}{row['errors']:>8}{row['req_per_s']:>9.0f}"
            f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['connections']:>11}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per round and server")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (the machine is shared)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (MariaDB root by unix socket, Apache user switch)")

    express = ensure_modwsgi_venv()
    workdir = Path(tempfile.mkdtemp(prefix="impots-bench-"))
    os.chmod(workdir, 0o755)
    rounds: list[tuple[dict, dict]] = []
    try:
        with bench_database() as db:
            module = write_instance(workdir, db)
            modwsgi_port, gunicorn_port = free_port(), free_port()
            modwsgi = [
                str(express), "start-server", str(module), "--host", "127.0.0.1", "--port", str(modwsgi_port),
                "--processes", str(args.processes), "--threads", str(args.threads),
                "--user", APACHE_USER, "--group", APACHE_USER, "--server-root", str(workdir / "modwsgi"),
                "--locale", "C.UTF-8", "--log-to-terminal",
            ]  # fmt: skip
            gunicorn = [
                str(REPO / ".venv" / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{gunicorn_port}",
                "--workers", str(args.processes), "--threads", str(args.threads), "--worker-class", "gthread",
                "--chdir", str(workdir), "--log-level", "warning", "bench_app:application",
            ]  # fmt: skip
            with (
                running(modwsgi, modwsgi_port, workdir / "modwsgi.out", workdir),
                running(gunicorn, gunicorn_port, workdir / "gunicorn.out", workdir),
            ):
                # Both servers stay up; rounds alternate so that load from other users hits both alike.
                for _ in range(args.rounds):
                    rounds.append(
                        (
                            measure("mod_wsgi-express (daemon)", modwsgi_port, args),
                            measure("gunicorn (gthread)", gunicorn_port, args),
                        )
                    )
    finally:
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis(db=REDIS_DB, password=machine_redis_password())
            for key in client.scan_iter("impots:mysql:session:*"):
                client.delete(key)
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"calculer-impot over HTTP, {args.clients} concurrent clients, "
        f"{args.processes} processes x {args.threads} threads, {args.rounds} alternating rounds"
    )
    for number, pair in enumerate(rounds, start=1):
        print_rows(f"round {number}:", list(pair))
    ratios = sorted(modwsgi["req_per_s"] / gunicorn["req_per_s"] for modwsgi, gunicorn in rounds)
    print(f"mod_wsgi / gunicorn throughput per round: {', '.join(f'{ratio:.2f}' for ratio in ratios)}")
    print(f"median ratio: {statistics.median(ratios):.2f}")
    print(f"errors in all rounds: {sum(row['errors'] for pair in rounds for row in pair)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
