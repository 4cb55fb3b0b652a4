"""The first-real-machine checklist (windows_checklist.py) through the real pyinfra command line, against
the fake Laragon machine: one screen with every finding, the host only read."""

from __future__ import annotations

import re

from test_win_cli import run_cli

from provisioning.windows import redis
from provisioning.windows.checklist import REDIS_ANSWERS, hide_passwords


def test_checklist_reports_everything_in_one_screen(tmp_path):
    code, output, scripts = run_cli(tmp_path, "laragon", "laragon", "windows_checklist.py", "--dry")
    assert code == 0, output
    report = output[output.index("impots Windows checklist for @winssh/lab-pc") :].split("-" * 100)[0]
    lines = report.strip("\n").splitlines()
    assert len(lines) <= 25  # one screen
    assert "mod_wsgi     : wanted mod-wsgi==6.1.1; stamp 'mod-wsgi==6.1.1 apache=C:/x'; built " in report
    assert "mod_wsgi-6.1.1.dist-info; mod_wsgi.cp311-win_amd64.pyd" in report
    assert "non-ASCII    : OK (impots-checklist-ô’é€/données-ü.txt read back identical)" in report
    # The failing httpd's stderr, as received (CLIXML) and as the connector decodes it.
    assert "httpd fails  : exit non-zero; raw stderr: #< CLIXML <Objs" in report
    assert "decoded: httpd.exe : AH00526: Syntax error: could not open configuration file" in report
    assert (
        "apache runs  : httpd pid 5120 as LAB-PC\\eleve (session 1); laragon.exe as LAB-PC\\eleve "
        "(session 1); SSH session LAB-PC\\prof elevated=True"
    ) in report
    # Bare Laragon machine, deploy only planned (--dry): Laragon's Redis is not started yet.
    assert "redis        : 127.0.0.1:6379 nothing answers\n" in report
    assert "site         : flask-impots-withmysql https://flask-impots-withmysql/impots/ -> 200" in report
    assert (
        "site         : date-time-server https://date-time-server/ -> The remote certificate is invalid"
        in report
    )
    # Only reads: every script is a fact, except the one deliberately failing httpd -t.
    changing = [
        s for s in scripts if "ConvertTo-Json -InputObject" not in s and not s.startswith("$lock = '")
    ]
    assert len(changing) == 1 and "& $httpd -t -f 'C:\\impots-checklist-no-such.conf'" in changing[0]


def test_every_answer_of_the_password_less_redis_probe_is_worded():
    """The checklist probes Redis without a password: each state Get-RedisState can then return has a
    sentence ('ours' and 'stale' need the password)."""
    states = set(re.findall(r"return '(\w+)'", redis.REDIS_PROBE)) - {"ours", "stale"}
    assert states == set(REDIS_ANSWERS)


def test_a_password_in_redis_command_line_is_hidden():
    assert hide_passwords('redis-server.exe --requirepass "two words" --port 6379') == (
        "redis-server.exe --requirepass <hidden> --port 6379"
    )
    assert hide_passwords("redis-server.exe --masterauth s3cret") == "redis-server.exe --masterauth <hidden>"
    laragon = "C:\\laragon\\bin\\redis\\redis-x64-5.0.14\\redis-server.exe redis.windows.conf"
    assert hide_passwords(laragon) == laragon
