"""Entry points of Contract 2: the two .wsgi files, main.py's usage message, app/requirements.txt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "app"

LOAD_WSGI = """
import json, runpy, sys
namespace = runpy.run_path(sys.argv[1])
application = namespace["application"]
client = application.test_client()
response = client.get("/do/init-session/json")
outcome = {"type": type(application).__name__, "status": response.status_code, "body": response.get_json()}
print(json.dumps(outcome))
"""


@pytest.mark.parametrize("dbms", ["mysql", "pgres"])
def test_wsgi_file_exposes_application(instance_dir, dbms: str) -> None:
    """Run as mod_wsgi does: a fresh interpreter, nothing on sys.path but what the file adds itself."""
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WSGI, str(APP / f"main_with{dbms}.wsgi")],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["type"] == "Flask" and outcome["status"] == 200
    assert outcome["body"]["état"] == 700
    assert f"impots-{dbms}.log" in {path.name for path in (instance_dir / "logs").iterdir()}


@pytest.mark.parametrize("argv", [[], ["oracle"], ["mysql", "pgres"]])
def test_main_py_usage(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(APP / "main.py"), *argv], capture_output=True, text=True, cwd=APP, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "usage: python main.py mysql|pgres"


@pytest.mark.parametrize(
    ("impots_json", "secrets", "message"),
    [
        ({"prefix_url": "do"}, {"secret_key": "k"}, "impots.json: prefix_url: expected"),
        ({}, {}, "secrets.json: secret_key: missing"),
    ],
)
def test_main_py_bad_configuration_is_one_clear_line(
    tmp_path: Path, impots_json: dict, secrets: dict, message: str
) -> None:
    """A bad instance configuration stops the dev server with the message, not a traceback."""
    (tmp_path / "impots.json").write_text(json.dumps(impots_json), encoding="utf-8")
    (tmp_path / "secrets.json").write_text(json.dumps(secrets), encoding="utf-8")
    (tmp_path / "secrets.json").chmod(0o600)
    result = subprocess.run(
        [sys.executable, str(APP / "main.py"), "mysql"],
        capture_output=True,
        text=True,
        cwd=APP,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "IMPOTS_INSTANCE_PATH": str(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stderr.startswith("main.py: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_app_requirements_is_a_copy() -> None:
    assert (APP / "requirements.txt").read_bytes() == (REPO / "requirements" / "app.txt").read_bytes()
