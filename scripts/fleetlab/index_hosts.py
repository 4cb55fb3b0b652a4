"""The package-index hosts of pip's configuration on this machine (what the fleet proxy allows)."""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

DEFAULT_INDEX = "https://pypi.org/simple"
# PyPI's simple pages link the files on this host.
PYPI_FILES = "files.pythonhosted.org"


def package_index_hosts() -> list[str]:
    """index-url / extra-index-url hosts over http(s) (file:// ones do not exist inside a host)."""
    listing = subprocess.run(
        ["/usr/bin/python3", "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    urls = []
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        if key.split(".")[-1] in ("index-url", "extra-index-url"):
            urls += value.strip("'\"").split()
    if not any(
        key.split(".")[-1] == "index-url" for key in (line.partition("=")[0] for line in listing.splitlines())
    ):
        urls.append(DEFAULT_INDEX)
    found = [urlsplit(url).hostname for url in urls if urlsplit(url).scheme in ("http", "https")]
    if "pypi.org" in found:
        found.append(PYPI_FILES)
    return sorted({host for host in found if host})
