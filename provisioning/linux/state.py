"""The facts a Linux deploy reads, listed from the plan so that they are read in one round trip.

Each entry is ``(fact class, keyword arguments)`` exactly as the operation that reads it asks for it
through ``cached_fact``; ``facts.prefetch`` runs them all concurrently in one command, so a no-change
run costs a couple of remote commands instead of one per fact. An entry that does not match what
its operation asks only costs that operation its own round trip (the bench counts them).
"""

from __future__ import annotations

from typing import Any

from pyinfra.facts.files import FileContents

from provisioning import remote_call
from provisioning.linux import facts, site_layout
from provisioning.linux.operations.app import RELEASE_ENTRY_POINT
from provisioning.linux.operations.databases import database_state_query
from provisioning.linux.operations.redis import redis_arguments, status_call
from provisioning.plan import HostPlan


def queries(
    plan: HostPlan, init: str, files: list[dict], apply: dict[str, Any], database: dict, folders: list[dict]
) -> list:
    platform, paths = plan.platform, plan.paths
    instances = site_layout.plan_site_instances(plan)
    site_secrets = [
        (facts.HelperJson, {"call": remote_call.secrets_status(paths.helper, site["path"])})
        for site in site_layout.site_secrets_arguments(instances)
        if site["keys"]
    ]
    wanted: list[tuple[type, dict[str, Any]]] = [
        (facts.MissingPackages, {"manager": platform.package_manager, "packages": platform.all_packages}),
        (facts.ServicesState, {"init": init, "services": list(platform.database_services)}),
        (facts.SiteUsers, {"users": [instance.user for instance in instances]}),
        (facts.PathsState, {"paths": [folder["path"] for folder in folders], "hashes": False}),
        (facts.PathsState, {"paths": [f"{paths.instance_dir}/logs"], "hashes": False}),
        (facts.PathsState, {"paths": [f["path"] for f in files[0]], "hashes": True}),
        (facts.PathsState, {"paths": [f["path"] for f in files[1]], "hashes": True}),
        (facts.HelperJson, {"call": remote_call.secrets_status(paths.helper, plan.secrets.path)}),
        *site_secrets,
        (facts.SymlinkTarget, {"path": f"{paths.install_root}/app", "entry_point": RELEASE_ENTRY_POINT}),
        (facts.VenvState, {"venv": paths.venv}),
        (facts.ManagedVhosts, {"site_dir": platform.site_dir}),
        (FileContents, {"path": "/etc/hosts"}),
        (
            facts.ApacheState,
            {
                "init": init,
                "service": platform.apache_service,
                "stamp": apply["stamp"],
                "paths": apply["watched"],
            },
        ),
    ]
    if plan.databases.dbms:
        wanted.append((facts.HelperJson, database_state_query(**database)))
    if redis := redis_arguments(plan, init):
        wanted.append((facts.HelperJson, {"call": status_call(redis)}))
    if platform.uses_a2en:
        wanted.append((facts.ApacheEnabledItems, {"config_root": "/etc/apache2"}))
    return wanted
