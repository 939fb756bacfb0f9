"""One JSON document POSTed to a webhook, retried with backoff.

The webhook's URL carries its credential (Slack's and Teams' incoming webhooks
are secret URLs): it is never logged nor put in an error message.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from typing import Any

import orjson

log = logging.getLogger(__name__)

ATTEMPTS = 4
FIRST_DELAY_SECONDS = 0.5  # then doubled: 0.5, 1, 2 s between the attempts
TIMEOUT_SECONDS = 5.0


def _post_once(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "binome-alerts"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only: settings.py)
        return int(response.status)


def _reason(exc: BaseException) -> str:
    """What went wrong, without the URL (urllib's messages may hold it)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"URLError: {type(exc.reason).__name__}"
    return type(exc).__name__


async def post_json(url: str, document: dict[str, Any], *, attempts: int = ATTEMPTS,
                    first_delay: float = FIRST_DELAY_SECONDS,
                    timeout: float = TIMEOUT_SECONDS) -> bool:
    """True once the webhook answered 2xx; False after `attempts` failures."""
    body = orjson.dumps(document)
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            status = await asyncio.to_thread(_post_once, url, body, timeout)
            if 200 <= status < 300:
                return True
            reason = f"HTTP {status}"
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            reason = _reason(exc)
        log.warning("webhook POST failed", extra={"attempt": attempt, "of": attempts,
                                                   "reason": reason})
        if attempt < attempts:
            await asyncio.sleep(delay)
            delay *= 2
    return False
