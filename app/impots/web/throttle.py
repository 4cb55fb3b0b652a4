"""Login throttling kept in Redis, per login and per client address (shared by every Apache process).

Each login and each client address has a small Redis hash ``{failures, last}``. Once ``failures`` reaches
its maximum, a new attempt must wait ``first_delay * 2 ** (failures - maximum)`` seconds (at most
``max_delay``) after the last one; a failed attempt made after the wait doubles the next wait. The counters
disappear ``window`` seconds after the last failure (or after the current wait, if longer), and a
successful login clears its login's counter: the rightful user is slowed for minutes at most, never locked
out for good, while a password guesser gets a handful of tries per hour.

The password is checked only while neither counter makes the client wait. Concurrent logins are never
refused for being concurrent (the course's clients log in from many threads at once); a burst of parallel
guesses is checked, but a right one is still refused when the failures recorded meanwhile have made the
login wait, so a burst gains a guesser little. Logins are hashed in the key names (an
8 MB login name costs 64 bytes). The client address is the connection's ``REMOTE_ADDR`` as mod_wsgi gives
it; ``X-Forwarded-For`` is never trusted (any client can set it).

Without Redis (``with_redissession`` false) or while Redis fails, throttling is off ("fail open"): the
login works as without throttling and a log line says so, because refusing every login during an outage
would lock out everyone, not just guessers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

# One script, so that every read-and-update is atomic across Apache processes and threads.
# KEYS: the login's and the address's counters. ARGV: mode ("wait", "failed" or "succeeded"), now (ms),
# first delay (ms), max delay (ms), window (ms), then per key its maximum of failures.
# Returns the wait in ms still due (0 for "failed"; "succeeded" clears the login's counter only when 0).
_SCRIPT = """
local mode, now = ARGV[1], tonumber(ARGV[2])
local first, cap, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function delay(failures, i)
  local maximum = tonumber(ARGV[5 + i])
  if failures < maximum then return 0 end
  return math.min(first * 2 ^ (failures - maximum), cap)
end
if mode == 'failed' then
  for i, key in ipairs(KEYS) do
    local failures = redis.call('HINCRBY', key, 'failures', 1)
    redis.call('HSET', key, 'last', now)
    redis.call('PEXPIRE', key, math.ceil(math.max(window, delay(failures, i))))
  end
  return 0
end
local wait = 0
for i, key in ipairs(KEYS) do
  local state = redis.call('HMGET', key, 'failures', 'last')
  local failures, last = tonumber(state[1]) or 0, tonumber(state[2]) or 0
  wait = math.max(wait, last + delay(failures, i) - now)
end
if mode == 'succeeded' and wait <= 0 then redis.call('DEL', KEYS[1]) end
return math.ceil(math.max(wait, 0))
"""


@dataclass(frozen=True)
class ThrottleSettings:
    """The ``login_throttle`` object of ``impots.json`` (Contract 1)."""

    enabled: bool
    max_failures_per_login: int
    max_failures_per_address: int
    window_seconds: float
    first_delay_seconds: float
    max_delay_seconds: float

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> ThrottleSettings:
        return cls(**settings)


class LoginThrottle:
    """Around a password check: ``wait`` before it, then ``failed`` or ``succeeded``.

    + client: the Redis connection (the session store's, so it authenticates with ``redis_password``),
      or None when the site keeps no Redis (throttling off)
    + key_prefix: e.g. ``impots:mysql:throttle:``
    + log: writes one line to the application log (fail-open notices)
    + clock: seconds since the epoch (``time.time``; tests move their own)
    """

    def __init__(
        self,
        client: redis.Redis | None,
        settings: ThrottleSettings,
        key_prefix: str,
        log: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        self._client = client if settings.enabled else None
        self._settings = settings
        self._prefix = key_prefix
        self._log = log
        self._clock = clock
        self._script = None if self._client is None else self._client.register_script(_SCRIPT)

    @property
    def active(self) -> bool:
        return self._client is not None

    def wait(self, login: str, address: str) -> int:
        """Seconds the client must still wait before its password may be checked (0: check it)."""
        return self._run("wait", login, address)

    def failed(self, login: str, address: str) -> None:
        """Count a wrong password against the login and the address."""
        self._run("failed", login, address)

    def succeeded(self, login: str, address: str) -> int:
        """A right password: 0 and the login starts afresh, or the seconds to wait when failures recorded
        meanwhile (a burst of parallel guesses) made the login or the address wait: then it is refused."""
        return self._run("succeeded", login, address)

    def _run(self, mode: str, login: str, address: str) -> int:
        if self._script is None:
            return 0
        digest = hashlib.sha256(login.encode("utf-8", "surrogatepass")).hexdigest()
        keys = [f"{self._prefix}login:{digest}", f"{self._prefix}address:{address}"]
        settings = self._settings
        arguments = [
            mode,
            int(self._clock() * 1000),
            int(settings.first_delay_seconds * 1000),
            int(settings.max_delay_seconds * 1000),
            int(settings.window_seconds * 1000),
            settings.max_failures_per_login,
            settings.max_failures_per_address,
        ]
        try:
            wait_ms = int(self._script(keys=keys, args=arguments))
        except redis.RedisError as error:
            self._log(f"[serveur] limitation des tentatives de connexion inopérante (Redis : {error})")
            return 0
        return math.ceil(wait_ms / 1000)
