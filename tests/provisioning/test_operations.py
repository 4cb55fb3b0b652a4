"""Operation tests with given facts (the ``pyinfra-testing`` package, as pyinfra tests its own).

Each folder ``operations/<module>.<operation>/`` holds YAML cases: facts in, expected commands out,
for the Debian and the RHEL platform records. One generated test per case.
"""

from pathlib import Path

from provisioning.urls import gevent_unpatched

# pyinfra_testing imports pyinfra_cli, whose package monkey-patches the whole test process with gevent.
with gevent_unpatched():
    from pyinfra_testing.operations import make_operation_tests

CASES = Path(__file__).parent / "operations"

for folder in sorted(p for p in CASES.iterdir() if p.is_dir()):
    test_class = make_operation_tests("provisioning.linux.operations", folder.name, folder)
    test_class.__name__ = f"Test_{folder.name.replace('.', '_')}"
    globals()[test_class.__name__] = test_class
del test_class
