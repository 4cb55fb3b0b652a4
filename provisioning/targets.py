"""The targets the deploy supports, and the Python each one builds the app's venv from.

One table for both backends: the platform records (linux/platforms.py, windows/platforms.py), the
prerequisite checks and the wheel-resolution test (pip download per target) all read it, so the Python
floor is written once. The floor comes from the pins in requirements/app.txt and mod_wsgi's own:
wtforms 3.3.2 needs Python 3.11, mod_wsgi 6.1.1 needs 3.10.
"""

from __future__ import annotations

# The oldest Python the pinned stack installs on (checked against the package index by a test).
MIN_PYTHON: tuple[int, int] = (3, 11)

# Windows x64: the python.org versions the Windows deploy accepts (64-bit only: psycopg2-binary and
# msgspec publish no win32 wheels).
WINDOWS_PYTHON_VERSIONS: tuple[tuple[int, int], ...] = ((3, 11), (3, 12), (3, 13), (3, 14))


def python_version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"
