# mod_wsgi entry point of the site backed by MariaDB/MySQL: mod_wsgi looks for a callable named "application".
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from impots import create_app  # noqa: E402 (needs the path above)

application = create_app("mysql")
