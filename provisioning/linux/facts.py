"""Facts about a Linux target, each one shell command and a pure ``process``.

Every fact exits 0 and degrades to "absent" on a fresh host (no helper, no venv, no service yet), so
``--dry`` plans a change instead of crashing. Facts cover a whole area (all folders, all services,
all Apache files) in one round trip: over SSH each command costs a shell start on the target, and a
no-change run must stay within a few seconds.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra import host, state
from pyinfra.api import FactBase, QuoteString, StringCommand

from provisioning.remote_call import HelperCall


def _q(value: str) -> str:
    return shlex.quote(value)


def _parse_key_values(output: list[str]) -> dict[str, str]:
    values = {}
    for line in output:
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


_CACHE: dict[tuple, tuple[int, Any]] = {}


def _commands_run() -> int:
    """How many commands this host has run so far in this pyinfra state."""
    ops = getattr(state, "ops", None)
    if not isinstance(ops, dict) or host not in ops:
        return -1
    return sum(len(data.operation_meta._commands or []) for data in ops[host].values())


def _cache_key(fact_cls: type[FactBase], kwargs: dict[str, Any]) -> tuple:
    # Planning and execution never share a value: the target may change while a user reads the plan.
    phase = bool(getattr(state, "is_executing", False))
    return (id(state), phase, host.name, fact_cls, json.dumps(kwargs, sort_keys=True, default=str))


def cached_fact(fact_cls: type[FactBase], **kwargs: Any) -> Any:
    """``host.get_fact`` remembered until the host runs its next command.

    pyinfra 3 has no fact cache: several operations reading the same fact cost one round trip each.
    A value is reused only while nothing ran on the host since it was read, so it is never stale.
    The first fact an operation asks for in a phase also reads the whole ``prefetch`` list at once.
    """
    generation = _commands_run()
    if generation < 0:
        return host.get_fact(fact_cls, **kwargs)
    key = _cache_key(fact_cls, kwargs)
    cached = _CACHE.get(key)
    if not (cached and cached[0] == generation) and _read_prefetched(generation):
        cached = _CACHE.get(key)
    if cached and cached[0] == generation:
        return cached[1]
    value = host.get_fact(fact_cls, **kwargs)
    _CACHE[key] = (generation, value)
    return value


def _command_text(command: Any) -> str:
    return command if isinstance(command, str) else command.get_raw_value()


class FactBatch(FactBase[list]):
    """
    Returns ``[(exit status, output lines), ...]``: several fact commands in ONE round trip, run
    concurrently on the target (each in the background, its output in its own temporary file).
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, commands: list[str]) -> str:
        jobs = "".join(
            f'( ( {command} ) >"$b/{i}" 2>/dev/null; echo $? >"$b/{i}.rc" ) & '
            for i, command in enumerate(commands)
        )
        # sed adds the newline a last line may lack, so the next marker starts a line of its own.
        show = "; ".join(
            f'echo "@@impots-fact {i} $(cat "$b/{i}.rc")"; sed -e \'$a\\\' "$b/{i}"'
            for i in range(len(commands))
        )
        return f'b=$(mktemp -d) && {{ {jobs}wait; {show}; rm -rf "$b"; }}'

    def process(self, output: list[str]) -> list:
        results: list = []
        for line in output:
            if line.startswith("@@impots-fact "):
                status = line.split()[2] if len(line.split()) > 2 else "1"
                results.append((int(status) if status.isdigit() else 1, []))
            elif results:
                results[-1][1].append(line)
        return results


_PREFETCH: dict[tuple, list] = {}
_PREFETCHED: set[tuple] = set()


