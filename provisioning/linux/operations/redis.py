"""Redis for the app's sessions and login throttle: the app's password, loopback only, a memory limit.

The target helper writes the file and restarts Redis (``provisioning/remote/redis_config.py``): the
password is read there from the app's secrets file, so it never travels in pyinfra's commands or output.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import operation

from provisioning import remote_call
from provisioning.linux.facts import HelperJson, cached_fact
from provisioning.plan import HostPlan, redis_in_use
from provisioning.settings.model import SERVICES

# Sessions and throttle counters all have a TTL: under the limit Redis evicts the least recently used of
# them, and never a key without one.
EVICTION_POLICY = "volatile-lru"


@dataclass(frozen=True)
class RedisLayout:
    main_configs: tuple[str, ...]  # the distribution's redis.conf: the first that exists
    config: str  # our file, included last by it
    group: str  # the group Redis runs as: it must read our file, nobody else


# RHEL 8's redis 5 reads /etc/redis.conf, RHEL 9's 6.2 /etc/redis/redis.conf; both run as redis:redis.
LAYOUTS = {
    "debian": RedisLayout(("/etc/redis/redis.conf",), "/etc/redis/impots.conf", "redis"),
    "rhel": RedisLayout(("/etc/redis/redis.conf", "/etc/redis.conf"), "/etc/redis/impots.conf", "redis"),
}


def restart_command(init: str, service: str) -> list[str]:
    return ["systemctl", "restart", service] if init == "systemd" else ["service", service, "restart"]


def redis_arguments(plan: HostPlan, init: str) -> dict | None:
    """The arguments of ``redis_secured`` for this plan, or ``None`` when no site keeps sessions in Redis."""
    if not (redis_in_use(plan.settings) and "redis_password" in plan.secrets.generate):
        return None
    layout = LAYOUTS[plan.platform.family]
    return {
        "helper": plan.paths.helper,
        "path": layout.config,
        "secrets": plan.secrets.path,
        "group": layout.group,
        "main_configs": list(layout.main_configs),
        "port": SERVICES["redis"][1],
        "maxmemory_mb": plan.settings.redis_maxmemory_mb,
        "policy": EVICTION_POLICY,
        "restart": restart_command(init, plan.platform.redis_service),
    }


def status_call(arguments: dict) -> remote_call.HelperCall:
    """The state query of ``redis_secured`` (also declared to the prefetch)."""
    query = {
        key: arguments[key] for key in ("path", "secrets", "main_configs", "port", "maxmemory_mb", "policy")
    }
    return remote_call.redis_status(arguments["helper"], **query)


@operation()
def redis_secured(
    helper: str,
    path: str,
    secrets: str,
    group: str,
    main_configs: list[str],
    port: int,
    maxmemory_mb: int,
    policy: str,
    restart: list[str],
):
    """
    Give Redis the app's password (``redis_password`` of the secrets file), loopback only,
    ``protected-mode``, ``maxmemory`` and an eviction policy, in a file of mode 0640 root:``group``
    included last by the distribution's ``redis.conf``; restart Redis only when that changed.

    + helper: target path of the helper zipapp
    + path: our Redis file (e.g. ``/etc/redis/impots.conf``)
    + secrets: the app's secrets file
    + group: the group Redis runs as
    + main_configs: candidate paths of the distribution's redis.conf (the first that exists)
    + port: Redis' port on 127.0.0.1
    + maxmemory_mb, policy: the memory limit and the eviction policy
    + restart: the command that restarts Redis (init script or systemctl)

    **Example:**

    .. code:: python

        redis_secured(name="Redis password", **redis_arguments(plan, "sysvinit"))
    """
    arguments = {"helper": helper, "path": path, "secrets": secrets, "main_configs": main_configs}
    arguments.update(port=port, maxmemory_mb=maxmemory_mb, policy=policy)
    state = cached_fact(HelperJson, call=status_call(arguments)) or {}
    converged = (
        state.get("file") is True
        and state.get("access") == f"root:{group}:640"
        and state.get("included") is True
        and state.get("server") == "ours"
    )
    if converged:
        host.noop(f"Redis already takes the app's password and reads {path}")
        return
    yield remote_call.redis_apply(
        helper, path, secrets, group, main_configs, port, maxmemory_mb, policy, restart
    )
