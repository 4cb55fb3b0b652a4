"""The course's Logger (spec §8.1): one log file, lines stamped with date, time and thread name."""

from __future__ import annotations

import threading
from datetime import datetime

from impots.errors import ImpotsError


class Logger:
    """Appends UTF-8 lines ``<YYYY-MM-DD> <HH:MM:SS.ffffff>, <thread> : <message>`` to ``path``.

    Callers add the trailing newline, as in the course. Writes from all loggers of the process are
    serialised by one class-level lock, so lines of concurrent requests never interleave. Opening the
    file fails with ``ImpotsError(18, ...)`` (a missing folder is not created: that is the deploy's job).
    """

    _lock = threading.RLock()

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open until close())
        except OSError as error:
            raise ImpotsError(18, f"impossible d'ouvrir le fichier de logs [{path}] : {error}") from error

    def write(self, message: str) -> None:
        """Append one stamped message and flush it to the file."""
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")
        line = f"{stamp}, {threading.current_thread().name} : {message}"
        with Logger._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        """Close the file; later writes raise ValueError."""
        with Logger._lock:
            self._file.close()
