"""Provision the impots stack: `pyinfra inventory.py deploy.py` (add `--dry --diff` to see the plan).

Host data is validated first (provisioning.settings, Contract 3): a bad value stops the run with
"<host>: <key>: <problem>" and a non-zero exit before any operation is planned or run.
"""

import sys

from pyinfra import host

from provisioning.artifact import ArtifactError
from provisioning.linux.platforms import NotRootError, UnsupportedPlatform
from provisioning.settings import SettingsError, load_settings
from provisioning.summary import print_summary_at_exit

print_summary_at_exit()  # one summary after a run over several hosts (URLs, smoke checks, CA, failures)


def stop(message: str) -> None:
    # A clean one-line message instead of pyinfra's traceback; SystemExit ends the whole run before
    # the execution phase, so no host is changed.
    print(f"impots: {message}", file=sys.stderr)
    sys.exit(2)


try:
    settings = load_settings(host)
except SettingsError as error:
    stop(f"bad host data: {error}")

if settings.os == "windows":
    from provisioning.windows.deploy import WindowsDeployError, deploy_windows

    try:
        deploy_windows(settings)
    except WindowsDeployError as error:
        stop(str(error))  # the message already starts with "<host>: "
else:
    from provisioning.linux.deploy import deploy_linux

    try:
        deploy_linux(settings)
    except SettingsError as error:
        stop(f"bad host data: {error}")
    except (UnsupportedPlatform, NotRootError, ArtifactError) as error:
        stop(f"{host.name}: {error}")
