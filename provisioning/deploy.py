"""The public entry point: ``impots_stack()`` provisions the current host, Linux or Windows.

Another pyinfra deploy can call it after ``pip install`` of this project::

    from provisioning.deploy import impots_stack

    impots_stack()  # the host's impots_* data (group_data/, inventory) says what it gets

Host data is validated first (``load_settings``): a bad value raises ``DeployError`` before any
operation is planned, so no host is changed.
"""

from __future__ import annotations

from pyinfra import host

from provisioning.artifact import ArtifactError
from provisioning.linux.platforms import NotRootError, UnsupportedPlatform
from provisioning.settings import Settings, SettingsError, load_settings
from provisioning.tls import CertificateError


class DeployError(RuntimeError):
    """The host cannot be provisioned as its data and facts stand (one line, naming the host)."""


def impots_stack(settings: Settings | None = None) -> None:
    """Provision the whole stack on the current host (``settings``: default from its data)."""
    try:
        settings = settings or load_settings(host)
    except SettingsError as error:
        raise DeployError(f"bad host data: {error}") from None
    if settings.os == "windows":
        from provisioning.windows.deploy import WindowsDeployError, deploy_windows

        try:
            deploy_windows(settings)
        except WindowsDeployError as error:
            raise DeployError(str(error)) from None  # the message already starts with "<host>: "
        return
    from provisioning.linux.deploy import deploy_linux

    try:
        deploy_linux(settings)
    except SettingsError as error:
        raise DeployError(f"bad host data: {error}") from None
    except (UnsupportedPlatform, NotRootError, ArtifactError, CertificateError) as error:
        raise DeployError(f"{host.name}: {error}") from None
