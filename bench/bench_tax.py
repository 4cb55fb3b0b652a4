"""Tax rule throughput in-process, on one core: prints computations per second (never run as a test).

.venv/bin/python bench/bench_tax.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from impots.tax import COURSE_ADMIN_DATA, compute_tax  # noqa: E402 (needs the path above)


def measure(label: str, inputs: list[tuple[bool, int, int]], seconds: float, with_dict: bool = False) -> None:
    admin = COURSE_ADMIN_DATA
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        if with_dict:
            for marie, enfants, salaire in inputs:
                compute_tax(admin, marie, enfants, salaire).to_dict()
        else:
            for marie, enfants, salaire in inputs:
                compute_tax(admin, marie, enfants, salaire)
        count += len(inputs)
    elapsed = time.perf_counter() - started
    print(f"{label:<42} {count / elapsed:>12,.0f} computations/s  ({count:,} in {elapsed:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each measurement")
    seconds = parser.parse_args().seconds
    generator = random.Random(2019)
    course = [
        (True, 2, 55555), (True, 2, 50000), (True, 3, 50000), (False, 2, 100000), (False, 3, 100000),
        (True, 3, 100000), (True, 5, 100000), (False, 0, 100000), (True, 2, 30000), (False, 0, 200000),
        (True, 3, 200000),
    ]  # fmt: skip
    uniform = [
        (generator.random() < 0.5, generator.randint(0, 6), generator.randint(0, 300_000))
        for _ in range(10_000)
    ]
    print(f"Python {sys.version.split()[0]}, one thread")
    measure("the 11 course vectors", course, seconds)
    measure("random households (0-6 children, 0-300k)", uniform, seconds)
    measure("random households + to_dict()", uniform, seconds, with_dict=True)


if __name__ == "__main__":
    main()
