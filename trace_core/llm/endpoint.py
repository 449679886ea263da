"""What a client needs to know about an endpoint: its defaults, its errors, its pace.

- `endpoint_defaults`: (timeout, concurrency) that fit the endpoint. OpenAI answers many requests
  at once within a minute; a self-hosted server (llama.cpp, a CPU box) often answers one at a time
  and slowly, and a request that times out keeps it busy anyway.
- `looks_rejected`: a 500 whose body says the request itself was invalid (llama.cpp reports
  unsupported parameters that way), which no retry can fix.
- `ConcurrencyLimit`: a semaphore whose limit can be lowered while requests are in flight.
"""
from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

OPENAI_HOSTS = ("api.openai.com",)
OPENAI_DEFAULTS = (60.0, 4)
SELF_HOSTED_DEFAULTS = (600.0, 1)

# Words servers use when they refuse a request as invalid (pydantic, FastAPI, Python's own
# TypeError for an unexpected keyword, OpenAI's error types).
_REJECTION = re.compile(
    r"invalid_request|validation|invalid (value|parameter|argument|request|type)|unsupported|not supported"
    r"|unexpected keyword|unrecognized (argument|field|param)|unknown (field|param|argument)"
    r"|extra (inputs|fields) (are )?not permitted|field required|TypeError|ValueError",
    re.IGNORECASE,
)


def is_openai_url(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() in OPENAI_HOSTS


def endpoint_defaults(url: str) -> tuple[float, int]:
    """(timeout in seconds, requests at once) when the config leaves them unset."""
    return OPENAI_DEFAULTS if is_openai_url(url) else SELF_HOSTED_DEFAULTS


def looks_rejected(body: str) -> bool:
    """Does an error body say the request was invalid (rather than that the server failed)?"""
    return bool(_REJECTION.search(body or ""))


class ConcurrencyLimit:
    """At most `limit` holders at once; `back_off()` halves the limit (down to 1) for good."""

    def __init__(self, limit: int) -> None:
        self.limit, self._active = int(limit), 0
        self._changed = threading.Condition()

    def __enter__(self) -> ConcurrencyLimit:
        with self._changed:
            # Each holder leaves when its request ends, which its own timeout bounds.
            self._changed.wait_for(lambda: self._active < self.limit)
            self._active += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._active -= 1
            self._changed.notify_all()

    def back_off(self) -> int | None:
        """Halve the limit; the new limit, or None when it was already 1."""
        with self._changed:
            if self.limit <= 1:
                return None
            self.limit = max(1, self.limit // 2)
            return self.limit

