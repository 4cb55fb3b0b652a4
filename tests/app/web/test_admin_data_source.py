"""AdminDataSource: loaded once per process, thread-safe, rate-limited retries, one alert per outage."""

from __future__ import annotations

import threading

import pytest
from impots.tax.admin_data import COURSE_ADMIN_DATA
from impots.web.admin_data_source import AdminDataSource, AdminDataUnavailable


class Recorder:
    def __init__(self, outcomes: list[object]) -> None:
        self.outcomes = outcomes  # what successive loads do: an exception to raise, or data to return
        self.loads = 0
        self.failures: list[str] = []
        self.outages: list[str] = []
        self.successes = 0
        self.now = 0.0

    def load(self):
        outcome = self.outcomes[min(self.loads, len(self.outcomes) - 1)]
        self.loads += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def source(self, retry_interval: float) -> AdminDataSource:
        return AdminDataSource(
            load=self.load,
            on_failure=self.failures.append,
            on_outage=self.outages.append,
            on_success=lambda: setattr(self, "successes", self.successes + 1),
            retry_interval=retry_interval,
            clock=lambda: self.now,
        )


def test_loaded_once_even_under_concurrency() -> None:
    recorder = Recorder([COURSE_ADMIN_DATA])
    source = recorder.source(5)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(source.get())) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorder.loads == 1 and recorder.successes == 1
    assert all(result is COURSE_ADMIN_DATA for result in results) and len(results) == 16


def test_outage_rate_limit_and_recovery() -> None:
    down = ConnectionRefusedError("Connection refused")
    recorder = Recorder([down, down, COURSE_ADMIN_DATA])
    source = recorder.source(5)
    for _ in range(3):
        with pytest.raises(AdminDataUnavailable, match="Connection refused"):
            source.get()
    assert recorder.loads == 1  # the next two calls came within the retry interval
    recorder.now = 5.0
    with pytest.raises(AdminDataUnavailable):
        source.get()
    assert recorder.loads == 2 and recorder.failures == ["Connection refused"] * 2
    assert recorder.outages == ["Connection refused"]  # one alert for the whole outage
    recorder.now = 10.0
    assert source.get() is COURSE_ADMIN_DATA and source.loaded
    assert recorder.loads == 3 and recorder.successes == 1
