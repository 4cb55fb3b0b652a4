"""Provision the impots stack: `pyinfra inventory.py deploy.py` (add `--dry --diff` to see the plan).

Host data is validated first (provisioning.settings, Contract 3): a bad value stops the run with
"<host>: <key>: <problem>" and a non-zero exit before any operation is planned or run.
"""

import sys

from provisioning.deploy import DeployError, impots_stack
from provisioning.summary import print_summary_at_exit

print_summary_at_exit()  # one summary after a run over several hosts (URLs, smoke checks, CA, failures)

try:
    impots_stack()
except DeployError as error:
    # A clean one-line message instead of pyinfra's traceback; SystemExit ends the whole run before
    # the execution phase, so no host is changed.
    print(f"impots: {error}", file=sys.stderr)
    sys.exit(2)
