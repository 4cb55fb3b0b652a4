"""The hosted-Windows-runner workflow (.github/workflows/windows.yml): valid for actionlint, its PowerShell
steps valid for the PowerShell grammar, and it does what docs/windows.md says it does. It cannot run here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from ps_grammar import grammar_errors

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "windows.yml"
ACTIONLINT = Path(sys.executable).parent / "actionlint"  # from the pinned dev requirements


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.exists(), "actionlint is a pinned dev requirement (requirements/dev.txt)"
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", str(path)], capture_output=True, text=True, check=False, cwd=REPO
    )


def test_actionlint_accepts_the_workflow_and_rejects_a_broken_one(tmp_path):
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: windows-2022", "runs-on: [windows-2022"))
    assert actionlint(broken).returncode != 0


def test_powershell_steps_parse_and_the_plan_is_complete():
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy-to-itself"]
    assert job["runs-on"].startswith("windows-")
    steps = job["steps"]
    powershell = [s["run"] for s in steps if "run" in s and s.get("shell", "pwsh") == "pwsh"]
    assert len(powershell) >= 7
    for script in powershell:
        assert grammar_errors(script) == [], script
    text = "\n".join(s.get("run", "") + s.get("uses", "") for s in steps)
    for needed in (
        "OpenSSH.Server",  # the runner's own SSH server
        "administrators_authorized_keys",
        "apache-httpd",  # Apache Lounge
        "actions/setup-python",
        "@winssh/127.0.0.1",  # the deploy reaches the runner itself over the connector
        "pyinfra -y ci-inventory.py deploy.py",
        "calculer-impots",  # the JSON flow
        "windows_checklist.py",
    ):
        assert needed in text, needed
