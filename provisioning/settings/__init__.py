"""Host data validation (Contract 3 of docs/architecture.md), declared as pydantic models.

``load_settings(host)`` turns a host's ``impots_*`` data into a frozen ``Settings`` before any
operation is planned. Every bad value raises ``SettingsError("<host>: <key>: <what is wrong>")``,
so a typo in ``group_data/`` stops the run with the target untouched. A key set to ``None`` takes
its default. Each ``Settings`` attribute is its data key without the ``impots_`` prefix:

- ``settings.sites``: tuple of ``Site(name, kind, dbms, alias)``; ``dbms`` is ``None`` for date-time sites.
- ``settings.tls``: ``TlsSettings(source, cert, key, ca)``; paths are absolute controller paths.
- ``settings.admin_mail``: a dict with Contract 1's keys; ``settings.users``: tuple of
  ``{"login", "password_hash"}`` dicts; ``settings.windows_apache_accounts``: tuple of strings.
- secrets (``SECRETS`` and the Windows ``WINDOWS_SECRETS``): a string, or ``None`` (for the app's:
  generate once on the target and keep it). Never in a message or a ``repr``.

``app_paths(settings)`` gives the folders and files every platform shares; ``instance_config_json``
the app's ``impots.json`` (Contract 1).

Modules: ``model.py`` (the keys), ``fields.py`` (value types and their messages), ``certificates.py``
(user-supplied TLS files), ``instance.py`` (paths and ``impots.json``).
"""

from provisioning.settings.certificates import check_certificate_files
from provisioning.settings.fields import is_hostname
from provisioning.settings.instance import AppPaths, app_paths, instance_config, instance_config_json
from provisioning.settings.model import (
    DBMS_NAMES,
    DEFAULT_ADMIN_HASH,
    DEFAULT_ADMIN_MAIL,
    MOD_WSGI_VERSIONS,
    SECRETS,
    SERVICES,
    SITE_KINDS,
    WINDOWS_LAYOUTS,
    WINDOWS_SECRETS,
    DatabaseSettings,
    Settings,
    SettingsError,
    Site,
    TlsSettings,
    load_settings,
    parse_settings,
)

__all__ = [
    "DBMS_NAMES",
    "DEFAULT_ADMIN_HASH",
    "DEFAULT_ADMIN_MAIL",
    "MOD_WSGI_VERSIONS",
    "SECRETS",
    "SERVICES",
    "SITE_KINDS",
    "WINDOWS_LAYOUTS",
    "WINDOWS_SECRETS",
    "AppPaths",
    "DatabaseSettings",
    "Settings",
    "SettingsError",
    "Site",
    "TlsSettings",
    "app_paths",
    "check_certificate_files",
    "instance_config",
    "instance_config_json",
    "is_hostname",
    "load_settings",
    "parse_settings",
]
