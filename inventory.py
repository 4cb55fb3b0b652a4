"""Who gets provisioned. Every host needs root (or passwordless sudo) on Linux.

`pyinfra inventory.py deploy.py` provisions the hosts below; group data comes from group_data/
(all.py for every host, <group>.py for a group) and can be overridden per host as shown.
"""

# The machine pyinfra runs on: the default target (a lab or CI machine, as root).
linux = [
    "@local",
]

# Linux lab machines over SSH (Debian/Ubuntu or RHEL family). Uncomment and adapt:
# linux = [
#     "@local",
#     ("lab-pc-01.example.org", {"ssh_user": "root"}),
#     # Another port, a key, and a host-level override of group_data/all.py:
#     ("192.0.2.15", {"ssh_port": 2222, "ssh_key": "~/.ssh/lab_ed25519",
#                     "impots_listen_address": "*", "impots_hosts_address": "192.0.2.15"}),
# ]

# Windows machines with Laragon (or Apache Lounge) over OpenSSH: the `@winssh` connector of this
# package speaks PowerShell. Uncomment and adapt:
# windows = [
#     ("@winssh/lab-win-01.example.org", {
#         "ssh_user": "Administrator",
#         "impots_os": "windows",
#         "impots_windows_layout": "laragon",       # or "apache-lounge"
#         "impots_laragon_root": "C:/laragon",
#     }),
# ]