def prefetch(queries: list[tuple[type[FactBase], dict[str, Any]]]) -> None:
    """Declare the facts this host's operations will read: the first ``cached_fact`` of each phase
    (planning with ``--dry``/``--diff``, then execution) reads them all in ONE round trip.

    pyinfra runs operation bodies when it executes them (and also while planning with ``--dry`` or
    ``--diff``), so the batch is read lazily, once per phase; later reads after a change go to the
    target one by one, as they must. A no-change run costs one command for the whole host state.
    """
    _PREFETCH[(id(state), host.name)] = queries


def _read_prefetched(generation: int) -> bool:
    phase = bool(getattr(state, "is_executing", False))
    queries = _PREFETCH.get((id(state), host.name))
    once = (id(state), host.name, phase)
    if not queries or once in _PREFETCHED:
        return False
    _PREFETCHED.add(once)
    facts = [fact_cls() for fact_cls, _ in queries]
    commands = [
        _command_text(fact.command(**kwargs)) for fact, (_, kwargs) in zip(facts, queries, strict=True)
    ]
    results = host.get_fact(FactBatch, commands=commands)
    if len(results) != len(queries):
        return False  # the batch itself failed: every operation reads its own fact as usual
    for fact, (fact_cls, kwargs), (status, lines) in zip(facts, queries, results, strict=True):
        # As host.get_fact: a failed command or no output gives the fact's default().
        value = fact.process(lines) if status == 0 and lines else fact.default()
        _CACHE[_cache_key(fact_cls, kwargs)] = (generation, value)
    return True


def _bind_check_script(address: str) -> str:
    family = "AF_INET6" if ":" in address else "AF_INET"
    return (
        "import socket, sys\n"
        f"s = socket.socket(socket.{family})\n"
        "try:\n    s.bind((sys.argv[1], 0))\n"
        "except OSError as e:\n    print('IMPOTS_BIND_ERROR=' + e.strerror)\n"
    )


_SELINUX_MODES = {"1": "enforcing", "0": "permissive"}


class TargetPlatform(FactBase[dict]):
    """
    Returns ``{"release_meta": <key/values of /etc/os-release>, "init": "systemd" | "sysvinit",
    "selinux": "enforcing" | "permissive" | "disabled", "bind_error": <why bind_address cannot be bound,
    or None>, "uid": <the user id operations run as>}``.

    + ``init``: systemd only when it is PID 1 (``/run/systemd/system`` exists): containers ship
      ``systemctl`` without running systemd.
    + ``bind_error``: Apache's configtest does not bind, so an address foreign to the target would only
      fail at reload; checked here, before anything changes (``None`` too while python3 is missing).
    + ``selinux``: from ``/sys/fs/selinux/enforce`` (selinuxfs is mounted only when SELinux is enabled),
      read in the same round trip so that a host without SELinux pays no extra command.
    """

    @staticmethod
    def default() -> dict:
        return {
            "release_meta": {},
            "init": "sysvinit",
            "selinux": "disabled",
            "bind_error": None,
            "uid": None,
        }

    def command(self, bind_address: str | None = None) -> str:
        command = (
            "cat /etc/os-release 2>/dev/null; if test -d /run/systemd/system; "
            "then echo IMPOTS_INIT=systemd; else echo IMPOTS_INIT=sysvinit; fi; "
            "if test -r /sys/fs/selinux/enforce; "
            "then echo IMPOTS_SELINUX=$(cat /sys/fs/selinux/enforce); fi; "
            "echo IMPOTS_UID=$(id -u)"
        )
        if bind_address and bind_address != "*":
            script = _bind_check_script(bind_address)
            command += (
                f"; if command -v python3 >/dev/null; then python3 -c {_q(script)} {_q(bind_address)}; fi"
            )
        return command

    def process(self, output: list[str]) -> dict:
        values = {key: value.strip("\"'") for key, value in _parse_key_values(output).items()}
        init = values.pop("IMPOTS_INIT", "sysvinit")
        bind_error = values.pop("IMPOTS_BIND_ERROR", None)
        selinux = _SELINUX_MODES.get(values.pop("IMPOTS_SELINUX", ""), "disabled")
        uid = values.pop("IMPOTS_UID", "")
        return {
            "release_meta": values,
            "init": init,
            "selinux": selinux,
            "bind_error": bind_error,
            "uid": int(uid) if uid.isdigit() else None,
        }


