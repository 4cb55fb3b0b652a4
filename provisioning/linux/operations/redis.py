"""Redis for the app's sessions and login throttle: the deploy's password for the default user, one ACL
user per site (its own password, its own keys, the app's commands), loopback only, a memory limit.

The target helper writes the file and restarts Redis (``provisioning/remote/redis_config.py``): the
passwords are read there from the deploy's store, so they never travel in pyinfra's commands or output.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import operation

from provisioning import remote_call
from provisioning.linux.facts import HelperJson, cached_fact
from provisioning.linux.site_layout import redis_users
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
        "users": redis_users(plan),
    }


def status_call(arguments: dict) -> remote_call.HelperCall:
    """The state query of ``redis_secured`` (also declared to the prefetch)."""
    names = ("path", "secrets", "main_configs", "port", "maxmemory_mb", "policy", "users")
    query = {key: arguments[key] for key in names}
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
    users: list[dict],
):
    """
    Give Redis the deploy's password for its default user (``redis_password`` of the store) and one
    ACL user per site (its own password, only its keys and the app's commands), loopback only,
    ``protected-mode``, ``maxmemory`` and an eviction policy, in a file of mode 0640 root:``group``
    included last by the distribution's ``redis.conf``; restart Redis only when that changed. A Redis
    without ACL users (before 6.0) stops the run before any change.

    + helper: target path of the helper zipapp
    + path: our Redis file (e.g. ``/etc/redis/impots.conf``)
    + secrets: the deploy's secrets store
    + group: the group Redis runs as
    + main_configs: candidate paths of the distribution's redis.conf (the first that exists)
    + port: Redis' port on 127.0.0.1
    + maxmemory_mb, policy: the memory limit and the eviction policy
    + restart: the command that restarts Redis (init script or systemctl)
    + users: ``{"user", "secret", "key_prefix"}`` per site (``secret``: the store's key of its password)

    **Example:**

    .. code:: python

        redis_secured(name="Redis password", **redis_arguments(plan, "sysvinit"))
    """
    arguments = {"helper": helper, "path": path, "secrets": secrets, "main_configs": main_configs}
    arguments.update(port=port, maxmemory_mb=maxmemory_mb, policy=policy, users=users)
    state = cached_fact(HelperJson, call=status_call(arguments)) or {}
    if state.get("refused"):
        raise OSError(state["refused"])
    converged = (
        state.get("file") is True
        and state.get("access") == f"root:{group}:640"
        and state.get("included") is True
        and state.get("server") == "ours"
        and state.get("users") == "ours"
    )
    if converged:
        host.noop(f"Redis already takes the deploy's and {len(users)} sites' passwords and reads {path}")
        return
    yield remote_call.redis_apply(
        helper, path, secrets, group, main_configs, port, maxmemory_mb, policy, restart, users
    )
