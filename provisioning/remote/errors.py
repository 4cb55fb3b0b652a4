"""What a remote command raises when it cannot do its job; ``__main__`` turns it into one line and exit 1."""

from __future__ import annotations


class RemoteError(Exception):
    """The message names the problem; ``details`` (command output, log lines) is printed before it."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class UsageError(RemoteError):
    """Unknown command, or arguments that are not the JSON object the command takes."""


class SecretsError(RemoteError):
    """The secrets file cannot be read, or lacks a value a command needs."""


class DatabaseError(RemoteError):
    """A database client failed (server down, SQL refused)."""


class ApacheError(RemoteError):
    """The Apache configuration could not be snapshotted, restored or (re)loaded."""


class SmokeCheckFailed(RemoteError):
    """A site did not answer 200 with its expected text over verified HTTPS."""