class SiteUsers(FactBase[dict]):
    """
    Returns ``{"users": {name: primary group}, "groups": [names]}`` for the given names only: the users
    that exist and the groups of those names (pyinfra's ``Users`` runs commands for every account of
    the host, a cost each host of a fleet pays in every no-change run).
    """

    @staticmethod
    def default() -> dict:
        return {"users": {}, "groups": []}

    def command(self, users: list[str]) -> str:
        names = " ".join(_q(user) for user in users)
        return (
            f'for u in {names}; do g=$(id -gn -- "$u" 2>/dev/null) && echo "user $u $g"; '
            'getent group "$u" >/dev/null && echo "group $u"; done; true'
        )

    def process(self, output: list[str]) -> dict:
        state = self.default()
        for line in output:
            kind, *values = line.split()
            if kind == "user" and len(values) == 2:
                state["users"][values[0]] = values[1]
            elif kind == "group" and len(values) == 1:
                state["groups"].append(values[0])
        return state


class MissingPackages(FactBase[list]):
    """
    Returns the packages of ``packages`` that are not installed (``apt``: dpkg, ``dnf``: rpm).
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, manager: str, packages: list[str]) -> str:
        # One dpkg-query (or rpm) call for all the packages: a no-change run on a fleet pays it per host.
        names = " ".join(_q(p) for p in packages)
        if manager == "apt":
            installed = f"dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {names} 2>/dev/null"
            keep = "awk '$2 == \"ii\" {print $1}'"
        else:
            installed = f"rpm -q --qf '%{{NAME}}\\n' {names} 2>/dev/null"
            keep = "grep -v ' '"  # rpm prints "package X is not installed" for a missing one
        return (
            f'installed=" $({installed} | {keep} | tr "\\n" " ")"; '
            f'for p in {names}; do case "$installed" in *" $p "*) ;; *) echo "$p" ;; esac; done; true'
        )

    def process(self, output: list[str]) -> list:
        return [line.strip() for line in output if line.strip()]


def _service_checks(init: str, service: str) -> tuple[str, str]:
    s = _q(service)
    if init == "systemd":
        return f"systemctl is-active --quiet {s}", f"systemctl is-enabled --quiet {s} 2>/dev/null"
    return f"service {s} status >/dev/null 2>&1", f"ls /etc/rc[2345].d/S*{s} >/dev/null 2>&1"


def _service_state_command(init: str, service: str, label: str | None = None) -> str:
    running, enabled = _service_checks(init, service)
    label = label or service
    return (
        f"if {running}; then echo {label}.running=1; else echo {label}.running=0; fi; "
        f"if {enabled}; then echo {label}.enabled=1; else echo {label}.enabled=0; fi"
    )


def _parse_services(output: list[str]) -> dict[str, dict[str, bool]]:
    services: dict[str, dict[str, bool]] = {}
    for key, value in _parse_key_values(output).items():
        service, _, field = key.rpartition(".")
        services.setdefault(service, {"running": False, "enabled": False})[field] = value == "1"
    return services


class ServicesState(FactBase[dict]):
    """
    Returns ``{service: {"running": bool, "enabled": bool}}`` under the given init system.
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, init: str, services: list[str]) -> str:
        return "; ".join(_service_state_command(init, s) for s in services)

    def process(self, output: list[str]) -> dict:
        return _parse_services(output)


