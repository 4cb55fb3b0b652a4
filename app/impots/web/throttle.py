"""Login throttling kept in Redis, per login and per client address (shared by every Apache process).

Each login and each client address has a small Redis hash ``{failures, last}``. Once ``failures`` reaches
its maximum, a new attempt must wait ``first_delay * 2 ** (failures - maximum)`` seconds (at most
``max_delay``) after the last one; a failed attempt made after the wait doubles the next wait. The counters
disappear ``window`` seconds after the last failure (or after the current wait, if longer), and a
successful login clears its login's counter: the rightful user is slowed for minutes at most, never locked
out for good, while a password guesser gets a handful of tries per hour.

Every attempt is counted *before* the password is checked, in one Lua script, so that concurrent guesses
cannot all slip in before the first failure is recorded; a success gives the attempt back. Logins are
hashed in the key names (an 8 MB login name costs 64 bytes). The client address is the connection's
``REMOTE_ADDR`` as mod_wsgi gives it; ``X-Forwarded-For`` is never trusted (any client can set it).

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

# KEYS: counters to check and count (login, address). ARGV: now (ms), then per key its maximum of failures;
# then first delay (ms), max delay (ms), window (ms). Returns the wait in ms (0: the attempt was counted).
_ATTEMPT_SCRIPT = """
local now = tonumber(ARGV[1])
local first, cap, window = tonumber(ARGV[#KEYS + 2]), tonumber(ARGV[#KEYS + 3]), tonumber(ARGV[#KEYS + 4])
local function delay(failures, maximum)
  if failures < maximum then return 0 end
  return math.min(first * 2 ^ (failures - maximum), cap)
end
local wait = 0
for i, key in ipairs(KEYS) do
  local state = redis.call('HMGET', key, 'failures', 'last')
  local failures, last = tonumber(state[1]) or 0, tonumber(state[2]) or 0
  wait = math.max(wait, last + delay(failures, tonumber(ARGV[i + 1])) - now)
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  local failures = redis.call('HINCRBY', key, 'failures', 1)
  redis.call('HSET', key, 'last', now)
  redis.call('PEXPIRE', key, math.ceil(math.max(window, delay(failures, tonumber(ARGV[i + 1])))))
end
return 0
"""

# KEYS: the address counter. Gives back the attempt counted for a login that succeeded.
_GIVE_BACK_SCRIPT = """
if redis.call('HINCRBY', KEYS[1], 'failures', -1) <= 0 then redis.call('DEL', KEYS[1]) end
return 0
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
    """``attempt(login, address)`` before checking a password, ``succeeded(login, address)`` after a success.

    + client: the Redis connection (the session store's, so it authenticates with ``redis_password``),
      or None when the site keeps no Redis (throttling off)
    + key_prefix: e.g. ``impots:mysql:throttle:``
    + log: writes one line to the application log (fail-open notices)
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
        if self._client is not None:
            self._attempt = self._client.register_script(_ATTEMPT_SCRIPT)
            self._give_back = self._client.register_script(_GIVE_BACK_SCRIPT)

    @property
    def active(self) -> bool:
        return self._client is not None

    def _keys(self, login: str, address: str) -> list[str]:
        digest = hashlib.sha256(login.encode("utf-8", "surrogatepass")).hexdigest()
        return [f"{self._prefix}login:{digest}", f"{self._prefix}address:{address}"]

    def attempt(self, login: str, address: str) -> int:
        """Seconds the client must still wait (0: go ahead; the attempt is counted as a failure until
        ``succeeded`` is called)."""
        if self._client is None:
            return 0
        settings = self._settings
        arguments = [
            int(self._clock() * 1000),
            settings.max_failures_per_login,
            settings.max_failures_per_address,
            int(settings.first_delay_seconds * 1000),
            int(settings.max_delay_seconds * 1000),
            int(settings.window_seconds * 1000),
        ]
        try:
            wait_ms = int(self._attempt(keys=self._keys(login, address), args=arguments))
        except redis.RedisError as error:
            self._log(f"[serveur] limitation des tentatives de connexion inopérante (Redis : {error})")
            return 0
        return math.ceil(wait_ms / 1000)

    def succeeded(self, login: str, address: str) -> None:
        """The password was right: the login starts afresh, and the address gets its attempt back."""
        if self._client is None:
            return
        login_key, address_key = self._keys(login, address)
        try:
            self._client.delete(login_key)
            self._give_back(keys=[address_key])
        except redis.RedisError as error:
            self._log(f"[serveur] limitation des tentatives de connexion inopérante (Redis : {error})")
