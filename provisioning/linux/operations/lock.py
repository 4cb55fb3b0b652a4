"""One deploy at a time per host: a lock on the target, held from the first operation to the last.

The lock is a folder made with ``mkdir`` (atomic) under ``/run/lock`` (a tmpfs: a reboot frees it),
holding one line: ``<run id> <lease end> <start> <holder>``. It is not part of the host's state, so
taking and dropping it is read as a fact and never reported as a change.

- A second run waits up to ``impots_lock_wait`` seconds, then stops that host with a message naming
  the holder (user@controller, pid, start time).
- A run whose operation fails on a host drops that host's lock at once (a pyinfra callback), since
  pyinfra runs nothing more there.
- A run that dies (kill -9, a lost connection) keeps the lock, but never for ever: its lease ends
  ``LEASE_SECONDS`` after it took it; and this controller remembers the run id and pid it locked each
  host with (``~/.cache/impots-provisioning/deploy-lock/<host>/<run id>``, whatever checkout ran it),
  so its next run takes over at once from a run of its own whose pid is gone.
- ``--dry`` (planning) takes no lock: it only warns when another run holds it.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import socket
import time
import uuid
from pathlib import Path

from pyinfra import host, logger, state
from pyinfra.api import FactBase, operation
from pyinfra.api.state import BaseStateCallback

LOCK_PATH = "/run/lock/impots-deploy"
LEASE_SECONDS = 1800  # a slow first run of a big room takes minutes; a dead run's lock lasts this long
RUN_ID = uuid.uuid4().hex[:12]  # one per controller process: every host of this run shares it
HOLDER = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"

# Waits for the lock; prints "acquired [<record taken over>]" or "busy <record>". Stale means: the
# lease ended, the record names a run the controller knows is dead (in $stale), or a folder left without
# a record for 30 s (a run killed between mkdir and the write). A stale lock is moved away in one
# rename (one waiter wins), then every waiter races for mkdir again.
_ACQUIRE = r"""
end=$(( $(date +%s) + wait )); took=""
mkdir -p "${lock%/*}"
while :; do
    now=$(date +%s)
    if mkdir "$lock" 2>/dev/null; then
        printf '%s %s %s %s\n' "$me" $((now + lease)) "$now" "$holder" >"$lock/record.new"
        mv "$lock/record.new" "$lock/record"
        echo "acquired $took"; exit 0
    fi
    rec=$(cat "$lock/record" 2>/dev/null)
    id=${rec%% *}; rest=${rec#* }; until=${rest%% *}
    [ -n "$rec" ] && [ "$id" = "$me" ] && { echo "acquired"; exit 0; }
    expired=0
    if [ -z "$rec" ]; then
        made=$(stat -c %Y "$lock" 2>/dev/null || echo "$now")
        [ $((now - made)) -gt 30 ] && expired=1
    elif case " $stale " in *" $id "*) true ;; *) false ;; esac; then expired=1
    else
        case "$until" in ''|*[!0-9]*) expired=1 ;; *) [ "$until" -le "$now" ] && expired=1 ;; esac
    fi
    if [ "$expired" = 1 ]; then
        if [ "$(cat "$lock/record" 2>/dev/null)" = "$rec" ] && mv "$lock" "$lock.stale.$$" 2>/dev/null; then
            rm -rf "$lock.stale.$$"; took="$rec"
        fi
        continue
    fi
    [ "$now" -ge "$end" ] && { echo "busy $rec"; exit 0; }
    sleep 1
done
"""

_RELEASE = r"""
rec=$(cat "$lock/record" 2>/dev/null)
[ "${rec%% *}" = "$me" ] && rm -rf "$lock"
echo released
"""


def _assign(**values: str | int) -> str:
    return "".join(f"{name}={shlex.quote(str(value))}\n" for name, value in values.items())


class DeployLock(FactBase[str]):
    """
    Takes (``action="acquire"``), drops (``"release"``) or reads (``"read"``) the deploy lock; returns
    the script's one line: ``acquired [<record taken over>]``, ``busy <record>``, ``released``, or
    the current record (empty when free). Runs as a fact: holding the lock changes nothing on the host.
    """

    @staticmethod
    def default() -> str:
        return ""

    def command(self, action: str, run_id: str, wait: int = 0, stale: str = "") -> str:
        if action == "read":
            return f"cat {LOCK_PATH}/record 2>/dev/null; true"
        values = {"lock": LOCK_PATH, "me": run_id}
        if action == "release":
            return _assign(**values) + _RELEASE.lstrip()
        values |= {"wait": wait, "lease": LEASE_SECONDS, "holder": HOLDER, "stale": stale}
        return _assign(**values) + _ACQUIRE.lstrip()

    def process(self, output: list[str]) -> str:
        return "\n".join(output).strip()


def describe(record: str) -> str:
    """``<holder> since <start> (run <id>, lease until <end>)`` from a lock record."""
    if not record:
        return "a run that has not written its record yet (the lock folder is less than 30 s old)"
    parts = record.split(" ", 3)
    if len(parts) < 4 or not parts[1].isdigit() or not parts[2].isdigit():
        return f"an unreadable lock record {record!r}"
    run_id, until, started, holder = parts

    def moment(epoch: str) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(epoch)))

    return f"{holder} since {moment(started)} (run {run_id}, lease until {moment(until)})"


# --- the controller's memory of its own runs -------------------------------------------------------------


def _memory(host_name: str) -> Path:
    """One file per run of this controller that locks ``host_name``: ``<run id>`` holding its pid. Per
    user, not per checkout: every copy of the project run from this account shares it."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "impots-provisioning" / "deploy-lock" / re.sub(r"[^A-Za-z0-9._@-]", "_", host_name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def dead_runs_of_ours(host_name: str) -> list[str]:
    """Run ids with which this controller locked ``host_name`` and whose process is gone."""
    dead = []
    for run in sorted(_memory(host_name).glob("*")):
        try:
            record = json.loads(run.read_text())
            pid, machine = int(record["pid"]), record["controller"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if machine == socket.gethostname() and pid != os.getpid() and not _pid_alive(pid):
            dead.append(run.name)
    return dead


def remember_run(host_name: str, run_ids: list[str], held: bool) -> None:
    """Write this run's file (``held``), or drop the files of ``run_ids``."""
    memory = _memory(host_name)
    if held:
        memory.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "controller": socket.gethostname()}
        (memory / RUN_ID).write_text(json.dumps(record) + "\n")
        return
    for run_id in run_ids:
        (memory / run_id).unlink(missing_ok=True)