class ApacheState(FactBase[dict]):
    """
    Returns ``{"running", "enabled", "changed"}`` for Apache: ``changed`` lists paths (searched
    recursively, links not followed) modified after ``stamp``, or ``["<no stamp>"]`` without a stamp.
    How the deploy knows Apache must reload, even after an interrupted run.
    """

    @staticmethod
    def default() -> dict:
        return {"running": False, "enabled": False, "changed": ["<no fact>"]}

    def command(self, init: str, service: str, stamp: str, paths: list[str]) -> str:
        quoted = " ".join(_q(p) for p in paths)
        return (
            f"{_service_state_command(init, service, label='apache')}; "
            f"if test -e {_q(stamp)}; then find {quoted} -newer {_q(stamp)} -print 2>/dev/null "
            "| head -5 | sed 's/^/changed=/'; else echo 'changed=<no stamp>'; fi; true"
        )

    def process(self, output: list[str]) -> dict:
        apache = _parse_services(output).get("apache", {"running": False, "enabled": False})
        changed = [line.partition("=")[2] for line in output if line.startswith("changed=")]
        return {**apache, "changed": changed}


class PathsState(FactBase[dict]):
    """
    Returns ``{path: {"type", "user", "group", "mode", "sha256"}}`` for the paths that exist
    (``mode`` as octal digits, e.g. ``"640"``; ``sha256`` for regular files when ``hashes``).
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, paths: list[str], hashes: bool = True) -> str:
        quoted = " ".join(_q(p) for p in paths)
        command = f"stat --printf 'stat\\t%n\\t%F\\t%U\\t%G\\t%a\\n' {quoted} 2>/dev/null; "
        if hashes:
            command += f"sha256sum {quoted} 2>/dev/null; "
        return command + "true"

    def process(self, output: list[str]) -> dict:
        paths: dict[str, dict] = {}
        for line in output:
            if line.startswith("stat\t"):
                _, path, kind, user, group, mode = line.split("\t")
                paths.setdefault(path, {})
                paths[path].update(type=kind, user=user, group=group, mode=mode)
            elif line.strip():
                digest, _, path = line.partition("  ")
                paths.setdefault(path, {})["sha256"] = digest
        return paths


class SymlinkTarget(FactBase[str]):
    """
    Returns where a symbolic link points (``readlink``), or ``None`` when it is not a link, or when
    it points to nothing whole: a release folder that disappeared, or lost ``entry_point``.
    """

    def command(self, path: str, entry_point: str = ".") -> str:
        return f"test -e {_q(path)}/{_q(entry_point)} && readlink {_q(path)} || true"

    def process(self, output: list[str]) -> str | None:
        return output[0].strip() or None


class ApacheEnabledItems(FactBase[list]):
    """
    Returns the entries of Debian's ``mods-enabled``, ``sites-enabled`` and ``conf-enabled``
    folders, e.g. ``["mods-enabled/ssl.load", "sites-enabled/000-default.conf"]``.
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, config_root: str = "/etc/apache2") -> str:
        folders = "mods-enabled/* sites-enabled/* conf-enabled/*"
        return f"cd {_q(config_root)} 2>/dev/null && ls -1d {folders} 2>/dev/null; true"

    def process(self, output: list[str]) -> list:
        return sorted(line.strip() for line in output if line.strip())


# The marker line of our vhost template (vhost.conf.j2), and of the Linux-only one of earlier versions.
VHOST_MARKER = r"Managed by impots-provisioning \((templates/linux/)?vhost\.conf\.j2\)"


class ManagedVhosts(FactBase[list]):
    """
    Returns the names (without ``.conf``) of the vhost files in ``site_dir`` that our template wrote
    (they carry its marker line), so sites removed from the data can be removed from Apache too.
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, site_dir: str) -> str:
        return f"grep -lE {_q(VHOST_MARKER)} {_q(site_dir)}/*.conf 2>/dev/null; true"

    def process(self, output: list[str]) -> list:
        names = [line.strip().rsplit("/", 1)[-1] for line in output if line.strip().endswith(".conf")]
        return sorted(name[: -len(".conf")] for name in names)


# The installed mod_wsgi's version and what ``mod_wsgi-express module-config`` prints, read by one Python
# start instead of two (the express command is that distribution's entry point, whatever its module).
_MOD_WSGI_STATE = """\
import contextlib, io, sys, importlib.metadata as m
dist = m.distribution("mod-wsgi")
print("mod_wsgi=" + dist.version)
main = next(e for e in dist.entry_points if e.name == "mod_wsgi-express").load()
sys.argv, out = ["mod_wsgi-express", "module-config"], io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        main()
except SystemExit:
    pass
