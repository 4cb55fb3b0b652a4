"""The course's development server: ``python main.py mysql|pgres`` serves the app on http://127.0.0.1:5000.

Werkzeug, threaded, loopback only; for production use Apache + mod_wsgi (the ``.wsgi`` files).
"""

from __future__ import annotations

import sys

from impots import create_app
from impots.config import DBMS_NAMES, ConfigError

USAGE = f"usage: python main.py {'|'.join(DBMS_NAMES)}"


def main(argv: list[str]) -> int:
    """Serve the site of ``argv[0]``; 2 with a message on stderr for bad arguments or configuration."""
    if len(argv) != 1 or argv[0] not in DBMS_NAMES:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        app = create_app(argv[0])
    except ConfigError as error:
        print(f"main.py: {error}", file=sys.stderr)
        return 2
    app.run(host="127.0.0.1", port=5000, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
