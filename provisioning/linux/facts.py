"""Facts about a Linux target, each one shell command and a pure ``process``.

Every fact exits 0 and degrades to "absent" on a fresh host (no helper, no venv, no service yet), so
``--dry`` plans a change instead of crashing.
"""

from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase

HELPER_PATH_SUFFIX = "/bin/impots-helper.py"


def _q(value: str) -> str:
    return shlex.quote(value)


def _parse_key_values(output: list[str]) -> dict[str, str]:
    values = {}
    for line in output:
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


class InitSystem(FactBase[str]):
    """
    Returns ``systemd`` when systemd is PID 1 (``/run/systemd/system`` exists), else ``sysvinit``.
    A ``systemctl`` binary alone proves nothing: containers ship it without running systemd.
    """

    def command(self) -> str:
        return "test -d /run/systemd/system && echo systemd || echo sysvinit"

    def process(self, output: list[str]) -> str:
        return output[0].strip()


class MissingPackages(FactBase[list]):
    """
    Returns the packages of ``packages`` that are not installed (``apt``: dpkg, ``dnf``: rpm).
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, manager: str, packages: list[str]) -> str:
        names = " ".join(_q(p) for p in packages)
        if manager == "apt":
            check = "dpkg-query -W -f='${Status}' \"$p\" 2>/dev/null | grep -q 'ok installed'"
        else:
            check = 'rpm -q "$p" >/dev/null 2>&1'
        return f'for p in {names}; do {check} || echo "$p"; done; true'

    def process(self, output: list[str]) -> list:
        return [line.strip() for line in output if line.strip()]


class ServiceState(FactBase[dict]):
    """
    Returns ``{"running": bool, "enabled": bool}`` for a service under the given init system.
    """

    @staticmethod
    def default() -> dict:
        return {"running": False, "enabled": False}

    def command(self, init: str, service: str) -> str:
        s = _q(service)
        if init == "systemd":
            running = f"systemctl is-active --quiet {s}"
            enabled = f"systemctl is-enabled --quiet {s} 2>/dev/null"
        else:
            running = f"service {s} status >/dev/null 2>&1"
            enabled = f"ls /etc/rc[2345].d/S*{s} >/dev/null 2>&1"
        return (
            f"if {running}; then echo running=1; else echo running=0; fi; "
            f"if {enabled}; then echo enabled=1; else echo enabled=0; fi"
        )

    def process(self, output: list[str]) -> dict:
        values = _parse_key_values(output)
        return {"running": values.get("running") == "1", "enabled": values.get("enabled") == "1"}


class SymlinkTarget(FactBase[str]):
    """
    Returns where a symbolic link points (``readlink``), or ``None`` when it is not a link.
    """

    def command(self, path: str) -> str:
        return f"readlink {_q(path)} || true"

    def process(self, output: list[str]) -> str | None:
        return output[0].strip() or None


class VenvState(FactBase[dict]):
    """
    Returns what the app's virtual environment holds: ``python`` (bool), ``requirements`` (the hash
    marker of the last installed requirements), ``mod_wsgi`` (installed version) and ``module_config``
    (the lines ``mod_wsgi-express module-config`` prints).
    """

    @staticmethod
    def default() -> dict:
        return {"python": False, "requirements": None, "mod_wsgi": None, "module_config": []}

    def command(self, venv: str) -> str:
        v = _q(venv)
        version = "import importlib.metadata as m; print('mod_wsgi=' + m.version('mod-wsgi'))"
        return (
            f"if test -x {v}/bin/python; then echo python=1; "
            f"sed 's/^/requirements=/' {v}/.impots-requirements.sha256 2>/dev/null; "
            f'{v}/bin/python -c "{version}" 2>/dev/null; '
            f"{v}/bin/mod_wsgi-express module-config 2>/dev/null | sed 's/^/module_config=/'; "
            "fi; true"
        )

    def process(self, output: list[str]) -> dict:
        state = self.default()
        for line in output:
            key, _, value = line.partition("=")
            if key == "python":
                state["python"] = True
            elif key == "requirements":
                state["requirements"] = value.strip()
            elif key == "mod_wsgi":
                state["mod_wsgi"] = value.strip()
            elif key == "module_config":
                state["module_config"].append(value.strip())
        return state


class HelperJson(FactBase[dict]):
    """
    Returns the JSON a read-only subcommand of our target helper (``files/impots_helper.py``) prints,
    or ``None`` while the helper is not installed yet. Used for secrets and database state: the helper
    reads passwords from the secrets file itself, so none travels on a command line.
    """

    def command(self, helper: str, arguments: list[str]) -> str:
        args = " ".join(_q(a) for a in arguments)
        return (
            f"if test -f {_q(helper)} && command -v python3 >/dev/null; then python3 {_q(helper)} {args}; fi"
        )

    def process(self, output: list[str]) -> dict | None:
        text = "\n".join(output).strip()
        return json.loads(text) if text else None


class BindError(FactBase[str]):
    """
    Returns why the target cannot bind ``address`` (e.g. ``Cannot assign requested address``), or
    ``None`` when it can or when python3 is not installed yet (a fresh host).
    """

    def command(self, address: str) -> str:
        family = "AF_INET6" if ":" in address else "AF_INET"
        script = (
            "import socket, sys\n"
            f"s = socket.socket(socket.{family})\n"
            "try:\n    s.bind((sys.argv[1], 0))\n"
            "except OSError as e:\n    print(e.strerror)\n"
        )
        return f"if command -v python3 >/dev/null; then python3 -c {_q(script)} {_q(address)}; fi"

    def process(self, output: list[str]) -> str | None:
        return "\n".join(output).strip() or None


class SeedStatus(FactBase[int]):
    """
    Returns the exit code of ``python -m impots.db.seed <dbms> --check`` run in the app folder:
    0 = up to date, 3 = changes to make, 2 = cannot connect; 127 when the app or venv is missing.
    """

    def command(self, venv: str, app: str, dbms: str) -> str:
        return (
            f"if test -x {_q(venv)}/bin/python && test -d {_q(app)}/impots; then "
            f"cd {_q(app)} && {_q(venv)}/bin/python -m impots.db.seed {_q(dbms)} --check >/dev/null 2>&1; "
            'echo "status=$?"; else echo status=127; fi'
        )

    def process(self, output: list[str]) -> int:
        return int(_parse_key_values(output).get("status", "127"))


class TlsState(FactBase[dict]):
    """
    Returns the state of the local CA and server certificate in ``directory``: ``ca`` (CA present and
    valid for 30 more days), ``server_sans`` (sorted DNS names of the server certificate),
    ``server_ok`` (present, signed by the CA, valid for 30 more days).
    """

    @staticmethod
    def default() -> dict:
        return {"ca": False, "server_sans": [], "server_ok": False}

    def command(self, directory: str) -> str:
        d = _q(directory)
        month = 30 * 24 * 3600
        return (
            f"if test -s {d}/ca.key && openssl x509 -noout -checkend {month} -in {d}/ca.pem >/dev/null 2>&1; "
            "then echo ca=1; fi; "
            f"if test -s {d}/server.key "
            f"&& openssl x509 -noout -checkend {month} -in {d}/server.pem >/dev/null 2>&1 "
            f"&& openssl verify -CAfile {d}/ca.pem {d}/server.pem >/dev/null 2>&1; "
            "then echo server_ok=1; fi; "
            f"openssl x509 -noout -ext subjectAltName -in {d}/server.pem 2>/dev/null "
            "| tr ',' '\\n' | sed -n 's/^ *DNS:/san=/p'; true"
        )

    def process(self, output: list[str]) -> dict:
        state = self.default()
        for line in output:
            key, _, value = line.strip().partition("=")
            if key == "ca":
                state["ca"] = True
            elif key == "server_ok":
                state["server_ok"] = True
            elif key == "san":
                state["server_sans"].append(value)
        state["server_sans"].sort()
        return state


class PathsNewerThan(FactBase[list]):
    """
    Returns the paths (searched recursively, links not followed) modified after ``stamp``; ``["<no stamp>"]``
    when the stamp does not exist. How the deploy knows Apache must reload, even after an interrupted run.
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, stamp: str, paths: list[str]) -> str:
        quoted = " ".join(_q(p) for p in paths)
        return (
            f"if test -e {_q(stamp)}; then find {quoted} -newer {_q(stamp)} -print 2>/dev/null | head -5; "
            "else echo '<no stamp>'; fi; true"
        )

    def process(self, output: list[str]) -> list:
        return [line for line in output if line.strip()]
