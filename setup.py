"""Builds the wheel with app/ inside it, as provisioning/_app: the source of the artifact the deploy
pushes to hosts, so an installed package deploys without this repository (see provisioning/artifact.py).
Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithApp(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install deploys app/ from the checkout itself
        target = Path(self.build_lib) / "provisioning" / "_app"
        shutil.rmtree(target, ignore_errors=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "instance", "tests")
        shutil.copytree(Path(__file__).parent / "app", target, ignore=ignore)


setup(cmdclass={"build_py": BuildPyWithApp})
