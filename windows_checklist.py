"""First-real-machine checklist for Windows hosts: `pyinfra inventory.py windows_checklist.py --dry`.

Run it after `deploy.py` (also after a failed one); it only reads the hosts and prints, per Windows host,
one screen to paste in a bug report (docs/windows.md, "Sending us the report"). Linux hosts are skipped.
"""

import sys

from pyinfra import host

from provisioning.settings import SettingsError, load_settings

try:
    settings = load_settings(host)
except SettingsError as error:
    print(f"impots: bad host data: {error}", file=sys.stderr)
    sys.exit(2)

if settings.os == "windows":
    from provisioning.windows.checklist import report_lines

    print("\n".join(["", "-" * 100, *report_lines(settings), "-" * 100, ""]))