class _ReleaseOnError(BaseStateCallback):
    """pyinfra runs nothing more on a host after a failed operation: drop its lock there and then."""

    @staticmethod
    def operation_host_error(state, host, op_hash, retry_count: int = 0, max_retries: int = 0) -> None:
        try:
            host.get_fact(DeployLock, action="release", run_id=RUN_ID)
        except Exception as error:  # the connection itself may be what failed: the lease frees it
            logger.warning(f"{host.name}: could not drop the deploy lock ({error}); its lease will")
            return
        remember_run(host.name, [RUN_ID], held=False)


# --- the two operations ------------------------------------------------------------------------------------


def only_planning(lock_fact: type[FactBase], **arguments: str) -> bool:
    """While planning (``--dry``): warn about another run holding the lock, take nothing, report no
    change, and answer True; the Linux and Windows lock facts read the holder with ``action="read"``."""
    if state.is_executing:
        return False
    record = host.get_fact(lock_fact, action="read", run_id=RUN_ID, **arguments)
    if record:
        logger.warning(f"{host.name}: another deploy holds the lock: {describe(record)}")
    host.noop("the deploy lock is taken when the run executes")
    return True


def runs_to_take_over() -> list[str]:
    """This controller's earlier runs on this host whose process is gone (their lock is taken over at
    once), after recording this run: a kill right after taking the lock leaves our trace."""
    dead = dead_runs_of_ours(host.name)
    remember_run(host.name, [RUN_ID], held=True)
    return dead


@operation()
def deploy_lock_taken(wait: int = 120):
    """
    Take this host's deploy lock (first operation of the deploy): wait up to ``wait`` seconds for
    another run to finish, then fail naming it. While planning (``--dry``) only warn about a holder.

    + wait: seconds to wait for a run that holds the lock (``impots_lock_wait``)
    """
    if not any(isinstance(handler, _ReleaseOnError) for handler in state.callback_handlers):
        state.add_callback_handler(_ReleaseOnError())
    if only_planning(DeployLock):
        return
    dead = runs_to_take_over()
    answer = host.get_fact(DeployLock, action="acquire", run_id=RUN_ID, wait=wait, stale=" ".join(dead))
    problem = settle_acquire(answer, wait, LOCK_PATH, dead)
    if problem:
        # A failing command fails this host only (an exception here would stop the whole run).
        yield f"echo {shlex.quote('impots: ' + problem)} >&2; exit 75"
        return
    host.noop(f"deploy lock {LOCK_PATH} taken (run {RUN_ID})")  # the lock is no change to the host


def settle_acquire(answer: str, wait: int, lock: str, dead: list[str]) -> str | None:
    """Read the acquire script's answer (``acquired [<record taken over>]`` or ``busy <record>``, the
    same on Linux and Windows): the problem to fail the host with, or None when this run holds the lock.
    Keeps this controller's memory of runs in step and warns about a dead run's lock taken over."""
    if answer.split(" ", 1)[0] == "busy":
        remember_run(host.name, [RUN_ID], held=False)
        return (
            f"another deploy holds this host: {describe(answer[5:])}; waited {wait} s (impots_lock_wait). "
            f"If that run is dead, its lease frees the host, or remove {lock} on it"
        )
    if not answer.startswith("acquired"):
        return f"could not take the deploy lock {lock}: {answer or 'no answer'}"
    remember_run(host.name, dead, held=False)  # whatever they held is free or ours now
    taken_over = answer[len("acquired") :].strip()
    if taken_over:
        logger.warning(f"{host.name}: took over the deploy lock of a dead run: {describe(taken_over)}")
    return None


@operation()
def deploy_lock_released():
    """Drop this host's deploy lock if this run holds it (last operation of the deploy)."""
    if state.is_executing:
        host.get_fact(DeployLock, action="release", run_id=RUN_ID)
        remember_run(host.name, [RUN_ID], held=False)
    host.noop(f"deploy lock {LOCK_PATH} released")
    return
    yield