for line in out.getvalue().splitlines():
    print("module_config=" + line)
"""


class VenvState(FactBase[dict]):
    """
    Returns what the app's virtual environment holds: ``python`` (bool: python and pip are there; an
    interrupted creation leaves python without pip), ``requirements`` (the hash
    marker of the last installed requirements), ``mod_wsgi`` (installed version, with our patch's label:
    ``6.1.1+impots.<digest>``, see ``provisioning.mod_wsgi_patch``) and ``module_config``
    (the lines ``mod_wsgi-express module-config`` prints).
    """

    @staticmethod
    def default() -> dict:
        return {"python": False, "requirements": None, "mod_wsgi": None, "module_config": []}

    def command(self, venv: str) -> str:
        v = _q(venv)
        return (
            f"if test -x {v}/bin/python && test -x {v}/bin/pip; then echo python=1; "
            f"sed 's/^/requirements=/' {v}/.impots-requirements.sha256 2>/dev/null; "
            f"{v}/bin/python -c {_q(_MOD_WSGI_STATE)} 2>/dev/null; "
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
    Returns the JSON a query of our target helper prints (``call``: a typed query of
    ``provisioning.remote_call``, e.g. ``secrets_status``), or ``None`` while the helper is not
    installed yet. Used for secrets and database state: the helper reads passwords from the secrets
    file itself, so none travels on a command line.
    """

    def command(self, call: HelperCall) -> StringCommand:
        return StringCommand(
            "if test -f", QuoteString(call.helper), "&& command -v python3 >/dev/null; then", call, "; fi"
        )

    def process(self, output: list[str]) -> dict | None:
        text = "\n".join(output).strip()
        return json.loads(text) if text else None


class SelinuxState(FactBase[dict]):
    """
    Returns the SELinux state the app depends on: ``booleans`` (``{name: "on" | "off"}`` for the given
    booleans), ``rules`` (``{regex: type}``, the local file-context rules of ``semanage fcontext -l -C``)
    and ``relabel`` (the first paths under ``paths`` whose label differs from what the rules say, from
    ``restorecon -R -n -v``). Read only where SELinux is enabled; empty while ``semanage`` is missing.
    """

    @staticmethod
    def default() -> dict:
        return {"booleans": {}, "rules": {}, "relabel": []}

    def command(self, booleans: list[str], paths: list[str]) -> str:
        names = " ".join(_q(b) for b in booleans)
        quoted = " ".join(_q(p) for p in paths)
        return (
            f"getsebool {names} 2>/dev/null | sed 's/^/boolean=/'; "
            "semanage fcontext -l -C 2>/dev/null | sed 's/^/rule=/'; "
            f"restorecon -R -n -v {quoted} 2>/dev/null | head -5 | sed 's/^/relabel=/'; true"
        )

    def process(self, output: list[str]) -> dict:
        state = self.default()
        for line in output:
            key, _, value = line.partition("=")
            if key == "boolean":
                name, _, current = value.partition("-->")
                state["booleans"][name.strip()] = current.strip()
            elif key == "rule":
                fields = value.split()
                context = fields[-1].split(":") if fields else []
                if len(context) >= 3:  # skips the header and <<None>> rules
                    state["rules"][fields[0]] = context[2]
            elif key == "relabel" and value.strip():
                state["relabel"].append(value.strip())
        return state
