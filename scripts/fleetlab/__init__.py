"""Throw-away lab hosts on this machine: bare Debian hosts in namespaces, reachable by SSH.

Stdlib only (it runs under Debian's /usr/bin/python3 before any venv exists). `scripts/fleet` is the
command; tests/fleet/ drives the same functions. Isolation is namespaces + chroot, not a security boundary.
"""
