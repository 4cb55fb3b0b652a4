# mod_wsgi entry point of the date/time example (architecture Contract 2).
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from date_time_server import create_app  # noqa: E402 (needs the path above)

application = create_app()
