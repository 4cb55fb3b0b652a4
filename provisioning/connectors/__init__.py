"""pyinfra connectors of this package (``@winssh``, registered in pyproject.toml)."""
