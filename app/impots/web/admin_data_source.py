"""The admin data of the tax rule, loaded once per process, surviving database outages.

The database is read once; the frozen ``AdminData`` is then shared by every thread, never mutated. When the
database cannot be read (at start-up or on a later try) the app keeps running: callers get
``AdminDataUnavailable`` (the web layer answers 503), the administrator is told once per outage, and a new
attempt is made at most every ``retry_interval`` seconds, so a down database is not hammered by every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from impots.tax.admin_data import AdminData


class AdminDataUnavailable(Exception):
    """The admin data could not be read; the message is the last error seen."""


class AdminDataSource:
    """Thread-safe lazy loader: ``get()`` returns the admin data or raises ``AdminDataUnavailable``.

    + load: reads the admin data (raises on failure)
    + on_failure: called with the error text on every failed attempt (logging)
    + on_outage: called with the error text on the first failure of an outage (mail to the administrator)
    + on_success: called once the data is loaded
    + retry_interval: minimum seconds between two attempts
    """

    def __init__(
        self,
        load: Callable[[], AdminData],
        on_failure: Callable[[str], None],
        on_outage: Callable[[str], None],
        on_success: Callable[[], None],
        retry_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._on_failure = on_failure
        self._on_outage = on_outage
        self._on_success = on_success
        self._retry_interval = retry_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._data: AdminData | None = None
        self._last_attempt: float | None = None
        self._last_error = ""
        self._in_outage = False

    @property
    def loaded(self) -> bool:
        return self._data is not None

    def get(self) -> AdminData:
        data = self._data
        if data is not None:
            return data
        with self._lock:
            if self._data is not None:
                return self._data
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self._retry_interval:
                raise AdminDataUnavailable(self._last_error)
            self._last_attempt = now
            try:
                self._data = self._load()
            except Exception as error:  # any failure (driver, schema, bad rows) means: nothing to serve
                message = self._last_error = str(error) or error.__class__.__name__
                outage_starts, self._in_outage = not self._in_outage, True
                failure = error
            else:
                self._in_outage = False
                failure = None
        # Callbacks log and mail: outside the lock, so a slow mail server never blocks other requests.
        if failure is None:
            self._on_success()
            return self._data
        self._on_failure(message)
        if outage_starts:
            self._on_outage(message)
        raise AdminDataUnavailable(message) from failure
