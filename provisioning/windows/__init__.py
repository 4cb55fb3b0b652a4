"""Windows hosts (Laragon, Apache Lounge) over ``@winssh``: PowerShell facts and operations, platform
records, the databases (``databases``), and ``deploy.deploy_windows``. See docs/windows.md."""
