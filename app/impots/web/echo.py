"""Client values echoed back in answers, kept in the session or written to the log are cut short.

A client may post a value of any size up to the body limit; echoed whole, it would multiply the reply, the
log and the session store (an 8 MB login name once gave an 8 MB answer, 8 MB of log and 10 MB in Redis).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Longest client value repeated anywhere; longer ones are cut and end with "…".
MAX_ECHO_CHARS = 100
# Longest line of results written to the log (a bulk calculation's result list may be long).
MAX_LOG_LINE_CHARS = 4096
ELLIPSIS = "…"


def shorten(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """``str(value)``, cut to ``limit`` characters followed by "…" when longer."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def echo_object(item: Mapping[Any, Any]) -> dict[str, Any]:
    """A client's JSON object to send back in an error: keys and texts cut; numbers, booleans, null kept."""
    return {shorten(key): _echo_value(value) for key, value in item.items()}


def _echo_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int) and len(str(value)) <= MAX_ECHO_CHARS:
        return value
    return shorten(value)  # texts, long numbers, and nested lists or objects as their text
