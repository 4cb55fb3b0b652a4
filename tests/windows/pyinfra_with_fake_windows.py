"""Run the real ``pyinfra`` command line with every @winssh host's SSH transport replaced by the fake
Windows machine of win_fakes (``laragon`` or ``apache-lounge``), e.g.

    python tests/windows/pyinfra_with_fake_windows.py laragon INVENTORY deploy.py --dry

Only the transport is fake: inventory, group_data, deploy.py, settings, facts, operations and the
connector's command building are the real ones. Each command line received is appended to
``$FAKE_WINDOWS_LOG`` (one decoded script per JSON line) when that variable is set;
``$FAKE_WINDOWS_ARTIFACTS`` replaces ``.artifacts`` for the controller-made TLS files;
``$FAKE_WINDOWS_SFTP_LOG``: file transfers are logged there (``["put", sftp path, size]``) instead of
failing, so a full run (not ``--dry``) executes every operation against the fake machine.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from win_fakes import apache_lounge_machine, laragon_machine  # noqa: E402

from provisioning.connectors.winssh import WinSSHConnector  # noqa: E402


def main() -> None:
    layout = sys.argv.pop(1)
    windows = laragon_machine() if layout == "laragon" else apache_lounge_machine()

    def fake_connect(self):
        self.client = windows.client()

    WinSSHConnector._connect = fake_connect
    artifacts = os.environ.get("FAKE_WINDOWS_ARTIFACTS")
    if artifacts:
        # Where the controller-made local CA goes (instead of the repo's .artifacts).
        import provisioning.plan as plan_module

        plan_module.ARTIFACTS_DIR = Path(artifacts)
    sftp_log = os.environ.get("FAKE_WINDOWS_SFTP_LOG")
    if sftp_log:
        # Uploads/downloads land in a log (SFTP path, size) instead of a Windows disk.
        class FakeSftp:
            def putfo(self, file_io, remote):
                with open(sftp_log, "a", encoding="utf-8") as out:
                    out.write(json.dumps(["put", remote, len(file_io.read())]) + "\n")

            def getfo(self, remote, file_io):
                with open(sftp_log, "a", encoding="utf-8") as out:
                    out.write(json.dumps(["get", remote, 0]) + "\n")

        def fake_transfer_connection(self):
            return FakeSftp()

        fake_transfer_connection.cache = {}  # the connector's disconnect() clears pyinfra's memoize cache
        WinSSHConnector.get_file_transfer_connection = fake_transfer_connection
    log = os.environ.get("FAKE_WINDOWS_LOG")
    if log:
        answer = windows.answer

        def logged(script):
            with open(log, "a", encoding="utf-8") as out:
                out.write(json.dumps(script) + "\n")
            return answer(script)

        windows.answer = logged
    from pyinfra_cli.main import main as pyinfra_main

    sys.argv[0] = "pyinfra"
    pyinfra_main()


if __name__ == "__main__":
    main()
