"""The Linux layout of per-site instance folders (``provisioning.site_users``) as folders and files.

The plan (shared with Windows) keeps one instance folder; on Linux it becomes a traversable parent
of one folder per site, and the deploy's secrets store inside it is root's only.
"""

from __future__ import annotations

import json

from provisioning.plan import Access, Folder, HostPlan
from provisioning.settings import instance_config
from provisioning.site_users import SiteInstance, site_instances

STORE_GROUP = "root"  # the deploy's secrets store: root only, sites get their own copies


def plan_site_instances(plan: HostPlan) -> tuple[SiteInstance, ...]:
    """Each site's user and instance (refuses two sites that would share a user: ``SettingsError``)."""
    keys = (*plan.secrets.given, *plan.secrets.generate, *plan.secrets.per_site)
    return site_instances(plan.settings.sites, plan.paths.instance_dir, plan.paths, keys)


def instance_folders(plan: HostPlan, instances: tuple[SiteInstance, ...], ownership) -> list[dict]:
    """The plan's folders, with the instance folder traversable by every site user (0755, no files of
    a site in it) and, instead of the shared logs, one folder and one logs folder per site."""
    shared_logs = f"{plan.paths.instance_dir}/logs"
    folders = []
    for folder in plan.folders:
        if folder.path == shared_logs:
            continue
        if folder.path == plan.paths.instance_dir:
            folder = Folder(folder.path, Access.PUBLIC)
        folders.append({"path": folder.path, **ownership(folder.access, folder=True)})
    for instance in instances:
        folders.append({"path": instance.folder, "user": "root", "group": instance.user, "mode": "750"})
        folders.append({"path": instance.logs, "user": instance.user, "group": instance.user, "mode": "750"})
    return folders


def site_config(plan: HostPlan, instance: SiteInstance) -> str:
    """A site's ``impots.json``: the host's, with its own paths and, where it has its own Redis user,
    that user and the key prefix its ACL allows."""
    config = instance_config(plan.settings, instance.app_paths)
    if instance.redis_user:
        config["redis"] = {
            **config["redis"],
            "user": instance.redis_user,
            "key_prefix": instance.redis_key_prefix,
        }
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def instance_config_files(plan: HostPlan, instances: tuple[SiteInstance, ...]) -> list[dict]:
    """Each impots site's ``impots.json``, naming its own secrets file and logs (0640 root:<site>)."""
    return [
        {
            "path": instance.config_file,
            "content": site_config(plan, instance),
            "user": "root",
            "group": instance.user,
            "mode": "640",
        }
        for instance in instances
        if instance.site.kind == "impots"
    ]


def site_secrets_arguments(instances: tuple[SiteInstance, ...]) -> list[dict]:
    return [
        {"path": instance.secrets_file, "group": instance.user, "keys": dict(instance.secret_keys)}
        for instance in instances
    ]


def redis_users(plan: HostPlan) -> list[dict]:
    """One Redis ACL user per site that has its own Redis password: its name, the store's key of its
    password and its key prefix (``redis_config`` on the target)."""
    return [
        {
            "user": instance.redis_user,
            "secret": instance.secret_keys["redis_password"],
            "key_prefix": instance.redis_key_prefix,
        }
        for instance in plan_site_instances(plan)
        if instance.redis_user
    ]


def release_entry_points(instances: tuple[SiteInstance, ...]) -> list[dict]:
    """What the release check loads: each site's entry point, as its user, with its instance."""
    return [
        {"wsgi_file": instance.site.wsgi_file, "user": instance.user, "instance": instance.app_instance}
        for instance in instances
    ]


def watched(plan: HostPlan) -> list[str]:
    """The sites' own files: a change needs their daemons restarted (the Apache reload rule)."""
    instances = plan_site_instances(plan)
    return [path for i in instances for path in (i.config_file, i.secrets_file)]
